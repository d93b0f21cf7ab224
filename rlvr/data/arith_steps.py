"""Procedural arithmetic whose warm start writes its working: "3+4*2=" -> "3+8=\\boxed{11}".

The problems (and the math verifier's check of the final `\\boxed{}`) are `rlvr.data.arith`'s; only the
warm-start target differs. Reducing one operator at a time turns a two-operator problem into steps that
are shared across problems (3+8 appears in many), so what RL changes on one problem can carry over to
problems it never trained on, which a model that memorises 9k final answers cannot do.
"""

from __future__ import annotations

import re

from rlvr.data import arith
from rlvr.types import Prompt

_TOKEN = re.compile(r"^-\d+|\d+|[-+*]")  # an intermediate may start negative: "-5+2"


def generate(n: int, seed: int = 0) -> list[Prompt]:
    return arith.retagged(arith.generate(n, seed), "arith_steps")


def reduce_once(expr: str) -> str:
    """One step with Python's precedence: the first `*`, else the leftmost operator."""
    toks = _TOKEN.findall(expr)
    ops = [i for i in range(1, len(toks), 2)]
    i = next((j for j in ops if toks[j] == "*"), ops[0])
    a, op, b = int(toks[i - 1]), toks[i], int(toks[i + 1])
    value = a * b if op == "*" else a + b if op == "+" else a - b
    return "".join([*toks[: i - 1], str(value), *toks[i + 2 :]])


def sft_target(prompt: Prompt) -> str:
    steps, expr = [], prompt.text.rstrip("=")
    while len(_TOKEN.findall(expr)) > 3:
        expr = reduce_once(expr)
        steps.append(expr + "=")
    return "".join(steps) + f"\\boxed{{{prompt.ground_truth}}}"
