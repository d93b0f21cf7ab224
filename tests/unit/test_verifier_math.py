"""The math verifier: known traps, fast path vs math_verify, options, CLI, and no code execution."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from rlvr.errors import RlvrUserError
from rlvr.types import VerifyStatus
from rlvr.verifiers import available, get

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
