"""Knights and Knaves puzzles: our own generator and a loader for the Logic-RL parquet layout.

In: (n, seed) or a parquet path. Out: `Prompt`s with data_source="logic" and ground_truth in the canonical
form "Name=knight,Name=knave,..." that `rlvr.verifiers.logic` scores. Every generated puzzle has exactly one
solution, checked by brute force over all 2^k role assignments (k <= 8 people). Never touches ../shared.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

from rlvr.types import Prompt

NAMES = ["Zoey", "Oliver", "Amelia", "Jack", "Mia", "Lucas", "Ella", "Noah", "Ava", "Liam", "Ivy", "Owen"]
INSTRUCTION = (
    "Knights always tell the truth and knaves always lie. Who is a knight and who is a knave? "
    "Give one line per person inside <answer></answer>, e.g. <answer>(1) Zoey is a knight\n(2) Oliver is a knave</answer>."
)

# A statement is a nested tuple: ("is", i, True) means "i is a knight"; ("and"|"or"|"iff"|"if", a, b); ("not", a).
Stmt = tuple[Any, ...]


def evaluate(stmt: Stmt, roles: tuple[bool, ...]) -> bool:
    op = stmt[0]
    if op == "is":
        return roles[stmt[1]] == stmt[2]
    if op == "not":
        return not evaluate(stmt[1], roles)
    a, b = evaluate(stmt[1], roles), evaluate(stmt[2], roles)
    return {"and": a and b, "or": a or b, "iff": a == b, "if": (not a) or b}[op]


def render(stmt: Stmt, names: list[str]) -> str:
    op = stmt[0]
    if op == "is":
        return f"{names[stmt[1]]} is a {'knight' if stmt[2] else 'knave'}"
    if op == "not":
        return f"it is not the case that {render(stmt[1], names)}"
    a, b = render(stmt[1], names), render(stmt[2], names)
    return {
        "and": f"{a} and {b}",
        "or": f"{a} or {b}",
        "iff": f"{a} if and only if {b}",
        "if": f"if {a} then {b}",
    }[op]


def _random_statement(rng: random.Random, k: int, speaker: int) -> Stmt:
    def atom() -> Stmt:
        return ("is", rng.randrange(k), rng.random() < 0.5)

    kind = rng.choice(["atom", "atom", "not", "and", "or", "iff", "if"])
    if kind == "atom":
        return atom()
    if kind == "not":
        return ("not", atom())
    return (kind, atom(), atom())


def solutions(statements: list[Stmt], k: int) -> list[tuple[bool, ...]]:
    """All role assignments (True = knight) consistent with: speaker is a knight iff the statement holds."""
    return [
        roles
        for roles in itertools.product((True, False), repeat=k)
        if all(evaluate(s, roles) == roles[i] for i, s in enumerate(statements))
    ]


def canonical(names: list[str], roles: tuple[bool, ...] | list[bool]) -> str:
    return ",".join(f"{n}={'knight' if r else 'knave'}" for n, r in zip(names, roles, strict=False))


def _one(rng: random.Random, k: int) -> tuple[list[str], list[Stmt], tuple[bool, ...]]:
    names = rng.sample(NAMES, k)
    for _ in range(10_000):
        statements = [_random_statement(rng, k, i) for i in range(k)]
        sols = solutions(statements, k)
        if len(sols) == 1:
            return names, statements, sols[0]
    raise RuntimeError(f"no unique {k}-person puzzle found")  # pragma: no cover - vanishingly unlikely


def generate(n: int, seed: int, min_people: int = 2, max_people: int = 8) -> list[Prompt]:
    if not 2 <= min_people <= max_people <= 8:
        raise ValueError("people per puzzle must satisfy 2 <= min_people <= max_people <= 8")
    rng = random.Random(seed)
    out = []
    for idx in range(n):
        k = rng.randint(min_people, max_people)
        names, statements, sol = _one(rng, k)
        said = " ".join(f'{names[i]} says: "{render(s, names)}."' for i, s in enumerate(statements))
        text = f"An island has {k} inhabitants: {', '.join(names)}. {said}\n{INSTRUCTION}"
        meta = {"names": names, "num_people": k, "seed": seed, "index": idx}
        gt = canonical(names, sol)
        out.append(
            Prompt(
                text=text, ground_truth=gt, data_source="logic", metadata=meta, prompt_id=f"kk-{seed}-{idx}"
            )
        )
    return out


def load_parquet(path: str | Path) -> list[Prompt]:
    """Rows of the Logic-RL layout (quiz, names, solution, ...) as Prompts with canonical ground truth."""
    import pandas as pd

    frame = pd.read_parquet(path)
    missing = {"quiz", "names", "solution"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    out = []
    for i, row in enumerate(frame.itertuples(index=False)):
        names = [str(n) for n in row.names]
        roles = [bool(r) for r in row.solution]
        meta = {"names": names, "num_people": len(names), "source_index": int(getattr(row, "index", -1))}
        text = f"{row.quiz}\n{INSTRUCTION}"
        out.append(
            Prompt(
                text=text,
                ground_truth=canonical(names, roles),
                data_source="logic",
                metadata=meta,
                prompt_id=f"kk-{Path(path).stem}-{i}",  # stable across loads: sampling seeds derive from it
            )
        )
    return out
