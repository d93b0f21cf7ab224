"""Procedural tasks as data sources: `procedural:<task>` -> `rlvr.data.<task>.generate(n, seed)`.

`procedural:reasoning_gym/<name>` goes to `rlvr.data.reasoning_gym` (one of reasoning-gym's datasets; needs
the `reasoning-gym` extra).
"""

from __future__ import annotations

import importlib

from rlvr.errors import RlvrUserError
from rlvr.types import Prompt

TASKS = (
    "arith",
    "arith_steps",
    "addition",
    "addition_steps",
    "countdown",
    "countdown_short",
    "knights_knaves",
)
REASONING_GYM = "reasoning_gym/"


def generate(task: str, n: int, seed: int) -> list[Prompt]:
    if task.startswith(REASONING_GYM):
        from rlvr.data import reasoning_gym

        return reasoning_gym.generate(task[len(REASONING_GYM) :], n, seed)
    if task not in TASKS:
        raise RlvrUserError(
            f"data.source: unknown procedural task '{task}'; available: {', '.join(TASKS)}, "
            f"{REASONING_GYM}<task>"
        )
    module = importlib.import_module(f"rlvr.data.{task}")
    return list(module.generate(n, seed))
