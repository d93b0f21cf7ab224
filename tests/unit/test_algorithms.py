"""Presets: advantages, sample selection, SimKO's gradient against its closed form, metrics."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import yaml

import rlvr.algorithms as algos
from rlvr.algorithms import LossInput, TokenStats
from rlvr.algorithms import simko as simko_mod
from rlvr.errors import RlvrUserError
from rlvr.metrics.exploration import high_entropy_mask
from rlvr.policy_stats import fused_token_stats

pytestmark = pytest.mark.unit
TOL = dict(atol=1e-10, rtol=1e-8)
CONF = Path(__file__).resolve().parents[2] / "rlvr" / "conf" / "algorithms"


def make_input(b=6, t=9, k=3, seed=0, correct=None, adv=None, ref=False):
    g = torch.Generator().manual_seed(seed)
    d = torch.float64
    logp = (-torch.rand(b, t, generator=g, dtype=d) * 3).requires_grad_()
    topk = (-torch.rand(b, t, k, generator=g, dtype=d).sort(-1).values * 2).requires_grad_()
    ent = torch.rand(b, t, generator=g, dtype=d) * 2
    rank1 = torch.rand(b, t, generator=g) < 0.5
    mask = torch.ones(b, t, dtype=d)
    mask[0, -3:] = 0
    mask[3, -5:] = 0
    old = logp.detach() + (torch.rand(b, t, generator=g, dtype=d) - 0.5) * 0.05  # ratios stay unclipped
    correct = torch.tensor([True, False, True, False, True, False])[:b] if correct is None else correct
    adv = torch.where(correct, 1.0, -1.0).to(d) if adv is None else adv
    ref_lp = (logp.detach() - 0.1) if ref else None
    stats = TokenStats(logp, topk, torch.zeros(b, t, k, dtype=torch.long), ent, rank1, ref_lp)
    return LossInput(stats, old, adv, correct.to(d), correct, mask)


def params(name, **kw):
    algo = algos.get(name)
    return algo, algo.Params.model_validate(kw)


@pytest.mark.parametrize(
    "name", ["grpo", "psr", "nsr", "w_reinforce", "simko", "rloo", "reinforce_pp", "gspo", "cispo"]
)
def test_presets_validate_and_metrics(name):
    preset = yaml.safe_load((CONF / f"{name}.yaml").read_text())
    assert preset["name"] == name
    algo, p = params(name, **preset["params"])
    inp = make_input()
    out = algo.loss(inp, p)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    for key in ["loss", "pg_loss", "entropy", "high_entropy_frac", "rank1_frac", "clip_frac", "approx_kl"]:
        assert isinstance(out.metrics[key], float), key
    m = inp.mask.bool()
    for i in range(p.metrics_top_k):
        want = inp.stats.topk_logprobs.detach()[..., i].exp()[m].mean().item()
        assert out.metrics[f"lambda/rank{i + 1}"] == pytest.approx(want)
    assert out.metrics["rank1_frac"] == pytest.approx(inp.stats.is_rank1[m].double().mean().item())
    assert out.metrics["entropy"] == pytest.approx(inp.stats.entropy[m].mean().item())


def test_grpo_advantages_and_dr_grpo():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.5, 0.0, 2.0])
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2])
    algo, p = params("grpo", eps=1e-6)
    adv = algo.advantages(rewards, rewards > 0, groups, p)
    for gi in range(3):
        r = rewards[groups == gi]
        std = r.std() if r.numel() > 1 else torch.tensor(0.0)
        torch.testing.assert_close(adv[groups == gi], (r - r.mean()) / (std + 1e-6))
    _, p_dr = params("grpo", norm_std=False)
    adv_dr = algo.advantages(rewards, rewards > 0, groups, p_dr)
    for gi in range(3):
        r = rewards[groups == gi]
        torch.testing.assert_close(adv_dr[groups == gi], r - r.mean())


@pytest.mark.parametrize("agg", ["token_mean", "seq_mean_token_mean", "seq_sum"])
def test_grpo_loss_is_clipped_surrogate(agg):
    inp = make_input()
    inp.old_logprobs = inp.stats.logprobs.detach() + torch.linspace(-0.5, 0.5, 9, dtype=torch.float64)
    algo, p = params("grpo", clip_eps=0.2, clip_eps_high=0.28, loss_agg=agg)
    out = algo.loss(inp, p)
    r = torch.exp(inp.stats.logprobs - inp.old_logprobs)
    a = inp.advantages[:, None]
    tok = -torch.minimum(r * a, r.clamp(0.8, 1.28) * a) * inp.mask
    b, t = inp.mask.shape
    if agg == "token_mean":
        want = tok.sum() / inp.mask.sum()
    elif agg == "seq_mean_token_mean":
        want = (tok.sum(-1) / inp.mask.sum(-1)).mean()
    else:  # Dr.GRPO: sum over tokens / (B * L_max), L_max = T without a generation budget
        want = tok.sum() / (b * t)
    torch.testing.assert_close(out.loss, want, **TOL)
    assert 0 < out.metrics["clip_frac"] < 1


@pytest.mark.parametrize(("name", "sign", "selected"), [("psr", 1, True), ("nsr", -1, False)])
def test_psr_nsr_select_samples(name, sign, selected):
    algo, p = params(name)
    correct = torch.tensor([True, False, True, False, True, False])
    adv = algo.advantages(torch.zeros(6), correct, torch.zeros(6, dtype=torch.long), p)
    torch.testing.assert_close(adv, torch.where(correct == selected, float(sign), 0.0))
    inp = make_input(correct=correct, adv=adv.double())
    algo.loss(inp, p).loss.backward()
    grad = inp.stats.logprobs.grad
    sel = (correct == selected)[:, None] & inp.mask.bool()
    assert (grad[~sel] == 0).all()
    # Descent raises (PSR) / lowers (NSR) the log-prob of every selected token; the mean runs over ALL
    # valid tokens (the paper's objective: the others have advantage 0), not over the selected ones.
    r = torch.exp(inp.stats.logprobs.detach() - inp.old_logprobs)
    torch.testing.assert_close(grad[sel], (-sign * r / inp.mask.sum())[sel], **TOL)


def test_w_reinforce_weights():
    algo, p = params("w_reinforce", w=0.25)
    correct = torch.tensor([True, False, True, False, True, False])
    adv = algo.advantages(torch.zeros(6), correct, torch.zeros(6, dtype=torch.long), p)
    torch.testing.assert_close(adv, torch.where(correct, 0.25, -1.0))
    inp = make_input(correct=correct, adv=adv.double())
    algo.loss(inp, p).loss.backward()
    r = torch.exp(inp.stats.logprobs.detach() - inp.old_logprobs)
    want = -adv.double()[:, None] * r * inp.mask / inp.mask.sum()
    torch.testing.assert_close(inp.stats.logprobs.grad, want, **TOL)


def simko_closed_form_surrogate(logp, topk, old, adv, w, rank1, mask, alpha, lam, k):
    """-A r [(1 - a w) log pi(y) + (a w / K) sum_k log pi(top_k)] on A > 0; -lam' A r log pi(y) on A < 0."""
    r = torch.exp(logp.detach() - old)
    a = adv[:, None].expand_as(logp)
    pos = (a > 0).double() * w
    a_neg = torch.where((a < 0) & rank1 & (w > 0), lam * a, a)
    per_tok = torch.where(
        a > 0,
        -a * r * ((1 - alpha * pos) * logp + alpha * pos / k * topk[..., :k].sum(-1)),
        -a_neg * r * logp,
    )
    return (per_tok * mask).sum() / mask.sum()


