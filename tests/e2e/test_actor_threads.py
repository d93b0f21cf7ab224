"""Inside a Ray actor OMP_NUM_THREADS is always set (Ray sets floor(num_cpus) when the user did not), so a
configured thread count (`generator.num_threads`, `learner.num_threads`, sync mode's shared cores) must be
passed to `limit_cpu_threads`, not read back from the environment. This checks it in a real actor."""

from __future__ import annotations

import pytest
import ray

pytestmark = pytest.mark.e2e


@ray.remote(num_cpus=0.1)
class _Probe:
    def __init__(self, threads: int | None) -> None:
        import os

        from rlvr.cpu_threads import limit_cpu_threads

        self.env_before = os.environ.get("OMP_NUM_THREADS")
        self.n = limit_cpu_threads(0.1, threads)

    def seen(self) -> tuple[str | None, int, int]:
        import torch

        return self.env_before, self.n, torch.get_num_threads()


def test_a_configured_count_beats_the_one_ray_sets(ray_cluster):
    given = _Probe.remote(2)
    default = _Probe.remote(None)
    try:
        env, n, torch_n = ray.get(given.seen.remote(), timeout=120)
        assert env is not None  # Ray (or the user) set it before the actor's __init__ ran
        assert (n, torch_n) == (2, 2)
        env, n, torch_n = ray.get(default.seen.remote(), timeout=120)
        assert n == torch_n == int(env)  # no count given: the environment's (Ray's floor(0.1) -> 1)
    finally:
        ray.kill(given)
        ray.kill(default)
