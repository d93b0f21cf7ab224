"""REPORT.md and the plots of benchmarks/passk_study.py, from its results state (pure: reads, never runs)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from study_stats import effect, fmt, pearson_within, verdict

PLOTS = ("passk_curves.png", "passk_vs_lambda1.png", "lambda1_training.png")


def _arm(runs: list[dict[str, Any]]) -> list[tuple[int, list[int]]]:
    return [(r["eval"]["n"], r["eval"]["per_problem_correct"]) for r in sorted(runs, key=lambda r: r["seed"])]


def _final(r: dict[str, Any], key: str, last: int = 5) -> float:
    vals = [v for _, v in sorted((int(s), v) for s, v in r["curves"].get(key, {}).items())][-last:]
    return statistics.fmean(vals) if vals else float("nan")


def _by_algo(t: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in t["runs"]:
        out.setdefault(r["algo"], []).append(r)
    return out


def task_section(name: str, t: dict[str, Any]) -> list[str]:
    base, algos = t["base"], _by_algo(t)
    ks = list(base["pass_at_k"])
    kmax = int(ks[-1])
    show = [k for k in ("1", "8", "64", str(kmax)) if k in ks]
    show = list(dict.fromkeys(show))
    lines = [f"## {name} ({t['problems']} problems, n={kmax} samples each)", ""]
    lines += [
        "| model | "
        + " | ".join(f"pass@{k}" for k in show)
        + f" | Δpass@1 vs base | Δpass@{kmax} vs base | final Λ^(1) | final entropy |",
        "|---" * (len(show) + 5) + "|",
    ]
    lines.append("| base | " + " | ".join(f"{base['pass_at_k'][k]:.3f}" for k in show) + " | | | | |")
    b = _arm([{"seed": 0, "eval": base}])
    for algo, runs in algos.items():
        cells = []
        for k in show:
            vals = [r["eval"]["pass_at_k"][k] for r in runs]
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            cells.append(f"{statistics.fmean(vals):.3f}±{sd:.3f}")
        d1, dk = effect(_arm(runs), b, 1), effect(_arm(runs), b, kmax)
        lam = statistics.fmean(_final(r, "lambda/rank1") for r in runs)
        ent = statistics.fmean(_final(r, "entropy") for r in runs)
        lines.append(
            f"| {algo} | " + " | ".join(cells) + f" | {fmt(d1)} | {fmt(dk)} | {lam:.3f} | {ent:.3f} |"
        )
    lines += [
        "",
        "± is the standard deviation across seeds; intervals are 95% (seeds: t; problems: bootstrap).",
        "",
    ]
    lines += [f"### The paper's claims on {name}", ""]
    kstar = unsaturated_k(base["pass_at_k"])
    lines += claims(t, algos, b, kmax)
    if kstar not in (None, kmax):
        lines += [
            "",
            f"pass@{kmax} of the base model is {base['pass_at_k'][str(kmax)]:.3f}, too close to 1 to move; "
            f"the same claims at K={kstar}, the largest K where the base is below {SATURATED}:",
            "",
            *claims(t, algos, b, kstar),
        ]
    g, s = algos.get("grpo"), algos.get("simko")
    if g and s:
        both_seeds = {r["seed"] for r in g} & {r["seed"] for r in s}
        s = [r for r in s if r["seed"] in both_seeds]
        lines += every_k(ks[1:], [r for r in g if r["seed"] in both_seeds], s, b)
    if t.get("ablation") and s:
        ref = [r for r in s if r["seed"] == 0]
        wide = kstar if kstar is not None else kmax  # the largest K where the base has room to move
        lines += ["", f"### SimKO ablation on {name} (seed 0; one knob at a time)", ""]
        lines += [
            f"| setting | pass@1 | Δpass@1 vs SimKO (problems 95%) | pass@{wide} | Δpass@{wide} vs SimKO "
            "(problems 95%) | final Λ^(1) |",
            "|---|---|---|---|---|---|",
        ]
        for a in [*ref, *t["ablation"]]:
            label = a.get("label", "SimKO preset (alpha 0.01, lam 1.1, K 3, tau 0.8)")
            e1, ew = effect(_arm([a]), _arm(ref), 1), effect(_arm([a]), _arm(ref), wide)
            pk = a["eval"]["pass_at_k"]
            lines.append(
                f"| {label} | {pk['1']:.3f} | {e1['diff']:+.3f} [{e1['problems_lo']:+.3f}, "
                f"{e1['problems_hi']:+.3f}] | {pk[str(wide)]:.3f} | {ew['diff']:+.3f} [{ew['problems_lo']:+.3f}, "
                f"{ew['problems_hi']:+.3f}] | {_final(a, 'lambda/rank1'):.3f} |"
            )
    return [*lines, ""]


def every_k(ks: list[str], grpo: list[dict[str, Any]], simko: list[dict[str, Any]], base: Any) -> list[str]:
    """GRPO - base and SimKO - GRPO at every K: a description of the curves, not a test (see the header)."""
    if not (grpo and simko):
        return []
    lines = [
        "",
        "Every K, read after the runs (a description of passk_curves.png, not a test: the verdicts above use "
        "the K fixed before the runs, and picking the K with the largest effect afterwards would overstate it):",
        "",
        "| K | GRPO − base | SimKO − GRPO |",
        "|---|---|---|",
    ]
    for k in ks:
        up, gap = effect(_arm(grpo), base, int(k)), effect(_arm(simko), _arm(grpo), int(k))
        lines.append(f"| {k} | {fmt(up)} | {fmt(gap)} |")
    return lines


def plots(state: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(state["tasks"].items())
    if not tasks:
        return
    for fname, draw in zip(PLOTS, (_curves, _scatter, _training), strict=True):
        fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
        for ax, (name, t) in zip(axes[0], tasks, strict=True):
            draw(ax, t)
            ax.set_title(name)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / fname, dpi=110)
        plt.close(fig)


def _curves(ax: Any, t: dict[str, Any]) -> None:
    ks = [int(k) for k in t["base"]["pass_at_k"]]
    ax.plot(ks, list(t["base"]["pass_at_k"].values()), "k--", marker="o", label="base")
    for algo, runs in _by_algo(t).items():
        means = [statistics.fmean(r["eval"]["pass_at_k"][str(k)] for r in runs) for k in ks]
        sds = [
            statistics.stdev([r["eval"]["pass_at_k"][str(k)] for r in runs]) if len(runs) > 1 else 0
            for k in ks
        ]
        ax.errorbar(ks, means, yerr=sds, marker="o", capsize=2, label=algo)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("K")
    ax.set_ylabel("held-out pass@K")


def _scatter(ax: Any, t: dict[str, Any]) -> None:
    kmax = list(t["base"]["pass_at_k"])[-1]
    for algo, runs in _by_algo(t).items():
        ax.scatter(
            [_final(r, "lambda/rank1") for r in runs],
            [r["eval"]["pass_at_k"][kmax] for r in runs],
            label=algo,
        )
    ax.set_xlabel("final Λ^(1) (mean of the last 5 steps)")
    ax.set_ylabel(f"held-out pass@{kmax}")


def _training(ax: Any, t: dict[str, Any]) -> None:
    for algo, runs in _by_algo(t).items():
        steps = sorted({int(s) for r in runs for s in r["curves"].get("lambda/rank1", {})})
        ys = [
            statistics.fmean(
                r["curves"]["lambda/rank1"][str(s)] for r in runs if str(s) in r["curves"]["lambda/rank1"]
            )
            for s in steps
        ]
        ax.plot(steps, ys, label=algo)
    ax.set_xlabel("step")
    ax.set_ylabel("Λ^(1), mean rank-1 probability (seed mean)")


def _done(state: dict[str, Any]) -> int:
    """Training runs finished (each is evaluated on every set of its task, so count one set per task)."""
    per_task: dict[str, int] = {}
    for key, t in state["tasks"].items():
        per_task[key.split("/")[0]] = len(t["runs"]) + len(t.get("ablation", []))
    return sum(per_task.values())


def start_mismatches(state: dict[str, Any]) -> list[str]:
    """Runs whose step 0 (reward, entropy) differs from the other runs of their seed on their task.

    Step 0 samples the warm start before any update, so within a seed it is identical for every algorithm;
    a run that differs trained another warm start or sampling code (e.g. resumed on another machine).
    """
    out = []
    for key, t in state["tasks"].items():
        if not key.endswith("/held_out"):
            continue  # both sets of a task hold the same training runs
        by_seed: dict[int, list[tuple[str, tuple[Any, Any]]]] = {}
        for r in t["runs"]:
            start = (r["curves"]["reward"].get("0"), r["curves"]["entropy"].get("0"))
            by_seed.setdefault(r["seed"], []).append((r["name"], start))
        for runs in by_seed.values():
            common = statistics.mode([s for _, s in runs])
            out += [name for name, s in runs if s != common]
    return out


# What each study model is (benchmarks/study_model.py's MODELS), and what that setup limits.
MODEL_NOTES = {
    "tiny4": "a 4-layer, 3.5M-parameter byte-level model",
    "tiny4n": "a 4-layer, 3.5M-parameter byte-level model whose warm start saw 30% near-miss answers "
    "(`model.tiny.sft_noise=0.3`): it samples slips on problems it can solve, a gap RL can close on any problem",
}


def report(state: dict[str, Any]) -> str:
    b = state["budget"]
    model = state.get("model", "tiny4")
    title = f"# pass@K study: GRPO, PSR, NSR, W-REINFORCE, SimKO vs the base model ({model}, CPU)"
    lines = [title, ""]
    lines += [
        f"Commit `{state['commit']}`; {b['steps']} steps x 16 prompts x 8 samples, sync, lr {state['lr']}, seeds "
        f"{b['seeds']}; held-out eval n={b['eval_n']} at T=1; wall {state.get('wall_s', 0) / 60:.1f} min. "
        "Exact overrides per run in results.json.",
        "",
        f"Training runs completed: {_done(state)} of {state.get('planned_runs', '?')} planned"
        f"{'' if _done(state) == state.get('planned_runs') else ' (interrupted or still running: partial)'}.",
        "",
        "Each task is evaluated on two problem sets: `held_out` (never in the RL training pool) and `seen` "
        f"(the first problems of the RL pool: {_pool_text(state)}). benchmarks/study_model.py's gate "
        "(results/study_model.json) measures on which of them GRPO moves pass@1 at all.",
        "",
    ]
    for name, t in state["tasks"].items():
        if t["runs"]:
            lines += task_section(name, t)
    lines += [
        "## What limits these conclusions",
        "",
        f"- The model is {MODEL_NOTES.get(model, model)}; {len(b['seeds'])} seed(s) and "
        f"{b['problems']} held-out problems per task. Intervals above say how far that carries.",
        f"- Training is short ({b['steps']} steps; the paper trains hundreds), so effects that need more "
        "steps may not have appeared yet.",
        "- Problem spaces are small (arith ~9k problems, countdown_short ~800 puzzles); held-out problems are "
        "disjoint from the RL training pool but not from the warm start's SFT data. A model this small answers "
        "by recall more than by a procedure, so RL on one problem carries over little to others: claims on "
        "`seen` are about reshaping the distribution on trained problems, not about generalisation"
        + (
            f" (in {', '.join(rare)}, where each pool problem was drawn less than once on average, many `seen` "
            "problems were never drawn: `seen` is then close to a sample of the task itself, while `held_out`, the "
            "problems outside the pool, leans to the rarer ones: in arith, two operators)"
            if (rare := [t for t, v in _visits(state).items() if v < 1])
            else ""
        )
        + (
            "; tiny4n's near-miss slips are the exception, an error shared across problems (its gate in "
            "results/study_model.json: GRPO raised held-out pass@1 on arith and countdown_short)."
            if model == "tiny4n"
            else "."
        ),
        _saturation_note(state),
    ]
    odd = start_mismatches(state)
    lines += [
        f"- Step 0 differs from the other runs of its seed for: {', '.join(odd)}. Those runs trained another "
        "warm start or sampling code than the rest of their seed (a resume across machines or commits)."
        if odd
        else "- Every run of a seed starts from the same step-0 samples (reward and entropy agree to the last "
        "digit), so all of them trained the same warm start.",
        "",
    ]
    return "\n".join(lines)


def pools(b: dict[str, Any], tasks: list[str]) -> dict[str, int]:
    """RL pool per task: one number for every task, or a number per task (128 before the pool was set)."""
    pool = b.get("pool", 128)
    return {t: pool[t] for t in tasks} if isinstance(pool, dict) else dict.fromkeys(tasks, pool)


def _pools(state: dict[str, Any]) -> dict[str, int]:
    return pools(state["budget"], list(dict.fromkeys(name.split("/")[0] for name in state["tasks"])))


def _visits(state: dict[str, Any]) -> dict[str, float]:
    """How often training drew each RL-pool problem on average, per task with results (16 prompts a step)."""
    return {t: state["budget"]["steps"] * 16 / n for t, n in _pools(state).items()}


def _pool_text(state: dict[str, Any]) -> str:
    visits = _visits(state)
    return "; ".join(
        f"{t} {n} problems, each drawn {visits[t]:.1f} times in training on average"
        for t, n in _pools(state).items()
    )


def _saturation_note(state: dict[str, Any]) -> str:
    b = state["budget"]
    kmax = str(b["eval_n"])
    base = {n: t["base"]["pass_at_k"].get(kmax) for n, t in state["tasks"].items() if t["runs"]}
    shared = (
        "the concentration claim is tested within seeds because the runs of one seed share their evaluation "
        "draws (across seeds pass@K moved with the seed, not the algorithm)."
    )
    if base and all(v is not None and v >= SATURATED for v in base.values()):
        return (
            f"- pass@{kmax} is near 1 for the base model already, so a difference in it is one or two of the "
            f"{b['problems']} problems; {shared}"
        )
    where = ", ".join(f"{n} {v:.3f}" for n, v in base.items() if v is not None)
    return f"- The base model's pass@{kmax}: {where}; {shared}"


def write(state: dict[str, Any], out: Path) -> None:
    plots(state, out)
    (out / "REPORT.md").write_text(report(state))


SATURATED = 0.98  # a base pass@K at or above this leaves one or two problems to move


def unsaturated_k(pass_at_k: dict[str, float]) -> int | None:
    """The largest K > 1 at which the base model's pass@K is below SATURATED (None if there is none)."""
    ks = [int(k) for k, v in pass_at_k.items() if int(k) > 1 and v < SATURATED]
    return max(ks) if ks else None