def test_simko_forward_equals_grpo_and_gradient_matches_closed_form():
    kw = dict(top_k=3, alpha=0.3, lam=1.0, tau=0.5)
    algo, p = params("simko", **kw)
    inp = make_input()
    out = algo.loss(inp, p)
    grpo, gp = params("grpo")
    torch.testing.assert_close(out.loss, grpo.loss(make_input(), gp).loss, **TOL)

    for lam in (1.0, 1.7):
        _, p = params("simko", **{**kw, "lam": lam})
        inp = make_input()
        algo.loss(inp, p).loss.backward()
        st = inp.stats
        w = high_entropy_mask(st.entropy, inp.mask, 0.5)
        logp2 = st.logprobs.detach().clone().requires_grad_()
        topk2 = st.topk_logprobs.detach().clone().requires_grad_()
        ref = simko_closed_form_surrogate(
            logp2, topk2, inp.old_logprobs, inp.advantages, w, st.is_rank1, inp.mask, 0.3, lam, 3
        )
        ref.backward()
        torch.testing.assert_close(st.logprobs.grad, logp2.grad, **TOL)
        torch.testing.assert_close(st.topk_logprobs.grad, topk2.grad, **TOL)
        assert st.topk_logprobs.grad.abs().sum() > 0


def test_simko_lambda_only_on_negative_rank1_high_entropy():
    algo, p = params("simko", alpha=0.0, lam=2.0, tau=0.5)
    inp = make_input()
    algo.loss(inp, p).loss.backward()
    grad_simko = inp.stats.logprobs.grad
    grpo, gp = params("grpo")
    base = make_input()
    grpo.loss(base, gp).loss.backward()
    w = high_entropy_mask(inp.stats.entropy, inp.mask, 0.5)
    expect = (inp.advantages[:, None] < 0) & inp.stats.is_rank1 & (w > 0)
    assert expect.any() and (~expect & inp.mask.bool()).any()
    torch.testing.assert_close(grad_simko[expect], 2.0 * base.stats.logprobs.grad[expect], **TOL)
    torch.testing.assert_close(grad_simko[~expect], base.stats.logprobs.grad[~expect], **TOL)


