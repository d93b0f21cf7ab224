"""Learner checkpoint/resume and fault tolerance on CPU (real Ray Train + DeepSpeed, 2 workers)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import ray
from test_learner_support import Run, base_cfg, build_random_qwen2, max_diff

from rlvr.learner.checkpoint import read_meta

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_random_qwen2(tmp_path_factory.mktemp("tiny") / "model", seed=1)


@pytest.fixture(scope="module")
def resume_runs(ray_cluster: dict, model_path: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Uninterrupted 3 steps vs. 2 steps (final checkpoint) + resume to 3, same step-keyed data."""
    root = tmp_path_factory.mktemp("resume")
    full = Run(base_cfg(), model_path, root / "full")
    full.fill(range(3))
    first_cfg = base_cfg()
    first_cfg.trainer.max_steps = 2
    first = Run(first_cfg, model_path, root / "first")
    first.fill(range(2))
    full.start()
    first.start()
    full.finish()
    first.finish()
    ckpt = first.group.latest_checkpoint
    second = Run(base_cfg(), model_path, root / "second", resume=ckpt)
    second.fill(range(2, 3))
    second.start().finish()
    return {"full": full, "first": first, "second": second, "ckpt": ckpt}


def test_exact_resume_matches_uninterrupted(resume_runs: dict) -> None:
    full, second = resume_runs["full"], resume_runs["second"]
    diff = max_diff(full.weights(3), second.weights(3))
    assert diff < 1e-6, f"resumed run diverged from the uninterrupted one by {diff}"
    # Guard against a vacuous match: the last step moved the weights.
    assert max_diff(full.weights(2), full.weights(3)) > 1e-5


def test_resume_at_boundary_trains_remaining_steps(resume_runs: dict) -> None:
    meta = read_meta(Path(resume_runs["ckpt"]))
    assert meta is not None and meta["step"] == 2 and meta["weight_version"] == 2
    assert meta["samples_consumed"] == 16
    second = resume_runs["second"]
    assert [m["step"] for m in second.metrics] == [2], "the resumed run must train exactly step 2"
    assert second.versions() == [3]
    end = read_meta(Path(second.group.latest_checkpoint))
    assert end is not None and end["step"] == 3


def test_worker_kill_restarts_from_checkpoint(ray_cluster: dict, model_path: str, tmp_path: Path) -> None:
    cfg = base_cfg()
    cfg.trainer.max_steps = 4
    cfg.trainer.save_every = 1
    run = Run(cfg, model_path, tmp_path)
    # Spare data, sampled by version 0: the restart starts a new weight epoch, and data tagged with
    # versions the lost branch published (above the restored checkpoint's) would be dropped as stale.
    run.fill(range(12), version=0)
    run.start()
    pid_file = tmp_path.resolve() / "learner" / "pids" / "rank1.pid"
    deadline = time.monotonic() + 240
    while not any(m["step"] >= 1 for m in run.poll()):
        assert time.monotonic() < deadline and not run.group.done, "learner made no progress"
        time.sleep(0.5)
    old_pid = int(pid_file.read_text())
    os.kill(old_pid, signal.SIGKILL)
    run.finish(timeout=400)
    assert int(pid_file.read_text()) != old_pid, "rank 1 was not restarted"
    end = read_meta(Path(run.group.latest_checkpoint))
    assert end is not None and end["step"] == 4
    steps = [m["step"] for m in run.metrics]
    # Steps after the last checkpoint before the kill are trained again after the restart (fresh data).
    assert set(steps) == {0, 1, 2, 3} and steps[-1] == 3, steps
    c = ray.get(run.buffer.counters.remote(), timeout=30)
    assert c["double_trained"] == 0
    assert c["epoch"] == 1 and ray.get(run.store.epoch.remote(), timeout=30) == 1  # the restart's epoch
