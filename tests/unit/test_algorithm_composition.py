"""Composition by config: `advantage=rloo algorithms=simko` through load_config and from_config, old
(flat-params) configs, one-line errors for unknown estimator / loss / param names."""

from __future__ import annotations

import pytest
import torch

import rlvr.algorithms as algos
from rlvr import load_config
from rlvr.algorithms import ADVANTAGES, LossInput, TokenStats, from_config
from rlvr.config.schema import AlgorithmConfig
from rlvr.errors import RlvrUserError

pytestmark = pytest.mark.unit
D = torch.float64


def loss_input(seed=0, b=6, t=7, k=3):
    g = torch.Generator().manual_seed(seed)
    logp = (-torch.rand(b, t, generator=g, dtype=D) * 2).requires_grad_()
    topk = (-torch.rand(b, t, k, generator=g, dtype=D).sort(-1).values).requires_grad_()
    stats = TokenStats(
        logp,
        topk,
        torch.zeros(b, t, k, dtype=torch.long),
        torch.rand(b, t, generator=g, dtype=D),
        torch.rand(b, t, generator=g) < 0.5,
    )
    correct = torch.tensor([True, False, True, True, False, False])
    adv = torch.tensor([0.5, -0.5, 0.2, 1.0, -1.0, -0.1], dtype=D)
    return LossInput(stats, logp.detach() + 0.01, adv, correct.to(D), correct, torch.ones(b, t, dtype=D))


def test_advantage_rloo_with_simko_preset():
    cfg = load_config(["advantage=rloo", "algorithms=simko", "algorithm.params.alpha=0.2"])
    assert (cfg.algorithm.name, cfg.algorithm.advantage) == ("simko", "rloo")
    algo = from_config(cfg.algorithm)
    p = algo.Params.model_validate(cfg.algorithm.params)
    assert "norm_std" not in type(p).model_fields and p.alpha == 0.2
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5, 0.0], dtype=D)
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    rloo = ADVANTAGES.get("rloo")
    torch.testing.assert_close(
        algo.advantages(rewards, rewards > 0, groups, p), rloo.fn(rewards, rewards > 0, groups, p)
    )
    simko = algos.get("simko")
    sp = simko.Params.model_validate(cfg.algorithm.params)
    torch.testing.assert_close(algo.loss(loss_input(), p).loss, simko.loss(loss_input(), sp).loss)
    assert algo.top_k(p) == simko.top_k(sp) == 3
    # Order on the command line does not matter; the preset's own estimator is the default.
    swapped = load_config(["algorithms=simko", "advantage=rloo"]).algorithm
    assert swapped.advantage == "rloo" and swapped.params == {**cfg.algorithm.params, "alpha": 0.01}
    assert load_config(["algorithms=simko"]).algorithm.advantage == "grpo"
    assert from_config(load_config(["algorithms=simko"]).algorithm) is simko
    # The estimator's config key means the same as its group option (the old estimator's params leave).
    by_key = load_config(["algorithms=simko", "algorithm.advantage=rloo"]).algorithm
    assert by_key == swapped
    assert load_config(["algorithm.advantage=rloo"]).algorithm.advantage == "rloo"


@pytest.mark.parametrize(
    ("preset", "advantage", "loss"),
    [
        ("grpo", "grpo", "ppo"),
        ("psr", "psr", "ppo"),
        ("rloo", "rloo", "ppo"),
        ("gspo", "grpo", "gspo"),
        ("cispo", "grpo", "cispo"),
        ("reinforce_pp", "reinforce_pp", "ppo"),
    ],
)
def test_presets_compose_from_cli(preset, advantage, loss):
    cfg = load_config([f"algorithms={preset}"])
    algo = from_config(cfg.algorithm)
    assert (algo.advantage_name, algo.loss_name) == (advantage, loss)
    algo.Params.model_validate(cfg.algorithm.params)


def test_dr_grpo_option_and_loss_swap():
    cfg = load_config(["advantage=dr_grpo", "algorithm.params.loss_agg=seq_sum"])
    p = from_config(cfg.algorithm).Params.model_validate(cfg.algorithm.params)
    assert p.norm_std is False and p.loss_agg == "seq_sum"
    cfg = load_config(["algorithms=gspo", "algorithm.loss=cispo"])
    algo = from_config(cfg.algorithm)
    assert (algo.advantage_name, algo.loss_name) == ("grpo", "cispo")


def test_old_flat_config_still_validates():
    """A config saved before the registries (deploy/examples/configmap.yaml): no advantage key, flat params."""
    old = AlgorithmConfig(
        name="simko",
        params={
            "clip_eps": 0.2,
            "clip_eps_high": None,
            "kl_coef": 0.0,
            "entropy_coef": 0.0,
            "loss_agg": "token_mean",
            "metrics_top_k": 3,
            "norm_std": True,
            "eps": 1e-6,
            "top_k": 3,
            "alpha": 0.01,
            "lam": 1.1,
            "tau": 0.8,
            "tau_mode": "quantile",
        },
    )
    algo = from_config(old)
    assert algo is algos.get("simko")
    assert algo.Params.model_validate(old.params).norm_std is True


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["advantage=rlo"], r"^advantage: unknown option 'rlo'; available: .*rloo.*did you mean 'rloo'"),
        (
            ["algorithm.advantage=zzz"],
            r"^config key 'algorithm.advantage': unknown advantage estimator 'zzz'; registered: grpo",
        ),
        (
            ["algorithm.loss=ppoo"],
            r"^config key 'algorithm.loss': unknown policy loss 'ppoo'; registered: .*did you mean 'ppo'",
        ),
        (
            ["algorithm.name=grpoo"],
            r"^config key 'algorithm.name': unknown algorithm 'grpoo'; registered: .*simko",
        ),
        (
            ["advantage=rloo", "+algorithm.params.norm_std=false"],
            r"^config key 'algorithm.params.norm_std': Extra inputs",
        ),
        (
            ["algorithms=grpo", "algorithm.loss=cispo"],
            r"^config key 'algorithm.params.clip_ratio_c': Extra inputs",
        ),
    ],
)
def test_unknown_names_are_one_line_errors(overrides, match):
    with pytest.raises(RlvrUserError, match=match) as e:
        load_config(overrides)
    assert "\n" not in str(e.value)


def test_custom_strategy_cannot_be_recomposed():
    @algos.register_algorithm("test_own", override=True)
    class Own(algos.Algorithm):
        pass

    try:
        with pytest.raises(RlvrUserError, match=r"algorithm.advantage.*computes its own advantages"):
            from_config(AlgorithmConfig(name="test_own", advantage="rloo"))
        assert from_config(AlgorithmConfig(name="test_own")) is algos.get("test_own")
    finally:
        algos.ALGORITHMS._items.pop("test_own", None)
