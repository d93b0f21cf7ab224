"""Intervals and verdicts for the pass@K study: pure functions over per-problem correct counts.

A run's evaluation is `(n, [c_1, ..., c_P])`: n samples on each of P held-out problems, c_i correct.
Effects compare two arms (e.g. GRPO vs base) as the mean over seeds of pass@K. Two intervals:
- seeds: a 95% t-interval of the per-seed differences (how much a re-run would move it);
- problems: a 95% bootstrap interval resampling problems, seeds averaged (how much other problems would).
A claim is "reproduced" when both intervals exclude 0 in its direction, "refuted" when both exclude 0 the
other way, and "inconclusive" otherwise.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence

from rlvr.metrics.passk import pass_at_k

T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}


def per_problem(n: int, correct: Sequence[int], k: int) -> list[float]:
    return [pass_at_k(n, c, k) for c in correct]


def t_halfwidth(xs: Sequence[float]) -> float:
    if len(xs) < 2:
        return float("nan")
    return T95.get(len(xs) - 1, 1.96) * statistics.stdev(xs) / math.sqrt(len(xs))


def effect(
    arm: Sequence[tuple[int, Sequence[int]]],
    ref: Sequence[tuple[int, Sequence[int]]],
    k: int,
    reps: int = 2000,
) -> dict[str, float]:
    """pass@k(arm) - pass@k(ref). Runs pair by index (seed); a single `ref` run (the base model) pairs with all."""
    a = [per_problem(n, c, k) for n, c in arm]
    r = [per_problem(n, c, k) for n, c in ref]
    if len(r) == 1:
        r = r * len(a)
    if len(r) != len(a):
        raise ValueError("arms need the same number of seeds (or a single reference run)")
    diffs = [statistics.fmean(x) - statistics.fmean(y) for x, y in zip(a, r, strict=True)]
    probs = len(a[0])
    gain = [statistics.fmean(x[i] - y[i] for x, y in zip(a, r, strict=True)) for i in range(probs)]
    rng = random.Random(0)
    boot = sorted(statistics.fmean(rng.choices(gain, k=probs)) for _ in range(reps))
    d, hw = statistics.fmean(diffs), t_halfwidth(diffs)
    return {
        "diff": d,
        "seeds_lo": d - hw,
        "seeds_hi": d + hw,
        "problems_lo": boot[int(0.025 * reps)],
        "problems_hi": boot[int(0.975 * reps) - 1],
    }


def verdict(e: dict[str, float], direction: int) -> str:
    """direction +1: the claim says `diff > 0`; -1: `diff < 0`."""
    lo = min(e["seeds_lo"], e["problems_lo"]) * direction
    hi = max(e["seeds_hi"], e["problems_hi"]) * direction
    if direction < 0:
        lo, hi = hi, lo
    if math.isnan(lo) or math.isnan(hi):
        return "inconclusive (one seed)"
    if lo > 0:
        return "reproduced"
    if hi < 0:
        return "refuted"
    return "inconclusive"


def pearson_ci(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """Pearson r with its 95% Fisher-z interval (nan when undefined)."""
    if len(xs) < 4 or statistics.pstdev(xs) == 0 or statistics.pstdev(ys) == 0:
        return float("nan"), float("nan"), float("nan")
    r = max(min(statistics.correlation(xs, ys), 0.999999), -0.999999)
    z, se = math.atanh(r), 1.0 / math.sqrt(len(xs) - 3)
    return r, math.tanh(z - 1.96 * se), math.tanh(z + 1.96 * se)


def pearson_within(
    xs: Sequence[float], ys: Sequence[float], groups: Sequence[object]
) -> tuple[float, float, float]:
    """Pearson r within groups (each group's means removed: a seed's shared evaluation draws and warm start
    cannot make the correlation), with its Fisher-z interval on n - 3 - (groups - 1) degrees of freedom."""
    by: dict[object, list[int]] = {}
    for i, g in enumerate(groups):
        by.setdefault(g, []).append(i)
    cx, cy = list(xs), list(ys)
    for idx in by.values():
        mx, my = statistics.fmean(xs[i] for i in idx), statistics.fmean(ys[i] for i in idx)
        for i in idx:
            cx[i], cy[i] = xs[i] - mx, ys[i] - my
    dof = len(xs) - 3 - (len(by) - 1)
    if dof < 1 or statistics.pstdev(cx) == 0 or statistics.pstdev(cy) == 0:
        return float("nan"), float("nan"), float("nan")
    r = max(min(statistics.correlation(cx, cy), 0.999999), -0.999999)
    z, se = math.atanh(r), 1.0 / math.sqrt(dof)
    return r, math.tanh(z - 1.96 * se), math.tanh(z + 1.96 * se)


def fmt(e: dict[str, float]) -> str:
    return (
        f"{e['diff']:+.3f} (seeds [{e['seeds_lo']:+.3f}, {e['seeds_hi']:+.3f}], "
        f"problems [{e['problems_lo']:+.3f}, {e['problems_hi']:+.3f}])"
    )
