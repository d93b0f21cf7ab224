"""The reward planner/combiner (`rlvr.rewards`): weights, applies_to, component means, group rewards, errors."""

from __future__ import annotations

import math

import pytest

import rlvr
from rlvr.config import load_config
from rlvr.errors import RlvrUserError
from rlvr.rewards import GroupMember, RewardPlan, verifier_options
from rlvr.types import Prompt, Sample, VerifierResult, VerifyStatus

pytestmark = pytest.mark.unit


def row(
    source: str, text: str, gid: str, *, tokens: int = 3, finish: str = "stop"
) -> tuple[Prompt, Sample, str]:
    prompt = Prompt(text="q", ground_truth="4", data_source=source, metadata={"k": 1})
    sample = Sample([1], list(range(tokens)), text, [0.0] * tokens, finish, 0)
    return prompt, sample, gid


def res(reward: float, correct: bool | None = None, reason: str = "") -> VerifierResult:
    return VerifierResult(reward, bool(reward) if correct is None else correct, reason=reason)


def plan(*overrides: str) -> RewardPlan:
    return RewardPlan.from_config(load_config(list(overrides)).verifiers)


def test_default_plan_is_one_item_per_row_and_keeps_results() -> None:
    p = plan()
    rows = [row("math", "\\boxed{4}", "g"), row("math", "5", "g")]
    items = p.items(rows)
    assert items == [("math", "\\boxed{4}", "4", {"k": 1}), ("math", "5", "4", {"k": 1})]
    out, means = p.combine(rows, [res(1.0, reason="r"), res(0.0)])
    assert [(r.reward, r.correct, r.reason) for r in out] == [(1.0, True, "r"), (0.0, False, "")]
    assert means == {"reward/math": 0.5}


def test_format_bonus_is_weighted_and_correct_stays_the_primary_verdict() -> None:
    p = plan("verifiers=[math,format]", "verifiers.specs.format.weight=0.5")
    rows = [row("math", "a", "g"), row("math", "b", "g"), row("math", "c", "g")]
    assert [i[0] for i in p.items(rows)] == ["math", "format"] * 3
    # (math, format) per row: right+boxed, wrong+boxed, wrong+unboxed
    results = [
        res(1.0),
        res(1.0),
        res(0.0),
        res(1.0),
        res(0.0),
        VerifierResult(0.0, False, status=VerifyStatus.NO_ANSWER),
    ]
    out, means = p.combine(rows, results)
    assert [r.reward for r in out] == [1.5, 0.5, 0.0]  # reward = 1 * math + 0.5 * format
    assert [r.correct for r in out] == [True, False, False]
    assert out[2].status is VerifyStatus.OK  # math's status, not format's
    assert means == pytest.approx({"reward/math": 1 / 3, "reward/format": 2 / 3})


def test_format_preset_weight_and_scope() -> None:
    spec = load_config(["verifiers=[math,format]"]).verifiers.specs["format"]
    assert (spec.weight, spec.applies_to) == (0.2, "all")


def test_source_verifiers_score_only_their_rows_and_means_are_per_component() -> None:
    p = plan("verifiers=[math,logic,format]", "verifiers.specs.logic.weight=2.0")
    rows = [row("math", "m", "g1"), row("logic", "l", "g2")]
    assert [i[0] for i in p.items(rows)] == ["math", "format", "logic", "format"]
    out, means = p.combine(rows, [res(1.0), res(0.0), res(0.5, False), res(1.0)])
    assert [r.reward for r in out] == pytest.approx([1.0, 2 * 0.5 + 0.2 * 1.0])
    assert means == pytest.approx({"reward/math": 1.0, "reward/logic": 0.5, "reward/format": 0.5})


def test_applies_to_all_on_a_source_verifier_scores_other_rows_as_an_extra_component() -> None:
    p = plan("verifiers=[math,logic]", "verifiers.specs.math.applies_to=all")
    rows = [row("math", "m", "g"), row("logic", "l", "g")]
    assert [i[0] for i in p.items(rows)] == ["math", "logic", "math"]
    out, _ = p.combine(rows, [res(1.0), res(0.0), res(1.0)])
    assert [(r.reward, r.correct) for r in out] == [(1.0, True), (1.0, False)]


def test_a_row_whose_verifier_is_not_selected_is_a_user_error() -> None:
    with pytest.raises(
        RlvrUserError, match=r"^verifiers: rows with data_source 'logic' need verifier 'logic'"
    ):
        plan().items([row("logic", "x", "g")])


def test_combine_checks_the_result_count() -> None:
    with pytest.raises(ValueError, match="1 results for 2 items"):
        plan("verifiers=[math,format]").combine([row("math", "x", "g")], [res(1.0)])


def test_bad_weights_are_one_line_errors_naming_the_key() -> None:
    for overrides, key in [
        (["verifiers.specs.math.weight=nan"], "verifiers.specs.math.weight"),
        (["verifiers.specs.math.weight=inf"], "verifiers.specs.math.weight"),
        (["verifiers.specs.math.weight=heavy"], "verifiers.specs.math.weight"),
        (["verifiers.specs.math.applies_to=some"], "verifiers.specs.math.applies_to"),
        (["verifiers.group_rewards=[x:heavy]"], "verifiers.group_rewards"),
        (["verifiers.group_rewards=[x:nan]"], "verifiers.group_rewards"),
    ]:
        with pytest.raises(RlvrUserError) as e:
            load_config(overrides)
        assert key in str(e.value) and "\n" not in str(e.value), overrides


