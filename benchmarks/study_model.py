"""Which offline model does RL actually move? The gate before any pass@K comparison.

For each candidate warm start and task: greedy accuracy and sampled (T=1) pass@1 of the base model on two
problem sets, `held_out` (never in the RL pool) and `seen` (from the RL pool), then GRPO for a fixed budget
with several seeds through the real pipeline, and the same measures after. The gate passes on a set when
GRPO's sampled pass@1 gain excludes 0 both across seeds (95% t) and across problems (95% bootstrap); see
benchmarks/study_stats.py. Writes benchmarks/results/study_model.json.

  python benchmarks/study_model.py --model tiny4                 # all tasks, 3 seeds (~10-25 min a task on 2 cores)
  python benchmarks/study_model.py --model tiny4 --task arith --seeds 0
  python benchmarks/study_model.py --task addition_steps --pool 512 --tag pool512   # a variant, kept apart

A task's warm start is built (SFT) the first time: about 12 minutes for tiny4 on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # imported by a test that put it there (and takes it out): leave the path as is
    sys.path.insert(0, _HERE)
from study_stats import effect, verdict  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

# Candidate warm starts. tiny2 is the main job's default (0.37M parameters); tiny4 has 3.5M, SFT'd twice as long.
MODELS: dict[str, list[str]] = {
    "tiny2": [],
    "tiny4": [
        "model.tiny.num_layers=4",
        "model.tiny.hidden_size=256",
        "model.tiny.num_heads=4",
        "model.tiny.intermediate_size=768",
        "model.tiny.sft_steps=3000",
        "model.tiny.sft_lr=1e-3",
    ],
}
# tiny4 whose warm start saw 30% near-miss answers (off by 1 or 10; in countdown_short an expression 1 to 3 off
# the target): it computes the answer but samples slips, as a pretrained model samples wrong solutions to
# problems it can solve; RL's sharpening has room to show.
MODELS["tiny4n"] = [*MODELS["tiny4"], "model.tiny.sft_noise=0.3"]
# Tasks: arith has one right answer per problem (arith_steps: the same problems, the warm start writes its
# working); addition has ~10^8 problems, too many to recall (addition_steps: the sum written backwards first);
# countdown_short has >= 2 solution paths per puzzle.
TASKS: dict[str, list[str]] = {
    "arith": ["data=arith", "model.tiny.task=arith"],
    "arith_steps": ["data=arith", "data.source=procedural:arith_steps", "model.tiny.task=arith_steps"],
    # 1-4 digit sums: ~10^8 problems, so the warm start computes rather than recalls them.
    "addition": ["data=arith", "data.source=procedural:addition", "model.tiny.task=addition"],
    "addition_steps": [
        "data=arith",
        "data.source=procedural:addition_steps",
        "model.tiny.task=addition_steps",
    ],
    "countdown_short": [
        "data.source=procedural:countdown_short",
        "data.default_data_source=countdown",
        "verifiers=countdown",
        "model.tiny.task=countdown_short",
    ],
}


POOL = 128  # RL training problems (data.num_procedural): 30 steps x 16 prompts visit each ~4 times


def common(steps: int, lr: float, pool: int, problems: int, out: Path) -> list[str]:
    """The RL budget shared by this gate and benchmarks/passk_study.py."""
    return [
        f"trainer.max_steps={steps}",
        "trainer.prompts_per_step=16",
        "generator.n_samples=8",
        "generator.temperature=1.0",
        "generator.max_tokens=40",  # countdown_short answers run to ~30 tokens
        "trainer.mode=sync",
        # The recorded study and gate runs sampled with vLLM (auto's choice then); auto now picks the
        # transformers loop for these small models, whose per-sample draws differ: keep vLLM.
        "generator.backend=vllm",
        "learner.mini_batch_size=128",  # one optimizer step per RL step (4 at lr 2e-4 collapsed tiny4)
        f"learner.lr={lr}",
        f"data.num_procedural={pool}",
        f"data.eval_max_prompts={4 * problems}",  # drawn wide, then problems seen in training are dropped
        "logging.progress=false",
        "logging.tensorboard=false",
        f"trainer.output_dir={out}",
    ]


def held_out(cfg: Any, problems: int) -> list[Any]:
    """Evaluation problems whose text never appears in the training pool (the spaces overlap)."""
    from rlvr.data.loader import load_prompts

    seen = {p.text for p in load_prompts(cfg.data)}
    fresh = [p for p in load_prompts(cfg.data, evaluation=True) if p.text not in seen]
    return fresh[:problems]


def seen(cfg: Any, problems: int) -> list[Any]:
    """Problems from the RL training pool itself (each drawn steps x 16 / pool times in training, on average)."""
    from rlvr.data.loader import load_prompts

    return load_prompts(cfg.data)[:problems]


def on_rollout(cfg: Any, model: str | None, fn: Any) -> Any:
    """fn(rollout, cfg) on a fresh generator + verifiers serving `model` (None: the config's), then shut down."""
    from rlvr.models.loading import resolve_model_path
    from rlvr.pipeline.components import start_rollout
    from rlvr.pipeline.evaluate import hf_folder

    cfg = cfg.model_copy(deep=True)
    if model is not None:
        cfg.model.path = hf_folder(model)
    rollout = start_rollout(
        cfg, resolve_model_path(cfg.model), tag=f"study-{int(time.time() * 1000) % 10**8}"
    )
    try:
        return fn(rollout, cfg)
    finally:
        rollout.shutdown()


def evaluate(cfg: Any, model: str | None, sets: dict[str, list[Any]], samples: int) -> dict[str, Any]:
    """{set: {"greedy" | "sampled": (n, per-problem correct counts)}} through the real generator and verifiers."""
    from rlvr.pipeline.evaluate import evaluate_prompts

    def run(rollout: Any, cfg: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, prompts in sets.items():
            out[name] = {}
            for mode, n, temp in (("greedy", 1, 0.0), ("sampled", samples, 1.0)):
                cfg.eval.n, cfg.eval.temperature = n, temp
                out[name][mode] = (n, evaluate_prompts(rollout, cfg, prompts)["per_problem_correct"])
        return out

    return on_rollout(cfg, model, run)


def _mean(ev: tuple[int, list[int]]) -> float:
    return sum(ev[1]) / (ev[0] * len(ev[1]))


def gate(model: str, task: str, a: argparse.Namespace, work: Path) -> dict[str, Any]:
    from rlvr.config import load_config
    from rlvr.pipeline.run import run_training

    ovs = [*TASKS[task], *MODELS[model], *common(a.steps, a.lr, a.pool, a.problems, work), *a.extra]
    cfg = load_config(ovs)
    sets = {"held_out": held_out(cfg, a.problems), "seen": seen(cfg, a.problems)}
    t0 = time.time()
    base = evaluate(cfg, None, sets, a.samples)
    runs = []
    for seed in a.seeds:
        run_cfg = load_config([*ovs, f"trainer.seed={seed}", f"trainer.run_name=gate-{model}-{task}-s{seed}"])
        summary = run_training(run_cfg)
        ev = evaluate(cfg, summary["checkpoint"], sets, a.samples)
        runs.append({"seed": seed, "eval": ev, "wall_s": summary["wall_s"]})
        print(
            f"[gate] {model} {task} seed {seed}: pass@1 (T=1) held-out {_mean(base['held_out']['sampled']):.3f} -> "
            f"{_mean(ev['held_out']['sampled']):.3f}, seen {_mean(base['seen']['sampled']):.3f} -> "
            f"{_mean(ev['seen']['sampled']):.3f}",
            file=sys.stderr,
            flush=True,
        )
    out: dict[str, Any] = {"model": model, "task": task, "overrides": ovs, "problems": a.problems}
    for name in sets:
        out[name] = {}
        for mode in ("greedy", "sampled"):
            e = effect([r["eval"][name][mode] for r in runs], [base[name][mode]], 1)
            after = [_mean(r["eval"][name][mode]) for r in runs]
            out[name][mode] = {
                "base": _mean(base[name][mode]),
                "after": after,
                **e,
                "verdict": verdict(e, +1),
            }
    # The gate: GRPO's sampled pass@1 gain excludes 0 across seeds and across problems.
    out["moves_held_out"] = out["held_out"]["sampled"]["verdict"] == "reproduced"
    out["moves_seen"] = out["seen"]["sampled"]["verdict"] == "reproduced"
    out["wall_s"] = round(time.time() - t0, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", nargs="*", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--task", nargs="*", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--pool", type=int, default=POOL, help="training problems (data.num_procedural)")
    ap.add_argument("--problems", type=int, default=64, help="problems per set (held-out, seen)")
    ap.add_argument("--samples", type=int, default=32, help="samples per problem for pass@1 at T=1")
    ap.add_argument("--extra", nargs="*", default=[], help="overrides for every run")
    ap.add_argument("--tag", default="", help="suffix of the result key (model/task/tag) for a variant")
    a = ap.parse_args()
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from rlvr.cluster import connect
    from rlvr.config import load_config

    work = Path(os.environ.get("RLVR_STUDY_DIR", "/tmp/rlvr-study-model")) / time.strftime("%Y%m%d-%H%M%S")
    connect(load_config([]).cluster)
    path = RESULTS / "study_model.json"
    done = json.loads(path.read_text()) if path.exists() else {}
    for model in a.model:
        for task in a.task:
            r = gate(model, task, a, work)
            r["args"] = {k: v for k, v in vars(a).items() if k not in ("model", "task", "tag")}
            done["/".join(x for x in (model, task, a.tag) if x)] = r
            RESULTS.mkdir(exist_ok=True)
            path.write_text(json.dumps(done, indent=2))
            print(json.dumps({k: r[k] for k in ("model", "task", "moves_held_out", "moves_seen")}))


if __name__ == "__main__":
    main()
