"""Fault injection during a real run: a generator replica, a verifier actor and a learner worker are
killed (SIGKILL of the actor's process) mid-run. The run must complete and the accounting balance."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from run_support import learner_steps

from rlvr.config import load_config
from rlvr.pipeline.run import run_training

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BASE = [
    "trainer.max_steps=6",
    "trainer.prompts_per_step=4",
    "generator.n_samples=4",
    "learner.micro_batch_size=8",
    "learner.mini_batch_size=16",
    "trainer.save_every=2",
    "logging.progress=false",
]


def _alive_pids(title: str, since: float) -> list[int]:
    """Ray names worker processes `ray::<Class>...`; only those started by this test qualify."""
    import psutil

    pids = []
    for proc in psutil.process_iter(["cmdline", "create_time"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if cmd.startswith("ray::") and title in cmd and proc.info["create_time"] >= since:
            pids.append(proc.pid)
    return pids


def _steps_logged(run_dir: Path) -> int:
    return len(learner_steps(run_dir))


def _kill_later(run_dir: Path, class_substr: str, after_steps: int, killed: list[int]) -> threading.Thread:
    since = time.time()

    def go() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and _steps_logged(run_dir) < after_steps:
            time.sleep(0.2)
        pids = _alive_pids(class_substr, since)
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize(
    "victim, after",
    [("GeneratorDeployment", 2), ("VerifierActor", 2), ("RayTrainWorker", 3)],
)
def test_run_survives_kill(ray_cluster, tmp_path, victim, after):
    name = f"fault-{victim.lower()}"
    cfg = load_config([*BASE, f"trainer.output_dir={tmp_path}", f"trainer.run_name={name}"])
    killed: list[int] = []
    t = _kill_later(tmp_path / name, victim, after, killed)
    summary = run_training(cfg)
    t.join(timeout=5)
    assert killed, f"no live {victim} actor was found to kill"
    acc = summary["accounting"]
    assert acc["balanced"], acc
    assert acc["double_trained"] == 0, acc
    assert _steps_logged(tmp_path / name) == 6  # every step trained despite the fault
    assert summary["checkpoint"]
