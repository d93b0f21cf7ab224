"""Procedural tasks as data sources: `procedural:<task>` -> `rlvr.data.<task>.generate(n, seed)`."""

from __future__ import annotations

import importlib

from rlvr.errors import RlvrUserError
from rlvr.types import Prompt

TASKS = ("arith", "countdown", "knights_knaves")


def generate(task: str, n: int, seed: int) -> list[Prompt]:
    if task not in TASKS:
        raise RlvrUserError(f"data.source: unknown procedural task '{task}'; available: {', '.join(TASKS)}")
    module = importlib.import_module(f"rlvr.data.{task}")
    return list(module.generate(n, seed))
