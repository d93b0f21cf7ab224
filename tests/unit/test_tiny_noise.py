"""model.tiny.sft_noise: near-miss answers in the warm start (the study model's sampled slips)."""

from __future__ import annotations

from collections import Counter

import pytest

from rlvr.config.schema import TinyModelConfig
from rlvr.errors import RlvrUserError
from rlvr.models.tiny import NEAR_MISSES, config_hash, sft_pairs

pytestmark = pytest.mark.unit


def _boxed(answer: str) -> int:
    return int(answer.rsplit("\\boxed{", 1)[1].rstrip("}"))


def test_noise_replaces_the_stated_fraction_with_near_misses_of_the_same_sign():
    cfg = TinyModelConfig(sft_steps=100, sft_batch_size=20, sft_noise=0.3)
    clean = sft_pairs(cfg.model_copy(update={"sft_noise": 0.0}))
    noisy = sft_pairs(cfg)
    assert [q for q, _ in clean] == [q for q, _ in noisy]  # the same problems, in the same order
    truth = {q: _boxed(a) for q, a in clean}
    slips = [(q, _boxed(a)) for q, a in noisy if _boxed(a) != truth[q]]
    assert 0.25 < len(slips) / len(noisy) < 0.35
    for q, wrong in slips:
        assert wrong - truth[q] in NEAR_MISSES and (wrong >= 0) == (truth[q] >= 0), q


def test_noise_in_a_worked_answer_changes_the_working_too():
    cfg = TinyModelConfig(task="addition_steps", sft_steps=50, sft_batch_size=8, sft_noise=0.5)
    truth = {q: _boxed(a) for q, a in sft_pairs(cfg.model_copy(update={"sft_noise": 0.0}))}
    slips = 0
    for q, a in sft_pairs(cfg):
        backwards, boxed = a.split("|")
        assert int(backwards[::-1]) == _boxed(a)  # the working states the slipped sum, consistently
        slips += _boxed(a) != truth[q]
    assert 150 < slips < 250


def test_countdown_slips_are_expressions_a_little_off_the_target():
    from rlvr.verifiers.safe_arith import evaluate

    cfg = TinyModelConfig(task="countdown_short", sft_steps=20, sft_batch_size=10, sft_noise=0.5)
    clean = sft_pairs(cfg.model_copy(update={"sft_noise": 0.0}))
    slips = 0
    for (q, a), (_, right) in zip(sft_pairs(cfg), clean, strict=True):
        numbers, target = q.rstrip(":").split(">")
        value, used = evaluate(a.removeprefix("<answer>").removesuffix("</answer>"))
        assert not Counter(int(n) for n in used) - Counter(
            int(n) for n in numbers.split()
        )  # each number once
        if a != right:
            slips += 1
            assert 0 < abs(value - int(target)) <= 3, (q, a)
        else:
            assert value == int(target)
    assert 60 < slips < 110  # about half (a puzzle with no near miss keeps its answer)


@pytest.mark.parametrize(
    ("task", "why"),
    [
        ("countdown", "does not write its answer from the ground truth"),
        ("knights_knaves", "no integer answers"),
    ],
)
def test_noise_on_a_task_without_near_misses_is_refused(task, why):
    with pytest.raises(RlvrUserError, match=rf"^model\.tiny\.sft_noise: .*{why}"):
        sft_pairs(TinyModelConfig(task=task, sft_steps=5, sft_batch_size=4, sft_noise=0.9))


def test_noise_joins_the_cache_key_only_when_set():
    # The keys the previous release gave these configs: folders cached before the knob existed are still found.
    assert config_hash(TinyModelConfig()) == "c8f58b8939dc"
    assert config_hash(TinyModelConfig(task="addition", num_layers=4)) == "6b608d8a7777"
    assert config_hash(TinyModelConfig(sft_noise=0.3)) != config_hash(TinyModelConfig())