def test_unknown_duplicate_or_clashing_group_rewards_name_the_key() -> None:
    with pytest.raises(RlvrUserError, match=r"^verifiers\.group_rewards: unknown group reward 'no_such'"):
        load_config(["verifiers.group_rewards=[no_such]"])
    with pytest.raises(RlvrUserError, match=r"^verifiers\.group_rewards: 'math' is also a verifier"):
        load_config(["verifiers.group_rewards=[math]"])
    with pytest.raises(RlvrUserError, match=r"^verifiers\.group_rewards: 'test_any_right' is listed twice"):
        load_config(["verifiers.group_rewards=[test_any_right,test_any_right:2]"])


seen: list[list[GroupMember]] = []


@rlvr.register_group_reward("test_any_right", override=True)
def any_right(group: list[GroupMember]) -> list[float]:
    """1 for every member when at least one is right (a pass@K-style group signal)."""
    seen.append(group)
    hit = float(any(m.result.correct for m in group))
    return [hit] * len(group)


@rlvr.register_group_reward("test_short", override=True)
def short(group: list[GroupMember]) -> list[float]:
    """1 for the correct answers no longer than the group's shortest correct one; truncated get -1."""
    lengths = [m.num_tokens for m in group if m.result.correct]
    best = min(lengths) if lengths else None
    return [-1.0 if m.truncated else float(m.result.correct and m.num_tokens == best) for m in group]


def test_group_rewards_are_weighted_per_group_and_logged() -> None:
    seen.clear()
    p = plan("verifiers=[math,format]", "verifiers.group_rewards=[test_any_right:0.5,test_short]")
    rows = [
        row("math", "a", "g1", tokens=4),
        row("math", "b", "g1", tokens=2),
        row("math", "c", "g2", tokens=9, finish="length"),
        row("math", "d", "g2", tokens=3),
    ]
    # (math, format) per row; only g1 has a right answer (row a)
    results = [res(1.0), res(1.0), res(0.0), res(0.0), res(0.0), res(0.0), res(0.0), res(1.0)]
    out, means = p.combine(rows, results)
    verifier_part = [1.2, 0.0, 0.0, 0.2]
    any_part = [0.5, 0.5, 0.0, 0.0]  # 0.5 * test_any_right
    short_part = [1.0, 0.0, -1.0, 0.0]
    assert [r.reward for r in out] == pytest.approx(
        [v + a + s for v, a, s in zip(verifier_part, any_part, short_part, strict=True)]
    )
    assert [r.correct for r in out] == [True, False, False, False]
    assert means == pytest.approx(
        {"reward/math": 0.25, "reward/format": 0.5, "reward/test_any_right": 0.5, "reward/test_short": 0.0}
    )
    g1, g2 = seen
    assert [m.response for m in g1] == ["a", "b"] and [m.num_tokens for m in g1] == [4, 2]
    assert [m.truncated for m in g2] == [True, False]
    assert [m.result.reward for m in g1] == pytest.approx([1.2, 0.0])  # the weighted verifier sum


@rlvr.register_group_reward("test_wrong_length", override=True)
def wrong_length(group: list[GroupMember]) -> list[float]:
    return [1.0]


@rlvr.register_group_reward("test_nan", override=True)
def not_finite(group: list[GroupMember]) -> list[float]:
    return [math.nan] * len(group)


def test_a_group_reward_that_misbehaves_is_named() -> None:
    rows = [row("math", "a", "g"), row("math", "b", "g")]
    with pytest.raises(RlvrUserError, match=r"'test_wrong_length' returned 1 values for a group of 2"):
        plan("verifiers.group_rewards=[test_wrong_length]").combine(rows, [res(1.0), res(0.0)])
    with pytest.raises(RlvrUserError, match=r"'test_nan' returned a non-finite value"):
        plan("verifiers.group_rewards=[test_nan]").combine(rows, [res(1.0), res(0.0)])


def test_verifier_options_drop_the_reward_keys() -> None:
    spec = load_config(["verifiers=[math,format]"]).verifiers.specs["math"].model_dump()
    assert verifier_options(spec) == {
        "timeout_s": 5.0,
        "extraction": "boxed_first",
        "require_evaluated": True,
        "reject_hedged": True,
    }


def test_the_docs_group_reward_example_runs() -> None:
    from pathlib import Path

    from rlvr.rewards import GROUP_REWARDS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "VERIFIERS.md").read_text()
    block = next(b for b in doc.split("```python")[1:] if "shortest_right" in b).split("```")[0]
    exec(compile(block, "VERIFIERS.md", "exec"), {})
    p = plan("verifiers.group_rewards=[shortest_right:0.1]")
    rows = [row("math", "a", "g", tokens=5), row("math", "b", "g", tokens=2), row("math", "c", "h")]
    out, means = p.combine(rows, [res(1.0), res(1.0), res(0.0)])
    assert [r.reward for r in out] == pytest.approx([1.0, 1.1, 0.0])
    assert means["reward/shortest_right"] == pytest.approx(1 / 3)
    assert "shortest_right" in GROUP_REWARDS
