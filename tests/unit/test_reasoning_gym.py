"""The reasoning-gym adapter: `procedural:reasoning_gym/<task>` prompts and the `reasoning_gym` verifier."""

from __future__ import annotations

import builtins
from typing import Any

import pytest

from rlvr.config import load_config
from rlvr.config.schema import DataConfig
from rlvr.data.loader import load_prompts
from rlvr.errors import RlvrUserError
from rlvr.types import VerifyStatus
from rlvr.verifiers import get
from rlvr.verifiers.reasoning_gym import extract_answer

pytestmark = pytest.mark.unit


def test_without_the_package_a_one_line_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_rg(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "reasoning_gym" or name.startswith("reasoning_gym."):
            raise ImportError("No module named 'reasoning_gym'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rg)
    with pytest.raises(RlvrUserError, match=r"^data\.source: .*pip install 'rlvr\[reasoning-gym\]'$"):
        load_prompts(DataConfig(source="procedural:reasoning_gym/leg_counting", num_procedural=2))


def test_answer_extraction() -> None:
    assert extract_answer("think <answer> 12 </answer> and <answer>13</answer>") == "13"
    assert extract_answer("so \\boxed{14}") == "14"
    assert extract_answer("<answer>15</answer> \\boxed{16}") == "15"  # the tag wins, as reasoning-gym asks
    assert extract_answer("17") is None


rg = pytest.importorskip(
    "reasoning_gym", reason="reasoning-gym is not installed (pip install 'rlvr[reasoning-gym]')"
)


@pytest.mark.parametrize("task", ["leg_counting", "basic_arithmetic"])
def test_prompts_are_seeded_and_carry_what_score_answer_needs(task: str) -> None:
    cfg = DataConfig(source=f"procedural:reasoning_gym/{task}", num_procedural=5, shuffle=False)
    prompts = load_prompts(cfg)
    again = load_prompts(cfg)
    assert len(prompts) == 5
    assert [(p.text, p.ground_truth, p.prompt_id) for p in prompts] == [
        (p.text, p.ground_truth, p.prompt_id) for p in again
    ]
    other = load_prompts(cfg.model_copy(update={"seed": 1}))
    assert [p.text for p in other] != [p.text for p in prompts]
    direct = list(rg.create_dataset(task, size=5, seed=0))
    for p, entry in zip(prompts, direct, strict=True):
        assert p.data_source == "reasoning_gym"
        assert p.text == entry["question"] and p.ground_truth == str(entry["answer"])
        assert p.metadata["rg_dataset"] == task and p.metadata["rg_entry"] == entry


def test_verifier_uses_the_datasets_own_score() -> None:
    prompts = load_prompts(DataConfig(source="procedural:reasoning_gym/leg_counting", num_procedural=3))
    verifier = get("reasoning_gym")
    for p in prompts:
        right = verifier.verify(
            f"thinking... <answer>{p.ground_truth}</answer>", p.ground_truth, **p.metadata
        )
        assert (right.reward, right.correct, right.extracted) == (1.0, True, p.ground_truth)
        boxed = verifier.verify(f"\\boxed{{{p.ground_truth}}}", p.ground_truth, **p.metadata)
        assert boxed.correct
        wrong = verifier.verify("<answer>-1</answer>", p.ground_truth, **p.metadata)
        expected = rg.get_score_answer_fn("leg_counting")("-1", p.metadata["rg_entry"])
        assert wrong.reward == expected and not wrong.correct
        none = verifier.verify("no idea", p.ground_truth, **p.metadata)
        assert none.status is VerifyStatus.NO_ANSWER and none.reward == 0.0


def test_partial_credit_comes_from_score_answer() -> None:
    p = load_prompts(DataConfig(source="procedural:reasoning_gym/basic_arithmetic", num_procedural=1))[0]
    answer = f"{p.ground_truth} or so"  # the base score: len(oracle) / len(answer) when the oracle is inside
    r = get("reasoning_gym").verify(f"<answer>{answer}</answer>", p.ground_truth, **p.metadata)
    expected = rg.get_score_answer_fn("basic_arithmetic")(answer, p.metadata["rg_entry"])
    assert r.reward == pytest.approx(expected) and 0.0 <= r.reward < 1.0 and not r.correct


def test_rows_without_reasoning_gym_metadata_are_an_error_result() -> None:
    r = get("reasoning_gym").verify("<answer>1</answer>", "1")
    assert r.status is VerifyStatus.ERROR and "rg_entry" in r.reason


def test_unknown_task_is_a_one_line_error() -> None:
    with pytest.raises(
        RlvrUserError,
        match=r"^data\.source: unknown reasoning_gym task 'leg_countin' \(did you mean 'leg_counting'\?\)",
    ):
        load_prompts(DataConfig(source="procedural:reasoning_gym/leg_countin", num_procedural=1))


def test_preset_selects_the_verifier() -> None:
    cfg = load_config(["verifiers=reasoning_gym", "data.source=procedural:reasoning_gym/leg_counting"])
    assert "reasoning_gym" in cfg.verifiers.specs
    assert cfg.verifiers.specs["reasoning_gym"].timeout_s == 10.0
