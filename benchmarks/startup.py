"""Where the main job's start-up goes, and which generator backend serves the tiny model better.

Runs `rlvr run` (the main job, its embedded defaults; `--steps`, default 2) in two settings (`SETTINGS`): the
vLLM deployment (what `generator.backend=auto` picked for every model before this release) and today's
default, where `auto` picks the transformers loop for models under 20M parameters. Interleaved for
`--rounds` rounds, each setting with its own inductor cache (round 0 cold, as on a fresh machine), each a
fresh process measured by `proc_tree.py`: the start-up timeline from summary.json (seconds since the
process began: imports+config, pipeline imports+model+prompts, Ray, Serve+generator+verifiers, Ray Train+DeepSpeed, first
generation, first learner step), wall time, peak PSS of the whole process tree and the process count.
Prints the per-phase medians and each setting's ratios to the vLLM setting; writes
benchmarks/results/startup.json.

  python benchmarks/startup.py --rounds 2 [--steps 60]
  python benchmarks/startup.py --baseline-tree /tmp/rlvr-prev   # today's default vs an earlier checkout's

With `--baseline-tree DIR` (e.g. `git worktree add DIR <commit>`) the baseline is the default setting run from
DIR's `rlvr` package (first on PYTHONPATH; `algorithms/` and `verifiers/` still come from this checkout),
so a start-up change is measured side by side with the code before it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from proc_tree import become_subreaper, last_json_line, measured

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "startup.json"
# (overrides, environment): the vLLM deployment, and today's default (auto: the transformers loop here).
SETTINGS: dict[str, tuple[list[str], dict[str, str]]] = {
    "vllm": (["generator.backend=vllm"], {}),
    "auto": ([], {}),
}
BASELINE = "vllm"
BASE = ["logging.progress=false", "logging.tensorboard=false"]


def one(setting: str, tmp: Path, tag: str, steps: int) -> dict[str, Any]:
    log = tmp / f"{tag}.log"
    overrides, extra_env = SETTINGS[setting]
    base = [f"trainer.max_steps={steps}", *BASE]
    cmd = [sys.executable, "-m", "rlvr.cli", "run", *base, *overrides, f"trainer.output_dir={tmp / tag}"]
    cache = tmp / f"inductor-{setting}"  # per setting: its first round compiles from scratch
    env = {
        **os.environ,
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "TORCHINDUCTOR_CACHE_DIR": str(cache),
        **extra_env,
    }

    def moments() -> dict[str, float]:
        s = last_json_line(log, "run_dir")
        marks = (s or {}).get("startup") or {}
        return {k: marks[k] for k in ("rollout_ready", "learners_ready", "first_generation") if k in marks}

    res = measured(
        cmd, env, log, timeout_s=1200, cwd=Path(env.get("PYTHONPATH") or HERE.parent), cpu_at=moments
    )
    summary = last_json_line(log, "run_dir")
    res["setting"] = setting
    res["startup"] = summary.get("startup") if summary else None
    res["run_wall_s"] = summary.get("wall_s") if summary else None
    res["ok"] = res["rc"] == 0 and bool(res["startup"])
    return res


def medians(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for setting in SETTINGS:
        ok = [r for r in runs if r["setting"] == setting and r["ok"]]
        if not ok:
            continue
        row = {
            k: statistics.median(r[k] for r in ok)
            for k in ("process_wall_s", "run_wall_s", "peak_pss_gib", "peak_rss_gib")
        }
        row["peak_processes"] = statistics.median(r["peak_processes"] for r in ok)
        # Core-seconds every process of the run used before the first generation (2 cores: >= 2x faster
        # wall is impossible while they are all needed).
        cpu = [sum(r["cpu_s_by_process_until"]["first_generation"].values()) for r in ok
               if "first_generation" in r.get("cpu_s_by_process_until", {})]  # fmt: skip
        if cpu:
            row["cpu_s_to_first_generation"] = round(statistics.median(cpu), 1)
        for phase in ok[0]["startup"]:
            row[f"startup/{phase}"] = statistics.median(
                r["startup"][phase] for r in ok if phase in r["startup"]
            )
        row["runs_ok"] = len(ok)
        # Round 0 ran with a cold inductor cache (a fresh machine), later rounds with a warm one.
        by_round = {r["round"]: r["startup"].get("first_generation") for r in ok}
        row["first_generation_by_round"] = [by_round.get(i) for i in sorted(by_round)]
        out[setting] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2, help="trainer.max_steps of each run")
    ap.add_argument("--baseline-tree", type=Path, help="baseline: the default setting from this checkout")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    global BASELINE
    if args.baseline_tree:
        tree = args.baseline_tree.resolve()
        if not (tree / "rlvr" / "__init__.py").exists():
            raise SystemExit(f"--baseline-tree: no rlvr package in {tree}")
        SETTINGS.clear()
        SETTINGS.update({"baseline_tree": ([], {"PYTHONPATH": str(tree)}), "auto": ([], {})})
        BASELINE = "baseline_tree"
    become_subreaper()
    tmp = Path(tempfile.mkdtemp(prefix="rlvr-startup-"))
    runs: list[dict[str, Any]] = []
    order = list(SETTINGS)
    for rnd in range(args.rounds):
        for setting in order if rnd % 2 == 0 else reversed(order):
            r = one(setting, tmp, f"{setting}-r{rnd}", args.steps)
            r["round"] = rnd
            runs.append(r)
            print(f"[startup] {setting} r{rnd}: rc={r['rc']} {r['startup']} pss={r['peak_pss_gib']:.2f} GiB "
                  f"procs={r['peak_processes']}", file=sys.stderr, flush=True)  # fmt: skip
    med = medians(runs)
    result: dict[str, Any] = {"command": f"rlvr run trainer.max_steps={args.steps} " + " ".join(BASE), "cpus": os.cpu_count(),
                              "when": time.strftime("%Y-%m-%d %H:%M"), "baseline": BASELINE,
                              "baseline_tree": str(args.baseline_tree) if args.baseline_tree else None,
                              "medians": med, "runs": runs}  # fmt: skip
    base = med.get(BASELINE)
    keys = (
        "startup/first_generation",
        "startup/first_step",
        "process_wall_s",
        "run_wall_s",
        "peak_pss_gib",
        "peak_processes",
        "cpu_s_to_first_generation",
    )
    if base:
        result["over_baseline"] = {
            name: {k: row[k] / base[k] for k in keys if row.get(k) and base.get(k)}
            for name, row in med.items() if name != BASELINE
        }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps({"medians": med, "over_baseline": result.get("over_baseline")}, indent=2))
    if all(r["ok"] for r in runs):  # run folders and inductor caches; a failed run's log stays to read
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
