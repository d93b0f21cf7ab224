"""Sync vs async pipeline on the same config, side by side in one run.

Reports trained samples/s in the steady-state window (first to last learner step, so start-up is
excluded), and the busy fractions of the generator (generate + verify) and of the learner (its own work,
not the wait for data) in that window.
Writes benchmarks/results/pipeline_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def window_stats(run_dir: Path) -> dict[str, float]:
    """Steady state: from the end of the first learner step to the end of the last one, so the start-up
    of vLLM and Ray Train (and the rollouts queued while learners start) is excluded."""
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
    learn = sorted((r for r in rows if "train_time_s" in r), key=lambda r: r["time"])
    start, end = learn[0]["time"], learn[-1]["time"]
    wall = max(end - start, 1e-9)
    gen = [r for r in rows if "gen/seconds" in r and start < r["time"] <= end]
    trained = sum(r["samples_per_s"] * r["step_time_s"] for r in learn[1:])
    return {
        "window_s": wall,
        "steps_in_window": len(learn) - 1,
        "trained_samples_per_s": trained / wall,
        "generator_busy_frac": min(sum(r["gen/seconds"] + r["verify/seconds"] for r in gen) / wall, 1.0),
        "learner_busy_frac": min(sum(r["train_time_s"] for r in learn[1:]) / wall, 1.0),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--extra", nargs="*", default=[], help="more overrides for both runs")
    args = ap.parse_args()
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from rlvr.config import load_config
    from rlvr.pipeline.run import run_training

    out: dict[str, dict[str, float]] = {}
    tmp = Path(tempfile.mkdtemp(prefix="rlvr-bench-"))
    common = [
        f"trainer.max_steps={args.steps}",
        "trainer.prompts_per_step=8",
        "generator.n_samples=8",
        "generator.max_tokens=24",
        # Four PPO epochs give the learner about as much work per step as the generator has, the regime
        # where overlapping them matters (with one epoch the tiny model's update is ~10x cheaper).
        "learner.ppo_epochs=4",
        "learner.mini_batch_size=16",
        "logging.progress=false",
        "logging.tensorboard=false",
        f"trainer.output_dir={tmp}",
        *args.extra,
    ]
    for mode in ("sync", "async"):
        cfg = load_config(
            [*common, f"trainer.mode={mode}", "trainer.max_staleness=1", f"trainer.run_name={mode}"]
        )
        summary = run_training(cfg)
        out[mode] = window_stats(Path(summary["run_dir"]))
        out[mode]["balanced"] = float(summary["accounting"]["balanced"])
    ratio = out["async"]["trained_samples_per_s"] / out["sync"]["trained_samples_per_s"]
    result = {
        "config": common,
        "sync": out["sync"],
        "async": out["async"],
        "async_over_sync": ratio,
        "target": 1.5,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipeline_throughput.json").write_text(json.dumps(result, indent=2))
    for mode in ("sync", "async"):
        s = out[mode]
        print(
            f"{mode:5s}: {s['trained_samples_per_s']:.1f} trained samples/s, generator busy "
            f"{s['generator_busy_frac']:.0%}, learner busy {s['learner_busy_frac']:.0%}",
            file=sys.stderr,
        )
    print(f"async/sync throughput ratio: {ratio:.2f} (target >= 1.5)")


if __name__ == "__main__":
    main()
