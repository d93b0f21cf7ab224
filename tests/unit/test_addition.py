"""Procedural multi-digit addition: deterministic, checked by the math verifier, a space too large to recall."""

from __future__ import annotations

import pytest

from rlvr.data import addition
from rlvr.data.procedural import generate
from rlvr.verifiers import get

pytestmark = pytest.mark.unit


def test_problems_are_sums_the_math_verifier_checks() -> None:
    v = get("math")
    prompts = generate("addition", 50, seed=2)
    assert [p.text for p in prompts] == [p.text for p in addition.generate(50, seed=2)]
    assert len({p.prompt_id for p in prompts}) == 50
    for p in prompts:
        a, b = (int(x) for x in p.text.rstrip("=").split("+"))
        assert p.ground_truth == str(a + b) and p.data_source == "math"
        assert max(a, b) < 10**4
        assert v.verify(addition.sft_target(p), p.ground_truth).correct
        assert not v.verify(f"\\boxed{{{a + b + 1}}}", p.ground_truth).correct


def test_every_operand_length_appears_and_problems_rarely_repeat() -> None:
    prompts = addition.generate(2000, seed=0)
    lengths = {len(x) for p in prompts for x in p.text.rstrip("=").split("+")}
    assert lengths == {1, 2, 3, 4}
    # ~10^8 problems: a 2000-problem pool repeats almost none (only 1-digit pairs collide).
    assert len({p.text for p in prompts}) > 1900
    with pytest.raises(ValueError, match="max_digits"):
        addition.generate(1, max_digits=0)


def test_the_tiny_model_accepts_the_task() -> None:
    from rlvr.models.tiny import sft_target, task_prompts

    p = task_prompts("addition", 1, seed=0)[0]
    assert sft_target("addition", p) == f"\\boxed{{{p.ground_truth}}}"


def test_addition_steps_writes_the_sum_backwards_then_boxes_it() -> None:
    from rlvr.data import addition_steps
    from rlvr.models.tiny import sft_target

    v = get("math")
    prompts = generate("addition_steps", 20, seed=5)
    assert [p.text for p in prompts] == [p.text for p in addition.generate(20, seed=5)]
    assert all(p.prompt_id.startswith("addition_steps-") for p in prompts)
    p = addition_steps.generate(1, seed=5)[0]
    target = sft_target("addition_steps", p)
    assert target == f"{p.ground_truth[::-1]}|\\boxed{{{p.ground_truth}}}"
    assert v.verify(target, p.ground_truth).correct  # the working never confuses the verifier