def claims(t: dict[str, Any], algos: dict[str, list[dict[str, Any]]], b: Any, kk: int) -> list[str]:
    """The three claims, with pass@kk as the wide K."""
    lines: list[str] = []
    g, s = algos.get("grpo"), algos.get("simko")
    if g:
        up, down = effect(_arm(g), b, 1), effect(_arm(g), b, kk)
        v1, v2 = verdict(up, +1), verdict(down, -1)
        both = (
            "reproduced"
            if v1 == v2 == "reproduced"
            else "refuted"
            if "refuted" in (v1, v2)
            else "inconclusive"
        )
        lines.append(
            f"1. **GRPO raises pass@1 but lowers pass@{kk}: {both}.** Δpass@1 {fmt(up)}: {v1}; "
            f"Δpass@{kk} {fmt(down)}: {v2} (figure: passk_curves.png)."
        )
    xs = [_final(r, "lambda/rank1") for r in t["runs"]]
    ys = [r["eval"]["pass_at_k"][str(kk)] for r in t["runs"]]
    # Within seeds: runs of one seed share their evaluation draws, so across seeds pass@K moves together.
    seeds = [r["seed"] for r in t["runs"]]
    r, lo, hi = pearson_within(xs, ys, seeds)
    too_few = len(xs) - 3 - (len(set(seeds)) - 1) < 1
    v = (
        (
            "inconclusive (too few runs)"
            if too_few
            else f"inconclusive (pass@{kk} or Λ^(1) constant within seeds)"
        )
        if r != r
        else "reproduced"
        if hi < 0
        else "refuted"
        if lo > 0
        else "inconclusive"
    )
    lines.append(
        f"2. **Stronger concentration goes with worse pass@{kk}: {v}.** Pearson r(final Λ^(1), pass@{kk}) "
        f"within seeds = {r:.2f}, 95% [{lo:.2f}, {hi:.2f}] over {len(xs)} runs of "
        f"{len(set(seeds))} seed(s) (figure: passk_vs_lambda1.png)."
    )
    if g and s:
        both_seeds = {r["seed"] for r in g} & {r["seed"] for r in s}  # a partial study may lack some
        g, s = [r for r in g if r["seed"] in both_seeds], [r for r in s if r["seed"] in both_seeds]
    if g and s:
        wide, one = effect(_arm(s), _arm(g), kk), effect(_arm(s), _arm(g), 1)
        vw, v1 = verdict(wide, +1), verdict(one, +1)
        claim = (
            "refuted"
            if vw == "refuted" or v1 == "refuted"
            else "reproduced"
            if vw == "reproduced"
            else "inconclusive"
        )
        lines.append(
            f"3. **SimKO raises pass@{kk} over GRPO without losing pass@1: {claim}.** pass@{kk} SimKO − GRPO "
            f"{fmt(wide)}: {vw}; pass@1 SimKO − GRPO {fmt(one)} ({'lower' if v1 == 'refuted' else 'not lower'})."
        )
    return lines
