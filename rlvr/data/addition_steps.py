"""Procedural multi-digit addition whose warm start writes the sum backwards first: "475+38=" -> "315|\\boxed{513}".

The problems (and the math verifier's check of the final `\\boxed{}`) are `rlvr.data.addition`'s; only the
warm-start target differs. Written from the last digit, each digit of the sum needs only the digits above
it and one carry, the step a small transformer learns; the boxed answer is then a copy in reverse. Carries
are shared by every problem, so what RL fixes in one sum carries over to sums it never trained on.
"""

from __future__ import annotations

from rlvr.data import addition
from rlvr.data.arith import retagged
from rlvr.types import Prompt


def generate(n: int, seed: int = 0) -> list[Prompt]:
    return retagged(addition.generate(n, seed), "addition_steps")


def sft_target(prompt: Prompt) -> str:
    return f"{prompt.ground_truth[::-1]}|\\boxed{{{prompt.ground_truth}}}"
