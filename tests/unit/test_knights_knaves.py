"""Knights and Knaves: generator uniqueness, parquet loader, and the logic verifier."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlvr.data import knights_knaves as kk
from rlvr.types import VerifyStatus
from rlvr.verifiers import get

pytestmark = pytest.mark.unit


def _answer(gold: str) -> str:
    lines = [f"({i}) {p.split('=')[0]} is a {p.split('=')[1]}" for i, p in enumerate(gold.split(","), 1)]
    return "<think>...</think><answer>" + "\n".join(lines) + "</answer>"


def test_generated_puzzles_have_one_solution_and_are_deterministic() -> None:
    prompts = kk.generate(30, seed=3)
    assert [p.ground_truth for p in prompts] == [p.ground_truth for p in kk.generate(30, seed=3)]
    sizes = set()
    for p in prompts:
        assert p.data_source == "logic"
        k = p.metadata["num_people"]
        sizes.add(k)
        assert 2 <= k <= 8 and len(p.ground_truth.split(",")) == k
        # Rebuild the statements with the same rng path is not possible from text; instead re-check uniqueness
        # on a fresh puzzle of the same size through the public solver.
    assert len(sizes) > 3
    statements = [("is", 1, False), ("iff", ("is", 0, True), ("is", 1, True))]
    assert kk.solutions(statements, 2) == [(True, False)]


def test_generated_gold_is_the_unique_solution() -> None:
    import random

    rng = random.Random(0)
    for k in (2, 5, 8):
        names, statements, sol = kk._one(rng, k)
        assert kk.solutions(statements, k) == [sol]


def test_load_shared_parquet(shared_dir: Path) -> None:
    prompts = kk.load_parquet(shared_dir / "datasets/logic/knights_knaves/3ppl/test.parquet")
    assert len(prompts) == 100
    assert prompts[0].ground_truth == "Amelia=knight,Penelope=knight,Evelyn=knave"
    assert get("logic").verify(_answer(prompts[0].ground_truth), prompts[0].ground_truth).correct


def test_logic_verifier_scoring() -> None:
    logic = get("logic")
    gold = "Zoey=knight,Oliver=knave,Mia=knave"
    assert logic.verify(_answer(gold), gold).reward == 1.0
    wrong = "<answer>(1) Zoey is a knight\n(2) Oliver is a knight\n(3) Mia is a knave</answer>"
    assert logic.verify(wrong, gold).reward == 0.0
    assert logic.verify(wrong, gold, partial_credit=True).reward == pytest.approx(2 / 3)
    assert not logic.verify(wrong, gold, partial_credit=True).correct
    assert logic.verify("Zoey is a knight", gold).status == VerifyStatus.NO_ANSWER
    assert logic.verify(_answer(gold), "garbage").status == VerifyStatus.ERROR
    assert logic.verify(_answer(gold), gold, names=["x"], extra_key=1).correct  # metadata ignored
