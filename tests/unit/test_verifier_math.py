"""The math verifier: known traps, fast path vs math_verify, options, CLI, and no code execution."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from rlvr.errors import RlvrUserError
from rlvr.types import VerifyStatus
from rlvr.verifiers import available, get
from rlvr.verifiers.math_form import unevaluated
from rlvr.verifiers.math_hedge import hedged

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def math():
    return get("math")


def test_builtins_registered() -> None:
    assert {"math", "logic", "countdown"} <= set(available())


@pytest.mark.parametrize(
    "response,gold,expected",
    [
        ("The value is 1.2e3.", "1200", True),  # plain-text sci notation is not read as 1.2
        ("The value is 1.2e3.", "1.2", False),
        (r"\boxed{3.14159}", r"\pi", False),  # math_verify rounds to 6 places: 3.141593 != 3.14159
        (r"\boxed{3.1415927}", r"\pi", True),
        (r"\boxed{3, 2}", "2, 3", True),  # an unordered list of answers
        (r"\boxed{(3, 2)}", "(2, 3)", False),  # an ordered pair
        (r"\boxed{2, -2}", r"\pm 2", True),
        (r"\boxed{2}", r"\pm 2", False),
        (r"\boxed{28\%}", r"28\%", True),
        (r"\boxed{28}", r"28\%", True),  # math_verify accepts the bare number for a percentage
        (r"\boxed{0.28}", r"28\%", True),
        (r"\boxed{29}", r"28\%", False),
        (r"so \boxed{0.5}", r"\frac12", True),
    ],
)
def test_known_traps(math, response: str, gold: str, expected: bool) -> None:
    result = math.verify(response, gold)
    assert result.correct is expected, result
    assert result.reward == float(expected)


def test_fast_path_agrees_with_slow_path(math) -> None:
    cases = [
        (r"Thus $x = \boxed{42}$.", "42"),
        (r"Thus $x = \boxed{41}$.", "42"),
        (r"\boxed{-7}", "-7"),
        (r"\boxed{\frac{14}{3}}.", r"\frac{14}{3}"),
        (r"\boxed{42}\%", "42"),  # trailing percent: the fast path must step aside
        (r"The final answer is $41$. \boxed{42}", "42"),
    ]
    for response, gold in cases:
        for extraction in ("boxed_first", "answer_is"):
            fast = math.verify(response, gold, extraction=extraction)
            slow = math.verify(response, gold, extraction=extraction, fast_path=False)
            assert fast.correct == slow.correct, (response, gold, extraction)
    before = math.fast_hits
    assert math.verify(r"so \boxed{12}.", "12").correct
    assert math.fast_hits == before + 1


@pytest.mark.parametrize(
    "answer,why",
    [
        ("52", None),
        ("18 + 34", "arithmetic left undone: 18+34"),
        (r"2^{10}", "arithmetic left undone: 2^{10}"),
        (r"10^{-3}", "arithmetic left undone: 10^{-3}"),
        (r"3 \times 4", r"arithmetic left undone: 3\times4"),
        ("5!", "arithmetic left undone: 5!"),
        (r"\frac{1}{2}+\frac{1}{3}", "arithmetic left undone: <fraction>+<fraction>"),
        (r"\frac{90}{2}", r"division left undone: \frac{90}{2}"),
        ("7/1", "division left undone: 7/1"),
        ("-5", None),  # a sign, not a subtraction
        (r"\frac{2}{6}", None),  # not in lowest terms, but a number written out
        ("2/3.", None),
        (r"1.2 \times 10^{3}", None),  # scientific notation is one number
        (r"1{,}000", None),
        (r"1\frac{1}{2}", None),
        (r"2\sqrt{3}", None),
        (r"90^\circ", None),
        ("x+1", None),
    ],
)
def test_unevaluated_answer_forms(answer: str, why: str | None) -> None:
    assert unevaluated(answer) == why


@pytest.mark.parametrize(
    "response,gold,expected",
    [
        (r"\boxed{18+34}", "52", False),  # the question copied back
        ("18 + 34 = x", "52", False),
        (r"So \boxed{\frac{104}{2}}", "52", False),
        (r"\boxed{52}", "52", True),
        (r"\boxed{2^{10}}", "1024", False),
        (r"\boxed{2^{10}}", r"2^{10}", True),  # the gold is a power itself: any form of its value goes
        (r"\boxed{1024}", r"2^{10}", True),
        (r"\boxed{x+1+1}", "x+2", True),  # the rule is for numeric golds only
        (r"\boxed{2/6}", r"\frac{1}{3}", True),
        (r"\boxed{0.5}", r"\frac12", True),
    ],
)
def test_require_evaluated(math, response: str, gold: str, expected: bool) -> None:
    result = math.verify(response, gold)
    assert result.correct is expected and result.status == VerifyStatus.OK, result
    if not expected:
        assert "left undone" in result.reason
        assert math.verify(response, gold, require_evaluated=False).correct  # math_verify's own label
        again = math.verify(response, gold)  # second time through the answer cache: same label, same reason
        assert (again.correct, again.reason) == (False, result.reason)


@pytest.mark.parametrize(
    "response,answer,why",
    [
        ("The answer is 52 or 53.", "52", "hedged between values: 52 or 53"),
        ("It is either 53 or 52", "52", "hedged between values: 53 or 52"),
        ("The answer is $52$ or $53$.", "52", "hedged between values: 52 or 53"),
        ("The answer is 51, 52 or 53.", "52", "hedged between values: 51 or 52 or 53"),
        (r"\boxed{52} or maybe 53", "52", "hedged between values: 52 or 53"),
        ("The answer is 2.5 or 3.", "2.5", "hedged between values: 2.5 or 3"),
        ("The answer is 1,000 or 1,001", "1000", "hedged between values: 1,000 or 1,001"),
        ("The answer is 52.", "52", None),
        ("The answer is 52 or 52.0", "52", None),  # one value written twice
        ("The answer is 52, 3 more than 49.", "52", None),  # a comma alone does not make a chain
        ("The answer is 52 or more.", "52", None),
        ("So 52 or 53 could work. Checking, 52 works. The answer is 52.", "52", None),
        ("Between 10 or 52 items, we pick 52", "52", None),  # the last 52 is alone
        ("The answer is 52 and 53", "52", "hedged between values: 52, 53"),  # "and" or commas: the chain
        ("The answer is 52, 53.", "52", "hedged between values: 52, 53"),  # must end the sentence
        (r"The answer is $\boxed{52}$ and $53$.", "52", "hedged between values: 52, 53"),
        ("The answer is 52, and 53 was a typo.", "52", None),
        ("52 and 53 were tried; 52 is the answer", "52", None),
        ("The sum of 26 and 26 is 52.", "52", None),
        ("So x = 52 and y = 53, the answer is 52.", "52", None),
        (r"\boxed{52}. Check: its divisors are 1, 2, 4, 13, 26, 52.", "52", None),  # the box is the answer
        (r"Either 53 or \boxed{52}. Check: 52 = 4 * 13.", "52", "hedged between values: 53 or 52"),
        (r"The answer is \frac{1}{2}, 0.5.", "0.5", None),  # one value in two forms
        (
            r"The answer is \frac{1}{2} or \frac{1}{3}",
            r"\frac{1}{2}",
            r"hedged between values: \frac{1}{2} or \frac{1}{3}",
        ),
    ],
)
def test_hedged_answer_forms(response: str, answer: str, why: str | None) -> None:
    assert hedged(response, answer) == why


@pytest.mark.parametrize(
    "response,gold,expected",
    [
        ("The answer is 52 or 53.", "52", False),
        (r"Either 53 or \boxed{52}.", "52", False),  # a single box, but not a single answer
        (r"\boxed{52}, or possibly 53", "52", False),
        ("The answer is 52.", "52", True),
        (r"So 52 or 53 might work; checking both. Only 52 does. \boxed{52}", "52", True),
        (r"\boxed{3, 2}", "2, 3", True),  # a list gold: the rule is for single numbers only
        ("The answer is 52 and 53.", "52", False),
    ],
)
def test_reject_hedged(math, response: str, gold: str, expected: bool) -> None:
    for fast_path in (True, False):
        result = math.verify(response, gold, fast_path=fast_path)
        assert result.correct is expected and result.status == VerifyStatus.OK, (fast_path, result)
        if not expected:
            assert result.reason.startswith("hedged between values"), result
            assert math.verify(response, gold, reject_hedged=False, fast_path=fast_path).correct


def test_extraction_modes(math) -> None:
    text = r"The final answer is $7$. I hope it is right. \boxed{5}"
    assert math.verify(text, "5", extraction="boxed_first").correct
    assert math.verify(text, "7", extraction="answer_is").correct
    assert math.verify(r"\boxed{5} and later $x = 7$", "7", extraction="last_expression").correct


def test_no_answer_and_metadata_ignored(math) -> None:
    result = math.verify("I do not know.", "5", level=3, unique_id="x")
    assert result.status == VerifyStatus.NO_ANSWER and result.reward == 0.0


def test_bad_option_is_user_error(math) -> None:
    with pytest.raises(RlvrUserError, match="extraction"):
        math.verify(r"\boxed{1}", "1", extraction="first")
    with pytest.raises(RlvrUserError, match="require_evaluated"):
        math.verify(r"\boxed{1}", "1", require_evaluated="yes")
    with pytest.raises(RlvrUserError, match="verifiers.specs.math.reject_hedged"):
        math.verify(r"\boxed{1}", "1", reject_hedged=1)


def test_hard_timeout_then_recovers(math) -> None:
    result = math.verify(r"\boxed{(10^{10})!}", r"\frac{1}{3}", timeout_s=2)
    assert result.status in (VerifyStatus.TIMEOUT, VerifyStatus.OK) and not result.correct
    assert math.verify(r"\boxed{\frac{2}{6}}", r"\frac{1}{3}").correct


@pytest.mark.parametrize(
    "template", ["__import__('os').system('touch {p}')", r"\boxed{{__import__('os').system('touch {p}')}}"]
)
def test_model_output_is_never_executed(math, tmp_path: Path, template: str) -> None:
    target = tmp_path / f"pwned-{uuid.uuid4().hex}"
    result = math.verify(template.format(p=target), "0")
    assert not result.correct
    assert not target.exists()


def test_cli_prints_one_json_line(capsys) -> None:
    from rlvr.cli import main

    main(["verify", "verifiers=math", "--gold", r"\frac12", "--response", r"so \boxed{0.5}"])
    out = json.loads(capsys.readouterr().out.strip())
    assert out["correct"] is True and out["status"] == "ok"
    main(["verify", "verifiers=math", "--gold", "3", "--response", r"\boxed{4}"])
    assert json.loads(capsys.readouterr().out.strip())["correct"] is False
    with pytest.raises(SystemExit) as exc:
        main(["verify", "verifiers=math", "--gold", "3", "--response", "x", "--verifier", "nope"])
    assert exc.value.code == 2
