"""Sync vs async pipeline on the same config, side by side in one run.

Runs `--repeats` sync/async pairs (alternating which goes first) and reports the median of the pair
ratios of trained samples/s in the steady-state window (first to last learner step, so start-up is
excluded). Also reports the busy fractions in that window: the generator's (the replica's own time per
request, weight loads included, plus verification) and the learner's (its own work, not the wait for
data). Writes benchmarks/results/pipeline_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3, help="sync/async pairs; the ratio is their median")
    ap.add_argument("--extra", nargs="*", default=[], help="more overrides for both runs")
    args = ap.parse_args()
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from rlvr.config import load_config
    from rlvr.pipeline.run import run_training

    runs: dict[str, list[dict[str, float]]] = {"sync": [], "async": []}
    tmp = Path(tempfile.mkdtemp(prefix="rlvr-bench-"))
    # The main job's defaults (tiny model, 8 prompts x 8 samples, one PPO epoch): on this model the
    # generator and the learner then take about the same time per step, so each mode's cost shows.
    common = [
        f"trainer.max_steps={args.steps}",
        "logging.progress=false",
        "logging.tensorboard=false",
        f"trainer.output_dir={tmp}",
        *args.extra,
    ]
    for rep in range(args.repeats):
        # Alternate the order so a drift in machine load does not favour one mode.
        for mode in ("sync", "async") if rep % 2 == 0 else ("async", "sync"):
            cfg = load_config(
                [*common, f"trainer.mode={mode}", "trainer.max_staleness=1", f"trainer.run_name={mode}-{rep}"]
            )
            summary = run_training(cfg)
            stats = window_stats(Path(summary["run_dir"]))
            stats["balanced"] = float(summary["accounting"]["balanced"])
            runs[mode].append(stats)
            print(f"{mode}-{rep}: {stats['trained_samples_per_s']:.1f} trained samples/s", file=sys.stderr)
    ratios = [
        a["trained_samples_per_s"] / s["trained_samples_per_s"]
        for s, a in zip(runs["sync"], runs["async"], strict=True)
    ]
    ratio = statistics.median(ratios)
    result = {
        "config": common,
        "runs": runs,
        "pair_ratios": ratios,
        "async_over_sync": ratio,
        "target": 1.5,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipeline_throughput.json").write_text(json.dumps(result, indent=2))
    for mode in ("sync", "async"):
        med = {k: statistics.median(r[k] for r in runs[mode]) for k in runs[mode][0]}
        print(
            f"{mode:5s} (median of {args.repeats}): {med['trained_samples_per_s']:.1f} trained samples/s, "
            f"generator busy {med['generator_busy_frac']:.0%}, learner busy {med['learner_busy_frac']:.0%}",
            file=sys.stderr,
        )
    print(
        f"async/sync throughput ratio: {ratio:.2f} (median of pairs {', '.join(f'{r:.2f}' for r in ratios)}; "
        "target >= 1.5)"
    )


if __name__ == "__main__":
    main()
