"""Gold-answer extraction (`data.answer_format`): GSM8K `####`, last `\\boxed{}`, regex, raw."""

from __future__ import annotations

import pytest

from rlvr.data.answers import get_extractor
from rlvr.errors import RlvrUserError

pytestmark = pytest.mark.unit


def test_gsm8k_takes_what_follows_the_last_marker() -> None:
    gsm8k = get_extractor("gsm8k")
    assert gsm8k("She sells 16 - 3 - 4 = <<16-3-4=9>>9 eggs.\n9 * 2 = $18\n#### 18") == "18"
    assert gsm8k("a #### b\n#### 1,234") == "1234"  # thousands separators go; the last marker wins
    assert gsm8k("#### -3.5") == "-3.5"
    assert gsm8k("no marker, 72") is None
    assert gsm8k("####   ") is None


def test_boxed_takes_the_last_box_with_nested_braces() -> None:
    boxed = get_extractor("boxed")
    assert boxed(r"first \boxed{1}, so the answer is $\boxed{\frac{1}{2}}$.") == r"\frac{1}{2}"
    assert boxed(r"\boxed{\left\{ x : x^{2} > 1 \right\}}") == r"\left\{ x : x^{2} > 1 \right\}"
    assert boxed(r"unbalanced \boxed{\frac{1}{2}") is None
    assert boxed("no box here") is None
    assert boxed(r"\boxed{ }") is None


def test_regex_group_one_else_whole_match_of_the_last_match() -> None:
    assert get_extractor(r"regex:answer is (\d+)")("answer is 3. no, the answer is 41") == "41"
    assert get_extractor(r"regex:\d+")("x 12 y 7") == "7"
    assert get_extractor(r"regex:answer is (\d+)")("nothing") is None


def test_raw_trims_and_rejects_empty() -> None:
    raw = get_extractor("raw")
    assert raw("  42 \n") == "42"
    assert raw("   ") is None


@pytest.mark.parametrize("fmt", ["latex", "regex:", "regex:(unclosed"])
def test_bad_formats_name_the_key(fmt: str) -> None:
    with pytest.raises(RlvrUserError, match=r"^data\.answer_format: "):
        get_extractor(fmt)
