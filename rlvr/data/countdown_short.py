"""Short countdown puzzles for small models: "3 7 5>26:" -> "<answer>((3*7)+5)</answer>".

The same game as `rlvr.data.countdown` (each number at most once, + - * /, checked by the countdown
verifier), with three numbers from 1..12, a two-digit target and a terse prompt, so that a few-million
parameter model can learn it on a CPU. Every instance has at least `min_paths` different solution paths (a
path: which numbers and which operators; reorderings of one sum are one path), and the warm start imitates
a path drawn at random per example, so the base model spreads its mass over several right answers: that
breadth is what pass@K at large K measures.
"""

from __future__ import annotations

import functools
import random
import re
from collections import Counter
from fractions import Fraction

from rlvr.data.countdown import _expressions
from rlvr.types import Prompt

FORMAT = "{numbers}>{target}:"


def path(expr: str) -> str:
    """The numbers and operators an expression uses, order ignored: "((3*7)+5)" -> "3,5,7|*+"."""
    return ",".join(sorted(re.findall(r"\d+", expr))) + "|" + "".join(sorted(re.findall(r"[-+*/]", expr)))


@functools.lru_cache(maxsize=4096)
def _reach(nums: tuple[int, ...]) -> dict[Fraction, set[str]]:
    return _expressions(list(nums))  # a warm start draws ~10^5 instances from a few hundred number sets


def generate(n: int, seed: int, count: int = 3, min_paths: int = 2, max_number: int = 12) -> list[Prompt]:
    rng = random.Random(seed)
    out: list[Prompt] = []
    while len(out) < n:
        nums = [rng.randint(1, max_number) for _ in range(count)]
        reach = _reach(tuple(sorted(nums)))
        singles = Counter(nums)
        targets = sorted(
            int(v)
            for v, exprs in reach.items()
            if v.denominator == 1
            and 10 <= v <= 99
            and int(v) not in singles
            and len({path(e) for e in exprs}) >= min_paths
        )
        if not targets:
            continue
        target = rng.choice(targets)
        solutions = sorted(e.replace(" ", "") for e in reach[Fraction(target)])
        meta = {
            "numbers": nums,
            "target": target,
            "num_paths": len({path(e) for e in solutions}),
            "solutions": solutions,
        }
        text = FORMAT.format(numbers=" ".join(map(str, nums)), target=target)
        out.append(
            Prompt(
                text=text,
                ground_truth=str(target),
                data_source="countdown",
                metadata=meta,
                prompt_id=f"countdown_short-{seed}-{len(out)}",
            )
        )
    return out


def sft_target(prompt: Prompt) -> str:
    """A random path, then a random way of writing it, picked by the prompt id: reproducible, and different
    across the warm start's many instances of the same puzzle."""
    rng = random.Random(prompt.prompt_id)
    by_path: dict[str, list[str]] = {}
    for e in prompt.metadata["solutions"]:
        by_path.setdefault(path(e), []).append(e)
    return f"<answer>{rng.choice(by_path[rng.choice(sorted(by_path))])}</answer>"


NEAR = 3  # a slip's value is off the target by 1..NEAR


def sft_slip(prompt: Prompt, rng: random.Random) -> str | None:
    """A near miss for a warm start with `model.tiny.sft_noise`: an expression over the puzzle's numbers whose
    value is off the target by 1 to NEAR (None when no such expression exists)."""
    target = prompt.metadata["target"]
    near = sorted(
        e.replace(" ", "")
        for v, exprs in _reach(tuple(sorted(prompt.metadata["numbers"]))).items()
        if v.denominator == 1 and 0 < abs(v - target) <= NEAR
        for e in exprs
    )
    return f"<answer>{rng.choice(near)}</answer>" if near else None
