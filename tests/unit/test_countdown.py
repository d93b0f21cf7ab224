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


def test_prompt_ids_are_stable_across_generations() -> None:
    # Sampling seeds derive from prompt ids, so a regenerated pool must keep them.
    from rlvr.data import countdown_short, knights_knaves

    for gen in (countdown.generate, countdown_short.generate, knights_knaves.generate):
        a, b = gen(3, seed=4), gen(3, seed=4)
        assert [p.prompt_id for p in a] == [p.prompt_id for p in b]
        assert len({p.prompt_id for p in a}) == 3


def test_countdown_short_has_several_paths_and_its_warm_start_targets_verify() -> None:
    from rlvr.data import countdown_short
    from rlvr.models.tiny import sft_target

    v = get("countdown")
    prompts = countdown_short.generate(200, seed=3)
    for p in prompts:
        assert len(p.text) <= 12 and p.metadata["num_paths"] >= 2
        paths = {countdown_short.path(e) for e in p.metadata["solutions"]}
        assert len(paths) == p.metadata["num_paths"]
        target = sft_target("countdown_short", p)
        assert target is not None and v.verify(target, p.ground_truth, **p.metadata).correct
    # The warm start imitates different paths across instances, not always the first one.
    first = [
        countdown_short.path((sft_target("countdown_short", p) or "")[len("<answer>") : -len("</answer>")])
        == min(countdown_short.path(e) for e in p.metadata["solutions"])
        for p in prompts
    ]
    assert 0.2 < sum(first) / len(first) < 0.8
    assert countdown_short.path("((3*7)+5)") == countdown_short.path("(5+(7*3))") == "3,5,7|*+"


def test_arith_steps_targets_reduce_to_the_answer() -> None:
    from rlvr.data import arith_steps

    assert arith_steps.sft_target(arith_steps.generate(1, 0)[0]).endswith("}")
    for p in arith_steps.generate(300, seed=2):
        target = arith_steps.sft_target(p)
        *steps, final = target.split("=")
        assert final == f"\\boxed{{{p.ground_truth}}}"
        assert all(int(evaluate(s)[0]) == int(p.ground_truth) for s in steps)
        assert len(steps) == sum(p.text.count(op) for op in "+-*") - 1  # one line per reduction
        assert get("math").verify(target, p.ground_truth).correct