def test_simko_high_entropy_mask_modes():
    ent = torch.tensor([[0.1, 0.5, 0.9, 2.0, 7.0], [1.0, 1.0, 1.0, 3.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.float64)
    w = high_entropy_mask(ent, mask, 0.5)
    # Row 0 median of [0.1, 0.5, 0.9, 2.0] = 0.7; row 1 median = 1.0 (strict: 1.0 is not above).
    assert w.tolist() == [[0, 0, 1, 1, 0], [0, 0, 0, 1, 0]]
    assert high_entropy_mask(ent, mask, 0.95, "absolute").tolist() == [[0, 0, 0, 1, 0], [1, 1, 1, 1, 0]]


def test_simko_tau_one_warns_and_equals_grpo(monkeypatch):
    monkeypatch.setattr(simko_mod, "_warned_tau1", False)
    algo, p = params("simko", tau=1.0, alpha=0.5, lam=3.0)
    inp = make_input()
    with pytest.warns(UserWarning, match="reduces to GRPO"):
        out = algo.loss(inp, p)
    out.loss.backward()
    assert out.metrics["high_entropy_frac"] == 0.0
    assert inp.stats.topk_logprobs.grad.abs().sum() == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        algo.loss(make_input(), p)  # warned once only
    monkeypatch.setattr(simko_mod, "_warned_tau1", False)


def test_simko_top_k_and_fused_end_to_end():
    algo, p = params("simko", top_k=5, metrics_top_k=3, alpha=0.2, tau=0.3)
    assert algo.top_k(p) == 5 and algos.get("grpo").top_k(params("grpo")[1]) == 3
    # Through the fused head: the gradient w.r.t. hidden/weight equals the closed form's.
    g = torch.Generator().manual_seed(5)
    b, t, h, v = 4, 6, 8, 50
    hidden = torch.randn(b * t, h, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(v, h, generator=g, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, v, (b * t,), generator=g)
    lp, tlp, tid, ent, r1 = (
        x.view(b, t, *x.shape[1:]) for x in fused_token_stats(hidden, weight, targets, 5, 7)
    )
    old = lp.detach() + 0.01
    correct = torch.tensor([True, False, True, False])
    adv = torch.tensor([0.7, -1.2, 0.3, -0.4], dtype=torch.float64)
    mask = torch.ones(b, t, dtype=torch.float64)
    inp = LossInput(TokenStats(lp, tlp, tid, ent, r1), old, adv, correct.double(), correct, mask)
    got = torch.autograd.grad(algo.loss(inp, p).loss, [hidden, weight], retain_graph=True)
    w = high_entropy_mask(ent, mask, 0.3)
    ref = simko_closed_form_surrogate(lp, tlp, old, adv, w, r1, mask, 0.2, p.lam, 5)
    want = torch.autograd.grad(ref, [hidden, weight])
    for a, bb in zip(got, want, strict=True):
        torch.testing.assert_close(a, bb, **TOL)


def test_kl_and_entropy_terms():
    algo, p = params("grpo", kl_coef=0.1)
    with pytest.raises(RlvrUserError, match="kl_coef"):
        algo.loss(make_input(), p)
    inp = make_input(ref=True)
    out = algo.loss(inp, p)
    x = inp.stats.ref_logprobs - inp.stats.logprobs
    kl = ((x.exp() - x - 1) * inp.mask).sum() / inp.mask.sum()
    torch.testing.assert_close(out.metrics["kl"], kl.item())
    torch.testing.assert_close(out.loss - out.metrics["pg_loss"], 0.1 * kl, **TOL)
    ent = torch.rand(6, 9, dtype=torch.float64, requires_grad=True)
    inp = make_input()
    inp.stats.entropy = ent
    _, pe = params("grpo", entropy_coef=0.5)
    algo.loss(inp, pe).loss.backward()
    torch.testing.assert_close(ent.grad, -0.5 * inp.mask / inp.mask.sum(), **TOL)


def test_unknown_algorithm_lists_registered():
    with pytest.raises(RlvrUserError, match="grpo.*simko"):
        algos.get("grpoo")
