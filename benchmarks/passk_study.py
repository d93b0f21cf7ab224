"""Does SimKO keep pass@K up where GRPO-style RLVR concentrates probability? A small-scale check.

Trains GRPO, PSR, NSR, W-REINFORCE and SimKO from the same warm-started tiny model on the same
procedural task with the same budget, through the real pipeline (Serve + vLLM generators, verifier
actors, Ray Train + DeepSpeed learners), for several seeds; evaluates the base and every trained model
on held-out problems with n samples each; tracks Lambda^(k), entropy and the rank-1 fraction over
training; writes tables, plots and REPORT.md under benchmarks/results/passk_study/.

Task: procedural arithmetic mixing one- and two-operator problems (`procedural:arith`). The warm
start solves some of them reliably and others only sometimes, so pass@K for large K measures whether
training keeps the rarely-sampled correct paths alive rather than collapsing onto one answer.

  python benchmarks/passk_study.py --quick      # 1 seed, short budget, no ablation (< 15 min)
  python benchmarks/passk_study.py              # 3 seeds + SimKO ablation (< 90 min on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "results" / "passk_study"
ALGOS = ["grpo", "psr", "nsr", "w_reinforce", "simko"]
ABLATION = {"alpha": [0.0, 0.01, 0.05], "lam": [1.0, 1.1, 1.5], "top_k": [1, 3, 5], "tau": [0.6, 0.8, 1.0]}
SIMKO_DEFAULT = {"alpha": 0.01, "lam": 1.1, "top_k": 3, "tau": 0.8}


def budget(quick: bool) -> dict[str, Any]:
    if quick:
        return {"steps": 12, "prompts": 8, "n": 8, "seeds": [0], "eval_n": 64, "eval_problems": 24}
    return {"steps": 20, "prompts": 8, "n": 8, "seeds": [0, 1, 2], "eval_n": 64, "eval_problems": 48}


def common_overrides(b: dict[str, Any], out_dir: Path) -> list[str]:
    return [
        "data=arith",
        f"trainer.max_steps={b['steps']}",
        f"trainer.prompts_per_step={b['prompts']}",
        f"generator.n_samples={b['n']}",
        "generator.temperature=1.0",
        "trainer.mode=async",
        "trainer.max_staleness=1",
        "learner.lr=2e-4",
        "logging.progress=false",
        "logging.tensorboard=false",
        f"eval.n={b['eval_n']}",
        f"eval.max_prompts={b['eval_problems']}",
        f"data.eval_max_prompts={b['eval_problems']}",
        f"trainer.output_dir={out_dir}",
    ]


def train_and_eval(overrides: list[str], name: str, rollout_eval: Any) -> dict[str, Any]:
    from rlvr.config import load_config
    from rlvr.pipeline.report import read_metrics
    from rlvr.pipeline.run import run_training

    cfg = load_config([*overrides, f"trainer.run_name={name}"])
    t0 = time.time()
    summary = run_training(cfg)
    metrics = read_metrics(Path(summary["run_dir"]))
    lam = {s: m["lambda/rank1"] for s, m in metrics.items() if "lambda/rank1" in m}
    ev = rollout_eval(cfg, summary["checkpoint"])
    return {
        "name": name,
        "overrides": overrides,
        "train_s": round(time.time() - t0, 1),
        "accounting": summary["accounting"],
        "lambda1_curve": lam,
        "final": {
            k: _tail(metrics, k)
            for k in ("lambda/rank1", "lambda/rank2", "lambda/rank3", "entropy", "rank1_frac", "reward")
        },
        "eval": ev,
    }


def _tail(metrics: dict[int, dict[str, float]], key: str, n: int = 3) -> float:
    vals = [m[key] for m in list(metrics.values()) if key in m][-n:]
    return sum(vals) / len(vals) if vals else float("nan")


def make_evaluator() -> Any:
    from rlvr.data.loader import load_prompts
    from rlvr.models.loading import resolve_model_path
    from rlvr.pipeline.components import start_rollout
    from rlvr.pipeline.evaluate import evaluate_prompts, hf_folder

    def evaluate(cfg: Any, model: str | None) -> dict[str, Any]:
        cfg = cfg.model_copy(deep=True)
        if model is not None:
            cfg.model.path = hf_folder(model)
        path = resolve_model_path(cfg.model)
        prompts = load_prompts(cfg.data, evaluation=True)[: cfg.eval.max_prompts]
        rollout = start_rollout(cfg, path, tag=f"study-eval-{int(time.time() * 1000) % 10**8}")
        try:
            return evaluate_prompts(rollout, cfg, prompts)
        finally:
            rollout.shutdown()

    return evaluate


CYCLE = 4  # the arith preset's 32 training problems at 8 per step come round every 4 steps


def _curve(r: dict[str, Any]) -> dict[int, float]:
    return {int(k): float(v) for k, v in r["lambda1_curve"].items()}


def final_lambda1(r: dict[str, Any]) -> float:
    """Mean Λ^(1) over the last full pass through the training problems (per-step values swing with them)."""
    vals = [v for _, v in sorted(_curve(r).items())][-CYCLE:]
    return statistics.fmean(vals) if vals else float("nan")


def summarize(runs: list[dict[str, Any]], base: dict[str, Any]) -> dict[str, Any]:
    ks = list(base["pass_at_k"])
    table: dict[str, Any] = {"base": {k: {"mean": base["pass_at_k"][k], "std": 0.0} for k in ks}}
    for algo in ALGOS:
        mine = [r for r in runs if r["algo"] == algo]
        if not mine:
            continue
        table[algo] = {
            k: {
                "mean": statistics.fmean(r["eval"]["pass_at_k"][k] for r in mine),
                "std": statistics.pstdev([r["eval"]["pass_at_k"][k] for r in mine]),
            }
            for k in ks
        }
        table[algo]["lambda1_final"] = statistics.fmean(final_lambda1(r) for r in mine)
    return table


def plots(runs: list[dict[str, Any]], table: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = [k for k in table["base"]]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for algo, row in table.items():
        ys = [row[k]["mean"] for k in ks]
        err = [row[k]["std"] for k in ks]
        ax.errorbar(
            [int(k) for k in ks],
            ys,
            yerr=err,
            marker="o",
            capsize=2,
            label=algo,
            ls="--" if algo == "base" else "-",
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("K")
    ax.set_ylabel("pass@K (held-out)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "passk_curves.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for algo in ALGOS:
        mine = [r for r in runs if r["algo"] == algo]
        if not mine:
            continue
        curves = [_curve(r) for r in mine]
        steps = sorted({s for c in curves for s in c})
        mean = [statistics.fmean(c[s] for c in curves if s in c) for s in steps]
        # Moving average over one pass through the training problems, whose confidence differs.
        smooth = [statistics.fmean(mean[max(0, i - CYCLE + 1) : i + 1]) for i in range(len(mean))]
        ax.plot(steps, smooth, label=algo)
    ax.set_xlabel("step")
    ax.set_ylabel(f"Λ^(1), mean rank-1 probability ({CYCLE}-step mean)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "lambda1_training.png", dpi=110)
    plt.close(fig)

    kmax = ks[-1]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for r in runs:
        ax.scatter(final_lambda1(r), r["eval"]["pass_at_k"][kmax], label=r["algo"])
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles, strict=True))
    ax.legend(uniq.values(), uniq.keys(), fontsize=8)
    ax.set_xlabel("final Λ^(1)")
    ax.set_ylabel(f"pass@{kmax}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(OUT / "passk_vs_lambda1.png", dpi=110)
    plt.close(fig)


def _pearson(xs: list[float], ys: list[float]) -> float:
    if len(xs) < 3 or statistics.pstdev(xs) == 0 or statistics.pstdev(ys) == 0:
        return float("nan")
    return statistics.correlation(xs, ys)


def report(
    runs: list[dict[str, Any]],
    table: dict[str, Any],
    ablation: list[dict[str, Any]],
    b: dict[str, Any],
    wall: float,
) -> str:
    ks = list(table["base"])
    kmax, k8 = ks[-1], "8" if "8" in ks else ks[len(ks) // 2]
    lines = ["# pass@K study: GRPO vs PSR vs NSR vs W-REINFORCE vs SimKO (tiny model, CPU)", ""]
    lines += [
        f"Budget: {b['steps']} steps x {b['prompts']} prompts x {b['n']} samples, seeds {b['seeds']}; "
        f"eval n={b['eval_n']} on {b['eval_problems']} held-out problems; wall {wall / 60:.1f} min; "
        f"{len(runs)} of {len(b['seeds']) * len(ALGOS)} training runs completed, {len(ablation)} ablation runs.",
        "",
    ]
    lines += [
        f"| model | pass@1 | pass@8 | pass@{kmax} | Δpass@1 | Δpass@{kmax} | final Λ^(1) |",
        "|---|---|---|---|---|---|---|",
    ]
    base = table["base"]
    for algo, row in table.items():
        lam = row.get("lambda1_final")
        lines.append(
            f"| {algo} | {row['1']['mean']:.3f}±{row['1']['std']:.3f} | {row[k8]['mean']:.3f}±{row[k8]['std']:.3f} | "
            f"{row[kmax]['mean']:.3f}±{row[kmax]['std']:.3f} | {row['1']['mean'] - base['1']['mean']:+.3f} | "
            f"{row[kmax]['mean'] - base[kmax]['mean']:+.3f} | {'' if lam is None else f'{lam:.3f}'} |"
        )
    lines += ["", "## The paper's three claims, here", ""]
    seeds_done = sorted({r["seed"] for r in runs})
    if len(seeds_done) < 3:
        lines += [
            f"**{len(seeds_done)} seed(s) completed, no spread. The verdicts below are the rule applied to "
            "these numbers, not evidence: differences this small are within seed noise.**",
            "",
        ]
    g, s = table.get("grpo"), table.get("simko")
    if g:
        c1 = g["1"]["mean"] > base["1"]["mean"] and g[kmax]["mean"] < base[kmax]["mean"]
        lines.append(
            f"1. GRPO raises pass@1 but lowers pass@{kmax}: **{'held' if c1 else 'did not hold'}** "
            f"(pass@1 {base['1']['mean']:.3f} → {g['1']['mean']:.3f}, pass@{kmax} {base[kmax]['mean']:.3f} → {g[kmax]['mean']:.3f})."
        )
    r = _pearson([final_lambda1(x) for x in runs], [x["eval"]["pass_at_k"][kmax] for x in runs])
    lines.append(
        f"2. Stronger concentration goes with worse pass@K: Pearson r(final Λ^(1), pass@{kmax}) = {r:.2f} over "
        f"{len(runs)} runs: **{'held' if r < -0.3 else 'did not hold' if r == r else 'not measurable'}**."
    )
    if g and s:
        better = sum(s[k]["mean"] >= g[k]["mean"] for k in ks)
        keeps = s["1"]["mean"] >= g["1"]["mean"] - max(g["1"]["std"], 0.01)
        c3 = better >= len(ks) - 1 and keeps
        # A direction is not a finding: the gap at the largest K must exceed the seed spread.
        gap, noise = s[kmax]["mean"] - g[kmax]["mean"], max(s[kmax]["std"], g[kmax]["std"])
        verdict = "did not hold" if not c3 else "held" if gap > noise else "same direction, within seed noise"
        lines.append(
            f"3. SimKO keeps pass@K higher across K without giving up pass@1: **{verdict}** "
            f"(SimKO ≥ GRPO at {better}/{len(ks)} K values; pass@{kmax} gap {gap:+.3f} vs spread {noise:.3f}; "
            f"pass@1 {s['1']['mean']:.3f} vs {g['1']['mean']:.3f})."
        )
    worst = [a for a, row in table.items() if a != "base" and row[kmax]["mean"] < base[kmax]["mean"] - 0.1]
    if worst:
        lines.append(
            f"\nNot in the paper: {', '.join(worst)} lowered pass@{kmax} by more than 0.1 here. A likely reason (not tested): pushing down "
            "wrong answers of a tiny model moves probability onto malformed outputs (seen in samples after too-large "
            "updates) rather than onto other correct paths, which the paper's larger models have."
        )
    deltas = [row["1"]["mean"] - base["1"]["mean"] for a, row in table.items() if a != "base"]
    if deltas:
        lines += [
            "",
            f"Held-out pass@1 moved by {min(deltas):+.3f} to {max(deltas):+.3f} across algorithms relative to the "
            "base model: with this budget RL mostly reshapes the distribution on the training problems rather "
            "than teaching the 2-layer model new arithmetic.",
        ]
    lines += [
        "",
        "Why a claim may not reproduce here: a 2-layer character-level model, a short budget and SimKO's "
        "α=0.01 acting on only ~20% of tokens make the effects small next to seed noise; see the spreads above.",
        "",
    ]
    if ablation:
        lines += [
            "## SimKO ablation (one knob at a time around α=0.01, λ=1.1, K=3, τ=0.8; seed 0)",
            "",
            f"| setting | pass@1 | pass@{kmax} | final Λ^(1) |",
            "|---|---|---|---|",
        ]
        for a in ablation:
            lines.append(
                f"| {a['name']} | {a['eval']['pass_at_k']['1']:.3f} | {a['eval']['pass_at_k'][kmax]:.3f} | {final_lambda1(a):.3f} |"
            )
    lines += [
        "",
        "## Hyperparameters (exact overrides)",
        "",
        "```",
        " ".join(runs[0]["overrides"]),
        "```",
        "Each algorithm adds `algorithms=<name>` and `trainer.seed=<s> generator.seed=<s>`; presets in `rlvr/conf/algorithms/`.",
        "",
        "Plots: `passk_curves.png`, `lambda1_training.png`, `passk_vs_lambda1.png`.",
    ]
    return "\n".join(lines) + "\n"


def write_outputs(
    b: dict[str, Any],
    base: dict[str, Any],
    runs: list[dict[str, Any]],
    ablation: list[dict[str, Any]],
    wall: float,
) -> None:
    table = summarize(runs, base)
    plots(runs, table)
    payload = {"budget": b, "base": base, "runs": runs, "ablation": ablation, "table": table}
    (OUT / "results.json").write_text(json.dumps(payload, indent=2, default=str))
    (OUT / "REPORT.md").write_text(report(runs, table, ablation, b, wall))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-ablation", action="store_true")
    ap.add_argument(
        "--extra", nargs="*", default=[], help="overrides for every run (e.g. a bigger model on a GPU)"
    )
    args = ap.parse_args()
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from rlvr.cluster import connect
    from rlvr.config import load_config

    global OUT
    b = budget(args.quick)
    if args.quick:
        OUT = OUT / "quick"  # never overwrite a full study with a quick one
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("RLVR_STUDY_DIR", "/tmp/rlvr-passk-study")) / time.strftime("%Y%m%d-%H%M%S")
    base_ovs = [*common_overrides(b, work), *args.extra]
    t0 = time.time()
    connect(load_config(base_ovs).cluster)
    evaluate = make_evaluator()
    base = evaluate(load_config(base_ovs), None)
    runs = []
    for seed in b["seeds"]:
        for algo in ALGOS:
            ovs = [*base_ovs, f"algorithms={algo}", f"trainer.seed={seed}", f"generator.seed={seed}"]
            r = train_and_eval(ovs, f"{algo}-s{seed}", evaluate)
            r["algo"], r["seed"] = algo, seed
            runs.append(r)
            write_outputs(b, base, runs, [], time.time() - t0)  # partial results survive an interrupted study
            print(
                f"[study] {algo} seed {seed}: pass@1 {r['eval']['pass_at_k']['1']:.3f} "
                f"pass@{b['eval_n']} {r['eval']['pass_at_k'][str(b['eval_n'])]:.3f}",
                file=sys.stderr,
                flush=True,
            )
    ablation = []
    if not (args.quick or args.no_ablation):
        for knob, values in ABLATION.items():
            for v in values:
                if v == SIMKO_DEFAULT[knob]:
                    continue
                ovs = [
                    *base_ovs,
                    "algorithms=simko",
                    f"algorithm.params.{knob}={v}",
                    "trainer.seed=0",
                    "generator.seed=0",
                ]
                a = train_and_eval(ovs, f"simko-{knob}{v}", evaluate)
                a["knob"], a["value"] = knob, v
                ablation.append(a)
                write_outputs(b, base, runs, ablation, time.time() - t0)
    write_outputs(b, base, runs, ablation, time.time() - t0)
    print((OUT / "REPORT.md").read_text())


if __name__ == "__main__":
    main()
