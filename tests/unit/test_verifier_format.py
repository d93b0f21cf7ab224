"""The `format` verifier: 1 for an answer in a non-empty, closed `\\boxed{}`, else 0."""

from __future__ import annotations

import pytest

from rlvr.types import VerifyStatus
from rlvr.verifiers import get
from rlvr.verifiers.format import MAX_SCAN_CHARS, last_boxed

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("response", "reward", "extracted"),
    [
        ("so \\boxed{42}", 1.0, "42"),
        ("\\boxed{\\frac{1}{2}} done", 1.0, "\\frac{1}{2}"),
        ("first \\boxed{} then \\boxed{ 7 }", 1.0, "7"),  # the last box counts
        ("\\boxed{7} then \\boxed{}", 0.0, None),
        ("\\boxed{   }", 0.0, None),
        ("\\boxed{unclosed {x}", 0.0, None),
        ("42", 0.0, None),
        ("", 0.0, None),
        ("\\boxed 42", 0.0, None),
    ],
)
def test_format_reward(response: str, reward: float, extracted: str | None) -> None:
    r = get("format").verify(response, "ignored gold", any_row_field=1)
    assert (r.reward, r.correct, r.extracted) == (reward, bool(reward), extracted)
    assert r.status is (VerifyStatus.OK if reward else VerifyStatus.NO_ANSWER)


def test_the_gold_is_not_consulted() -> None:
    assert get("format").verify("\\boxed{wrong}", "right").reward == 1.0


def test_scan_is_bounded_to_the_tail() -> None:
    assert last_boxed("\\boxed{1}" + "x" * MAX_SCAN_CHARS) is None
    assert last_boxed("x" * (3 * MAX_SCAN_CHARS) + "\\boxed{{2}}") == "{2}"
