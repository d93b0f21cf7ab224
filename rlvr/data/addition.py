"""Procedural multi-digit addition ("4821+377=") with numeric ground truth.

In: a count, a seed and the largest operand length. Out: `Prompt`s like `rlvr.data.arith`'s (bare question,
integer answer, checked by the math verifier from `\\boxed{}`). With operands of 1-4 digits there are about
10^8 problems, far more than a warm start sees, so a small model has to compute sums (carries) rather than
recall them: RL on some problems can then carry over to problems it never trained on, which `arith`'s ~9k
problems, all seen during the warm start, do not allow.
"""

from __future__ import annotations

import random

from rlvr.data.arith import numeric_prompt, sft_target  # noqa: F401 - the same warm-start answer: the boxed sum
from rlvr.types import Prompt


def _operand(rng: random.Random, max_digits: int) -> int:
    digits = rng.randint(1, max_digits)  # uniform in length, so short sums are not drowned out
    return rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10**digits - 1)


def generate(n: int, seed: int = 0, max_digits: int = 4) -> list[Prompt]:
    """`n` problems; the same seed always gives the same problems (and prompt ids)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if max_digits < 1:
        raise ValueError(f"max_digits must be >= 1, got {max_digits}")
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = _operand(rng, max_digits), _operand(rng, max_digits)
        out.append(numeric_prompt(f"{a}+{b}=", a + b, "addition", seed, i))
    return out
