"""The custom-strategy example of docs/ALGORITHMS.md, executed verbatim, is found by name and trains."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

import rlvr.algorithms as algos
from rlvr.algorithms import LossInput, TokenStats
from rlvr.algorithms.base import ALGORITHMS
from rlvr.errors import RlvrUserError

pytestmark = pytest.mark.unit
DOC = Path(__file__).resolve().parents[2] / "docs" / "ALGORITHMS.md"


def make_input(adv: torch.Tensor, b: int = 6, t: int = 5, k: int = 3) -> LossInput:
    g = torch.Generator().manual_seed(0)
    logp = (-torch.rand(b, t, generator=g, dtype=torch.float64)).requires_grad_()
    topk = -torch.rand(b, t, k, generator=g, dtype=torch.float64).sort(-1).values
    stats = TokenStats(
        logp,
        topk,
        torch.zeros(b, t, k, dtype=torch.long),
        torch.rand(b, t),
        torch.zeros(b, t, dtype=torch.bool),
    )
    correct = adv > 0
    return LossInput(
        stats, logp.detach(), adv, correct.double(), correct, torch.ones(b, t, dtype=torch.float64)
    )


@pytest.fixture(scope="module")
def my_algo():
    text = DOC.read_text()
    code = re.search(r"<!-- custom-algorithm:start -->\s*```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 35
    exec(compile(code, str(DOC), "exec"), {"__name__": "my_algo_doc_example"})
    yield algos.get("my_algo")
    ALGORITHMS._items.pop("my_algo", None)  # keep the process-wide registry as we found it


def test_found_by_name_and_listed(my_algo):
    assert my_algo.name == "my_algo" and "my_algo" in algos.available()
    with pytest.raises(
        RlvrUserError, match=r"unknown algorithm 'my_alg'; registered: .*my_algo.*did you mean"
    ):
        algos.get("my_alg")


def test_params_validate(my_algo):
    p = my_algo.Params.model_validate({"scale": 2.0, "clip_eps": 0.1})
    assert p.scale == 2.0 and p.clip_eps == 0.1 and my_algo.top_k(p) == 3
    with pytest.raises(ValidationError):
        my_algo.Params.model_validate({"scale": 1.0, "norm_std": True})


def test_advantages_and_loss(my_algo):
    p = my_algo.Params.model_validate({"scale": 2.0})
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    adv = my_algo.advantages(rewards, rewards > 0, torch.tensor([0, 0, 0, 1, 1, 1]), p)
    assert adv.tolist() == [2.0, -2.0, -2.0, 0.0, 0.0, 0.0]
    inp = make_input(adv=adv.double())
    out = my_algo.loss(inp, p)
    out.loss.backward()
    assert out.metrics["my_algo/pos_frac"] == pytest.approx(1 / 6)
    assert "lambda/rank1" in out.metrics and inp.stats.logprobs.grad[3:].abs().sum() == 0
    assert inp.stats.logprobs.grad[0].sum() < 0 < inp.stats.logprobs.grad[1].sum()


def test_unknown_name_lists_builtins():
    with pytest.raises(RlvrUserError) as e:
        algos.get("nope")
    assert all(n in str(e.value) for n in ["grpo", "psr", "nsr", "w_reinforce", "simko"])


def _doc_block(marker: str) -> str:
    text = DOC.read_text()
    return re.search(rf"<!-- {marker}:start -->\s*```python\n(.*?)```", text, re.S).group(1)


@pytest.fixture(scope="module")
def doc_estimator_and_loss():
    from rlvr.algorithms import ADVANTAGES, POLICY_LOSSES

    for marker in ("custom-advantage", "custom-loss"):
        code = _doc_block(marker)
        assert len(code.strip().splitlines()) <= 25
        exec(compile(code, str(DOC), "exec"), {"__name__": f"doc_{marker}"})
    yield ADVANTAGES.get("sign"), POLICY_LOSSES.get("neg_scaled_ppo")
    ADVANTAGES._items.pop("sign", None)
    POLICY_LOSSES._items.pop("neg_scaled_ppo", None)


def test_doc_estimator_composes_from_the_command_line(doc_estimator_and_loss):
    from rlvr import load_config

    cfg = load_config(["advantage=sign", "algorithms=simko", "algorithm.params.scale=2"])
    assert cfg.algorithm.advantage == "sign" and "norm_std" not in cfg.algorithm.params
    algo = algos.from_config(cfg.algorithm)
    p = algo.Params.model_validate(cfg.algorithm.params)
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    adv = algo.advantages(rewards, rewards > 0, torch.tensor([0, 0, 0, 1, 1, 1]), p)
    assert adv.tolist() == [2.0, -2.0, -2.0, 0.0, 0.0, 0.0]
    assert algo.loss_name == "simko" and algo.top_k(p) == 3


def test_doc_loss_scales_negative_advantages(doc_estimator_and_loss):
    from rlvr import load_config

    cfg = load_config(["algorithm.loss=neg_scaled_ppo", "algorithm.params.neg_scale=0.25"])
    algo = algos.from_config(cfg.algorithm)
    p = algo.Params.model_validate(cfg.algorithm.params)
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0, 0.0, -2.0], dtype=torch.float64)
    inp = make_input(adv)
    algo.loss(inp, p).loss.backward()
    got = inp.stats.logprobs.grad.sum(-1)
    # On-policy (ratio 1), token mean: d loss / d logp_t = -A' / N_tok with A' = A, or A / 4 where A < 0.
    want = -torch.where(adv < 0, adv * 0.25, adv) * 5 / 30
    torch.testing.assert_close(got, want)
