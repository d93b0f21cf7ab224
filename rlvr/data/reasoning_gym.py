"""reasoning-gym's procedural datasets as prompts: `procedural:reasoning_gym/<task>`.

In: a reasoning-gym task name (`leg_counting`, `basic_arithmetic`, ...), a count and a seed. Out: `Prompt`s
with the task's question as text, its answer as ground truth, data_source "reasoning_gym", and the metadata
the `reasoning_gym` verifier needs to call the task's own `score_answer`: `rg_dataset` (the task) and
`rg_entry` (the whole entry). Deterministic for a seed (reasoning-gym seeds each item). The question is
used as reasoning-gym writes it: ask for `<answer>` tags or `\\boxed{}` through `data.prompt_template`.
Needs the optional `reasoning-gym` extra; without it, a one-line error names the extra.
"""

from __future__ import annotations

from typing import Any

from rlvr.errors import RlvrUserError, closest
from rlvr.types import Prompt

EXTRA = "pip install 'rlvr[reasoning-gym]'"
PREFIX = "reasoning_gym/"


def _require() -> Any:
    try:
        import reasoning_gym
    except ImportError:
        raise RlvrUserError(
            f"data.source: procedural:{PREFIX}<task> needs the reasoning-gym extra: {EXTRA}"
        ) from None
    return reasoning_gym


def available() -> list[str]:
    """The task names reasoning-gym registers."""
    _require()
    from reasoning_gym.factory import DATASETS

    return sorted(DATASETS)


def generate(task: str, n: int, seed: int = 0) -> list[Prompt]:
    """`n` entries of reasoning-gym's `task` dataset with its default difficulty."""
    rg = _require()
    names = available()
    if task not in names:
        raise RlvrUserError(
            f"data.source: unknown reasoning_gym task '{task}'{closest(task, names)}; available: {', '.join(names)}"
        )
    dataset = rg.create_dataset(task, size=n, seed=seed)
    out = []
    for i, entry in enumerate(dataset):
        answer = entry.get("answer")
        out.append(
            Prompt(
                text=str(entry["question"]),
                ground_truth="" if answer is None else str(answer),
                data_source="reasoning_gym",
                metadata={"task": f"{PREFIX}{task}", "rg_dataset": task, "rg_entry": dict(entry)},
                prompt_id=f"rg-{task}-{seed}-{i}",
            )
        )
    return out
