"""Dataset columns never change grading: verifier options come only from the spec (item: row metadata)."""

from __future__ import annotations

from typing import Any

import pytest

import rlvr.verifiers  # noqa: F401 - registers math, countdown, logic
from rlvr.data import countdown
from rlvr.types import VerifierResult
from rlvr.verifier_kwargs import option_names, verify_kwargs
from rlvr.verifier_pool import VerifierActor, _pickle_verifiers

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def actor():
    # The actor's class without Ray: `_one` is plain Python, and the math verifier guards itself.
    cls = VerifierActor.__ray_metadata__.modified_class
    specs: dict[str, dict[str, Any]] = {"math": {"timeout_s": 5.0}, "countdown": {}, "logic": {}}
    a = cls(_pickle_verifiers(["math", "countdown", "logic"]), specs)
    yield a
    a.verifiers["math"].close()


def _grade(actor, name: str, response: str, gold: str, metadata: dict[str, Any]) -> VerifierResult:
    return actor._one(name, response, gold, metadata)


def _label(r: VerifierResult) -> tuple:
    return (r.reward, r.correct, r.extracted, r.status)  # `reason` says which path (cache) answered


def test_strict_and_precision_columns_do_not_change_math_grading(actor) -> None:
    # precision=1 would accept 3.1 for 3.14; the row's columns must not get that far.
    cases = [(r"so \boxed{3.1}", "3.14"), (r"\boxed{\frac12}", "0.5"), (r"\boxed{x=2}", "2")]
    row = {"strict": False, "precision": 1, "extraction": "last_number", "timeout_s": 0.001, "level": 3}
    for response, gold in cases:
        plain = _grade(actor, "math", response, gold, {})
        with_columns = _grade(actor, "math", response, gold, row)
        assert _label(with_columns) == _label(plain)
    assert not _grade(actor, "math", r"so \boxed{3.1}", "3.14", row).correct
    direct = actor.verifiers["math"].verify(r"so \boxed{3.1}", "3.14", precision=1)
    assert direct.correct  # the column would have flipped the label before


def test_spec_options_still_reach_the_verifier(actor) -> None:
    actor.specs["math"] = {"timeout_s": 5.0, "precision": 1}
    try:
        assert _grade(actor, "math", r"so \boxed{3.1}", "3.14", {"precision": 6}).correct
    finally:
        actor.specs["math"] = {"timeout_s": 5.0}


def test_countdown_and_logic_still_read_their_row_fields(actor) -> None:
    p = countdown.generate(1, seed=3)[0]
    assert "numbers" in p.metadata
    missing = _grade(actor, "countdown", "<answer>1</answer>", p.ground_truth, {})
    assert missing.reason == "metadata 'numbers' is missing"
    first = p.metadata["numbers"][0]
    graded = _grade(actor, "countdown", f"<answer>{first}</answer>", p.ground_truth, p.metadata)
    assert graded.status.value == "ok" and graded.reason == f"value {first}"  # the row's numbers arrived
    gold = "Zoey=knight,Oliver=knave"
    half = "<answer>(1) Zoey is a knight (2) Oliver is a knight</answer>"
    # partial_credit as a column is not the option: half right still scores 0
    assert _grade(actor, "logic", half, gold, {"partial_credit": True}).reward == 0.0


def test_option_names_from_signatures_and_declarations() -> None:
    def fn(response: str, ground_truth: str, *, numbers, threshold: float = 0.5, **metadata: Any) -> None:
        return None

    class Declared:
        options = ("mode",)

        def verify(self, response: str, ground_truth: str, *, mode: str = "a", hint: str = "") -> None:
            return None

    from rlvr.verifiers.base import FunctionVerifier

    assert option_names(FunctionVerifier(fn, "f")) == {"threshold", "timeout_s"}  # `numbers` has no default
    assert option_names(Declared()) == {"mode", "timeout_s"}
    assert option_names(rlvr.verifiers.get("countdown")) == {"timeout_s"}  # `numbers` is a declared row field
    kwargs = verify_kwargs({"threshold": 0.9}, {"threshold": 0.1, "numbers": [1, 2], "x": 1}, {"threshold"})
    assert kwargs == {"threshold": 0.9, "numbers": [1, 2], "x": 1}
