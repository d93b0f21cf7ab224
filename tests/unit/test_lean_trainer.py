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
