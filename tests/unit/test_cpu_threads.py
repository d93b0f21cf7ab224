"""CPU components run as many threads as CPUs they reserved (each case in a fresh process: the setting is
process-wide)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def _threads(num_cpus: float, omp: str | None) -> tuple[int, int, str]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if omp is not None:
        env["OMP_NUM_THREADS"] = omp
    code = (
        "import os, torch\nfrom rlvr.cpu_threads import limit_cpu_threads\n"
        f"n = limit_cpu_threads({num_cpus})\nprint(n, torch.get_num_threads(), os.environ['OMP_NUM_THREADS'])"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    n, torch_n, env_n = out.stdout.split()
    return int(n), int(torch_n), env_n


@pytest.mark.parametrize(
    "num_cpus, omp, expected", [(0.5, None, 1), (0.0, None, 1), (3.0, None, 3), (2.7, None, 2), (0.5, "2", 2)]
)
def test_threads_follow_the_reservation_unless_the_user_chose(num_cpus, omp, expected):
    assert _threads(num_cpus, omp) == (expected, expected, str(expected))
