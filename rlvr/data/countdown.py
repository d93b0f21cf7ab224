"""Countdown puzzles: reach a target with the given numbers (each at most once) and + - * /.

In: (n, seed). Out: `Prompt`s with data_source="countdown", ground_truth = the target, metadata["numbers"].
Instances are chosen so that several distinct expressions reach the target (exploration matters); the count
is enumerated exactly with Fractions, and kept in metadata["num_solutions"].
"""

from __future__ import annotations

import random
from collections import Counter
from fractions import Fraction

from rlvr.types import Prompt

INSTRUCTION = (
    "Using the numbers {numbers} (each at most once) and + - * / with parentheses, make {target}. "
    "Put the expression in <answer></answer>, e.g. <answer>(1 + 2) * 3</answer>."
)


def _expressions(nums: list[int]) -> dict[Fraction, set[str]]:
    """Every value reachable from a non-empty subset of `nums`, with its distinct expression strings."""
    memo: dict[tuple[int, ...], dict[Fraction, set[str]]] = {}

    def rec(items: tuple[int, ...]) -> dict[Fraction, set[str]]:
        if items in memo:
            return memo[items]
        out: dict[Fraction, set[str]] = {}
        if len(items) == 1:
            out[Fraction(items[0])] = {str(items[0])}
        else:
            idx = range(len(items))
            for mask in range(1, (1 << len(items)) - 1):
                left = tuple(items[i] for i in idx if mask >> i & 1)
                right = tuple(items[i] for i in idx if not mask >> i & 1)
                for lv, ls in rec(left).items():
                    for rv, rs in rec(right).items():
                        for op, val in (
                            ("+", lv + rv),
                            ("-", lv - rv),
                            ("*", lv * rv),
                            ("/", lv / rv if rv else None),
                        ):
                            if val is None:
                                continue
                            bucket = out.setdefault(val, set())
                            if len(bucket) < 50:  # enough to count "several"; bounds memory
                                bucket.update(f"({a} {op} {b})" for a in list(ls)[:3] for b in list(rs)[:3])
        memo[items] = out
        return out

    total: dict[Fraction, set[str]] = {}
    for mask in range(1, 1 << len(nums)):
        subset = tuple(sorted(nums[i] for i in range(len(nums)) if mask >> i & 1))
        for val, exprs in rec(subset).items():
            total.setdefault(val, set()).update(exprs)
    return total


def generate(n: int, seed: int, count: int = 4, min_solutions: int = 3, max_number: int = 25) -> list[Prompt]:
    rng = random.Random(seed)
    out: list[Prompt] = []
    while len(out) < n:
        nums = [rng.randint(1, max_number) for _ in range(count)]
        reach = _expressions(nums)
        singles = Counter(nums)
        targets = [
            int(v)
            for v, exprs in reach.items()
            if v.denominator == 1 and 10 <= v <= 200 and len(exprs) >= min_solutions and int(v) not in singles
        ]
        if not targets:
            continue
        target = rng.choice(sorted(targets))
        text = INSTRUCTION.format(numbers=", ".join(map(str, nums)), target=target)
        meta = {"numbers": nums, "target": target, "num_solutions": len(reach[Fraction(target)])}
        out.append(
            Prompt(
                text=text,
                ground_truth=str(target),
                data_source="countdown",
                metadata=meta,
                prompt_id=f"countdown-{seed}-{len(out)}",  # stable: sampling seeds derive from prompt ids
            )
        )
    return out
