"""Ctrl-C on a real `rlvr run`: SIGINT goes to the whole foreground process group, as a terminal sends
it. The run must stop cleanly (exit 130, balanced accounting, a final checkpoint), and a new run must
resume from that checkpoint at the step where the first one stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_support import learner_steps, session_stacks

from rlvr.config import load_config
from rlvr.learner.checkpoint import read_meta
from rlvr.pipeline.run import run_training

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BASE = [
    "trainer.prompts_per_step=4",
    "generator.n_samples=4",
    "learner.micro_batch_size=8",
    "learner.mini_batch_size=16",
    "logging.progress=false",
]


def test_ctrl_c_stops_cleanly_and_resumes(ray_cluster, tmp_path):
    run_dir = tmp_path / "interrupted"
    cmd = [
        sys.executable,
        "-m",
        "rlvr.cli",
        "run",
        *BASE,
        "trainer.max_steps=500",  # far more than it gets through before the interrupt
        "cluster.dashboard=false",
        f"trainer.output_dir={tmp_path}",
        "trainer.run_name=interrupted",
        "trainer.step_timeout_s=150",  # the run's own bound on the wait after Ctrl-C ends before this test's
    ]
    log = tmp_path / "child.log"  # a file, not a pipe: nothing the child writes can block it

    def ctrl_c_as_in_a_terminal() -> None:
        # A test session started in the background by a non-interactive shell (`cmd &`) inherits SIGINT
        # ignored, and so would the child: Python then installs no Ctrl-C handler at all.
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    with log.open("w") as sink:
        proc = subprocess.Popen(
            cmd,
            start_new_session=True,
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=ctrl_c_as_in_a_terminal,
        )
    hung = ""
    try:
        deadline = time.monotonic() + 300
        while len(learner_steps(run_dir)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert len(learner_steps(run_dir)) >= 2, "no learner steps within 300 s"
        os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C: driver and children alike
        try:
            proc.wait(timeout=240)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGUSR1)  # the driver prints its threads' stacks into the log
            time.sleep(2)
            hung = f"no exit 240 s after SIGINT; stacks:\n{session_stacks(proc.pid)}\n"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    err = log.read_text()
    assert not hung and proc.returncode == 130, hung + err[-6000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert f"continue with trainer.resume={summary['checkpoint']}" in err  # tells the user how to go on
    acc = summary["accounting"]
    assert acc["balanced"] and acc["double_trained"] == 0, acc
    meta = read_meta(Path(summary["checkpoint"]))
    assert meta is not None
    stopped_at = int(meta["step"])
    trained = learner_steps(run_dir)
    assert stopped_at == len(trained) == trained[-1] + 1, (meta, trained)
    assert acc["trained"] == stopped_at * 16, acc

    # Resume on the shared cluster: one more step, numbered where the interrupted run stopped.
    cfg = load_config(
        [
            *BASE,
            f"trainer.max_steps={stopped_at + 1}",
            f"trainer.resume={summary['checkpoint']}",
            f"trainer.output_dir={tmp_path}",
            "trainer.run_name=resumed",
        ]
    )
    resumed = run_training(cfg)
    assert resumed["interrupted"] is False
    assert learner_steps(tmp_path / "resumed") == [stopped_at]
    assert int(read_meta(Path(resumed["checkpoint"]))["step"]) == stopped_at + 1
