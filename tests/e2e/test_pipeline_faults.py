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


def _alive_actors(class_substr: str) -> dict[str, int]:
    """Live actors whose class name contains `class_substr` -> their pid, from Ray's own records (the GCS),
    so the victim is the actor itself, never a reused worker process that merely carries its title.
    (The public `ray.util.state` API needs the dashboard, which the test cluster does not run.)"""
    import ray._private.state as ray_state

    return {
        actor_id: int(info["Pid"])
        for actor_id, info in ray_state.actors().items()
        if info["State"] == "ALIVE" and class_substr in info["ActorClassName"] and info.get("Pid")
    }


def _steps_logged(run_dir: Path) -> int:
    return len(learner_steps(run_dir))


def _kill_later(
    run_dir: Path, class_substr: str, after_steps: int, killed: list[tuple[int, int]]
) -> threading.Thread:
    before = set(_alive_actors(class_substr))  # actors of earlier tests: never the victim

    def victims() -> dict[str, int]:
        return {a: pid for a, pid in _alive_actors(class_substr).items() if a not in before}

    def go() -> None:
        deadline = time.monotonic() + 600
        mine: dict[str, int] = {}
        # Find the victim while waiting, so the kill follows the threshold at once (a GCS query on a busy
        # machine takes long enough for a fast learner to finish the run first).
        while time.monotonic() < deadline and _steps_logged(run_dir) < after_steps:
            mine = mine or victims()
            time.sleep(0.2)
        mine = mine or victims()
        if mine:
            pid = mine[sorted(mine)[0]]
            at_step = _steps_logged(run_dir)
            os.kill(pid, signal.SIGKILL)
            killed.append((pid, at_step))

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize(
    "victim, after, steps",
    # The learner gets 2 more steps: killed after its final checkpoint, it has nothing left to restart.
    [("GeneratorDeployment", 2, 6), ("VerifierActor", 2, 6), ("RayTrainWorker", 3, 8)],
)
def test_run_survives_kill(ray_cluster, tmp_path, victim, after, steps):
    name = f"fault-{victim.lower()}"
    ovs = [*BASE, f"trainer.max_steps={steps}", f"trainer.output_dir={tmp_path}", f"trainer.run_name={name}"]
    cfg = load_config(ovs)
    killed: list[tuple[int, int]] = []
    t = _kill_later(tmp_path / name, victim, after, killed)
    summary = run_training(cfg)
    t.join(timeout=5)
    assert killed, f"no live {victim} actor of this run was found to kill"
    _, at_step = killed[0]
    assert after <= at_step < 6, f"the kill came at step {at_step}, not mid-run"
    acc = summary["accounting"]
    assert acc["balanced"], acc
    assert acc["double_trained"] == 0, acc
    assert _steps_logged(tmp_path / name) == steps  # every step trained despite the fault
    assert summary["checkpoint"]
    if victim == "RayTrainWorker":
        # The restarted learner republished its checkpoint's weights under a new weight epoch; the first
        # batch it trained holds nothing from the lost branch (versions it had published before dying).
        (restart,) = summary["restarts"]
        assert restart["epoch"] == 1 and restart["step"] == restart["fork_version"]
        assert restart["old_epoch_max_version"] <= restart["fork_version"], restart
