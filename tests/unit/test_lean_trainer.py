"""The learner's TorchTrainer starts no DatasetManager (rlvr passes no Ray Dataset) and, where no dashboard
serves the state API, no PlacementGroupCleaner; everything else Ray Train sets up is kept. Built against
Ray's own TorchTrainer, so a Ray release that renames the overridden hook fails here, not silently."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit


def _callbacks(cls) -> list[str]:
    from ray.train import ScalingConfig

    trainer = cls(lambda: None, scaling_config=ScalingConfig(num_workers=1))
    return sorted(type(c).__name__ for c in trainer._create_default_callbacks())


@pytest.mark.parametrize("dashboard", [False, True])
def test_only_the_helpers_with_nothing_to_do_are_dropped(monkeypatch, dashboard):
    from ray.train.torch import TorchTrainer

    import rlvr.learner.trainer as lean

    monkeypatch.setattr(lean, "dashboard_running", lambda: dashboard)
    plain, ours = _callbacks(TorchTrainer), _callbacks(lean.LeanTorchTrainer)
    assert {"DatasetsCallback", "PlacementGroupCleanerCallback"} <= set(plain)  # what Ray starts by default
    dropped = {"DatasetsCallback"} | (set() if dashboard else {"PlacementGroupCleanerCallback"})
    assert ours == sorted(set(plain) - dropped)


def test_heap_release_is_available_on_this_platform():
    import sys

    from rlvr.heap import release_free_heap

    assert release_free_heap() is (sys.platform == "linux")  # glibc here; elsewhere a no-op


def _controller_kwargs(cls, monkeypatch, **trainer_kwargs) -> dict:
    """What the trainer hands Ray Train's controller (captured instead of starting one)."""
    from ray.train import ScalingConfig
    from ray.train.torch import TorchTrainer

    seen: dict = {}
    monkeypatch.setattr(TorchTrainer, "_initialize_and_run_controller", lambda self, **kw: seen.update(kw))
    from ray.train.v2._internal.execution.scaling_policy import create_scaling_policy

    trainer = cls(lambda: None, scaling_config=ScalingConfig(num_workers=2), **trainer_kwargs)
    trainer._initialize_and_run_controller(scaling_policy=create_scaling_policy(trainer.scaling_config))
    return seen


@pytest.mark.parametrize("autoscaling", [True, False])
def test_a_fixed_local_cluster_gets_the_fixed_policy_without_autoscaler_requests(monkeypatch, autoscaling):
    from ray.train.v2._internal.execution.scaling_policy.fixed import FixedScalingPolicy

    import rlvr.learner.trainer as lean

    policy = _controller_kwargs(lean.LeanTorchTrainer, monkeypatch, autoscaling=autoscaling)["scaling_policy"]
    assert isinstance(policy, FixedScalingPolicy)  # still num_workers, fixed
    assert (type(policy) is lean.FixedNoAutoscalerPolicy) is (not autoscaling)
    if not autoscaling:

        class Run:
            run_id = "r1"

        policy.after_controller_start(Run())  # no coordinator actor is created or asked
        assert policy._coordinator_client is None and policy._requester_id == "train-r1"
        decision = policy.make_decision_for_non_running_worker_group()
        assert decision.num_workers == 2
        policy.before_controller_abort()  # cancelling nothing is a no-op


def test_started_here_is_false_without_a_cluster(monkeypatch):
    import ray

    from rlvr.cluster import started_here

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    assert started_here() is False


def test_what_the_controller_unpickles_imports_no_torch(monkeypatch):
    """Ray Train's controller unpickles the backend config and the scaling policy and runs the backend's
    hooks; none of them needs torch (1.4 s of a core at every start-up, in a process that never trains)."""
    import subprocess
    import sys

    import cloudpickle

    import rlvr.learner.trainer as lean
    from rlvr.learner.process_group import BoundStoreTorchConfig

    kwargs = _controller_kwargs(
        lean.LeanTorchTrainer,
        monkeypatch,
        autoscaling=False,
        torch_config=BoundStoreTorchConfig(backend="gloo"),
    )
    assert type(kwargs["scaling_policy"]) is lean.FixedNoAutoscalerPolicy
    config = BoundStoreTorchConfig(backend="gloo")
    assert config.to_dict() == {"backend": "gloo", "timeout_s": 1800}
    assert config.framework.name == "TORCH"
    blob = cloudpickle.dumps((config, kwargs["scaling_policy"]))
    code = (
        "import pickle, sys; config, policy = pickle.loads(sys.stdin.buffer.read()); "
        "config.backend_cls(); print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=blob, capture_output=True, check=True, timeout=120
    )
    assert out.stdout.decode().strip() == "False", out.stderr.decode()[-2000:]
