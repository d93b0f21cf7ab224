"""Countdown: safe arithmetic, the verifier, and the generator."""

from __future__ import annotations

import pytest

from rlvr.data import countdown
from rlvr.types import VerifyStatus
from rlvr.verifiers import get
from rlvr.verifiers.safe_arith import UnsafeExpression, evaluate

pytestmark = pytest.mark.unit


def test_safe_arith_exact_and_limited() -> None:
    from fractions import Fraction

    assert evaluate("(1 + 2) * 3 / 4")[0] == Fraction(9, 4)
    for bad in ["__import__('os')", "2**10", "1.5 + 1", "a + 1", "(" * 200 + "1" + ")" * 200, "9" * 400]:
        with pytest.raises(UnsafeExpression):
            evaluate(bad)


def test_countdown_verifier() -> None:
    v = get("countdown")
    nums = [3, 5, 2, 7]
    assert v.verify("<answer>(3 + 5) * 2</answer>", "16", numbers=nums).correct
    assert v.verify(r"so \boxed{(3+5) \times 2 = 16}", "16", numbers=nums).correct
    assert not v.verify("<answer>(3 + 5) * 2</answer>", "17", numbers=nums).correct
    assert not v.verify("<answer>8 * 2</answer>", "16", numbers=nums).correct  # 8 not given
    assert not v.verify("<answer>(3 + 3) * 2</answer>", "12", numbers=nums).correct  # 3 used twice
    assert not v.verify("<answer>7 / (5 - 5)</answer>", "1", numbers=nums).correct
    assert v.verify("no answer", "16", numbers=nums).status == VerifyStatus.NO_ANSWER
    assert v.verify("<answer>1</answer>", "16").status == VerifyStatus.ERROR
    assert not v.verify("<answer>__import__('os').system('true')</answer>", "0", numbers=nums).correct


def test_generator_has_several_solutions() -> None:
    prompts = countdown.generate(5, seed=1)
    v = get("countdown")
    for p in prompts:
        assert p.data_source == "countdown" and p.metadata["num_solutions"] >= 3
        assert int(p.ground_truth) == p.metadata["target"]
    assert [p.ground_truth for p in prompts] == [p.ground_truth for p in countdown.generate(5, seed=1)]
    # a solution found by brute force is accepted by the verifier
    from fractions import Fraction

    from rlvr.data.countdown import _expressions

    p = prompts[0]
    expr = sorted(_expressions(p.metadata["numbers"])[Fraction(int(p.ground_truth))])[0]
    assert v.verify(f"<answer>{expr}</answer>", p.ground_truth, **p.metadata).correct
