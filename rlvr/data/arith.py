"""Procedural arithmetic problems ("3+4*2=") with numeric ground truth.

In: a count, a seed and difficulty knobs. Out: `Prompt`s whose text is the bare question and whose
ground truth is the integer answer as a string (data_source "math": checked by the math verifier,
which reads the answer from `\\boxed{}`). Deterministic for a given seed; never touches disk or network.
"""

from __future__ import annotations

import random

from rlvr.types import Prompt
from rlvr.verifiers.safe_arith import evaluate

OPS = ("+", "-", "*")


def make_problem(
    rng: random.Random, max_operand: int = 9, min_ops: int = 1, max_ops: int = 2
) -> tuple[str, int]:
    """One expression over small non-negative integers, with Python's precedence rules."""
    n_ops = rng.randint(min_ops, max_ops)
    parts = [str(rng.randint(0, max_operand))]
    for _ in range(n_ops):
        parts.append(rng.choice(OPS))
        parts.append(str(rng.randint(0, max_operand)))
    expr = "".join(parts)
    value, _ = evaluate(expr)  # the same safe AST walker the countdown verifier uses; never eval()
    return expr + "=", int(value)


def numeric_prompt(text: str, answer: int, task: str, seed: int, i: int) -> Prompt:
    """Problem `i` of a procedural task with an integer answer (checked by the math verifier)."""
    return Prompt(
        text=text,
        ground_truth=str(answer),
        data_source="math",
        metadata={"task": task},
        prompt_id=f"{task}-{seed}-{i}",
    )


def retagged(prompts: list[Prompt], task: str) -> list[Prompt]:
    """The same problems under another task (a warm start with another target): its name in the metadata
    and the prompt ids (`arith-0-3` -> `arith_steps-0-3`), which the sampling seeds derive from."""
    for p in prompts:
        old = p.metadata["task"]
        p.metadata["task"] = task
        p.prompt_id = p.prompt_id.replace(f"{old}-", f"{task}-", 1)
    return prompts


def generate(n: int, seed: int = 0, max_operand: int = 9, min_ops: int = 1, max_ops: int = 2) -> list[Prompt]:
    """`n` problems; the same seed always gives the same problems (and prompt ids)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    return [
        numeric_prompt(*make_problem(rng, max_operand, min_ops, max_ops), "arith", seed, i) for i in range(n)
    ]


def sft_target(prompt: Prompt) -> str:
    """The supervised answer for the warm start: the ground truth in `\\boxed{}`."""
    return f"\\boxed{{{prompt.ground_truth}}}"
