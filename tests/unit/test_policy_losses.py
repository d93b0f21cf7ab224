"""Policy losses against their reference formulas in plain torch: dual clip, GSPO, CISPO, is_weight, the
three aggregations with mini-batch-wide normalisers (micro-batch split = full batch), PSR + NSR = REINFORCE."""

from __future__ import annotations

import pytest
import torch

import rlvr.algorithms as algos
from rlvr.algorithms import POLICY_LOSSES, LossInput, TokenStats

pytestmark = pytest.mark.unit
TOL = dict(atol=1e-10, rtol=1e-8)
D = torch.float64


def leaves(b=6, t=9, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    logp = (-torch.rand(b, t, generator=g, dtype=D) * 3).requires_grad_()
    topk = (-torch.rand(b, t, k, generator=g, dtype=D).sort(-1).values * 2).requires_grad_()
    ent = (torch.rand(b, t, generator=g, dtype=D) * 2).requires_grad_()
    rank1 = torch.rand(b, t, generator=g) < 0.5
    mask = torch.ones(b, t, dtype=D)
    for i, n in enumerate([9, 4, 7, 6, 2, 5][:b]):
        mask[i, n:] = 0
    old = logp.detach() + (torch.rand(b, t, generator=g, dtype=D) - 0.5) * 0.05
    correct = torch.tensor([True, False, True, False, True, False])[:b]
    adv = torch.tensor([0.9, -1.3, 0.4, -0.2, 1.1, -0.7], dtype=D)[:b]
    ref = logp.detach() - 0.1 * torch.rand(b, t, generator=g, dtype=D)
    return dict(
        logp=logp, topk=topk, ent=ent, rank1=rank1, mask=mask, old=old, correct=correct, adv=adv, ref=ref
    )


def make(x, rows=slice(None), cols=slice(None), ref=False, **kw):
    stats = TokenStats(
        x["logp"][rows, cols],
        x["topk"][rows, cols],
        torch.zeros_like(x["topk"][rows, cols], dtype=torch.long),
        x["ent"][rows, cols],
        x["rank1"][rows, cols],
        x["ref"][rows, cols] if ref else None,
    )
    c = x["correct"][rows]
    return LossInput(stats, x["old"][rows, cols], x["adv"][rows], c.to(D), c, x["mask"][rows, cols], **kw)


def run_loss(name, inp, **kw):
    pl = POLICY_LOSSES.get(name)
    return pl.fn(inp, pl.Params.model_validate(kw))


def test_dual_clip_caps_negative_advantages():
    x = leaves()
    x["old"] = x["logp"].detach() + torch.linspace(-2.0, 2.0, 9, dtype=D)  # ratios e^2 .. e^-2 (> 3 first)
    inp = make(x)
    out = run_loss("ppo", inp, clip_eps=0.2, clip_eps_high=0.28, clip_ratio_c=3.0)
    out.loss.backward()
    r = torch.exp(x["logp"] - x["old"])
    a = x["adv"][:, None]
    l1 = torch.maximum(-a * r, -a * r.clamp(0.8, 1.28))
    ref_tok = torch.where(a < 0, torch.minimum(l1, -a * 3.0), l1)  # verl's compute_policy_loss, written out
    logp2 = x["logp"].detach().clone().requires_grad_()
    r2 = torch.exp(logp2 - x["old"])
    l1b = torch.maximum(-a * r2, -a * r2.clamp(0.8, 1.28))
    want = (torch.where(a < 0, torch.minimum(l1b, -a * 3.0), l1b) * x["mask"]).sum() / x["mask"].sum()
    want.backward()
    torch.testing.assert_close(out.loss, (ref_tok * x["mask"]).sum() / x["mask"].sum(), **TOL)
    torch.testing.assert_close(x["logp"].grad, logp2.grad, **TOL)
    capped = (a < 0) & (r > 3.0) & x["mask"].bool()
    assert capped.any() and (x["logp"].grad[capped] == 0).all()
    assert out.metrics["dual_clip_frac"] > 0
    # clip_ratio_c = null: plain clipped surrogate, the capped tokens get gradient again.
    x["logp"].grad = None
    run_loss("ppo", make(x), clip_eps=0.2, clip_eps_high=0.28, clip_ratio_c=None).loss.backward()
    assert (x["logp"].grad[capped] != 0).all()


def test_gspo_matches_sequence_level_objective():
    x = leaves()
    x["old"] = x["logp"].detach() + torch.tensor([-0.3, -0.05, 0.0, 0.04, 0.2, 0.5], dtype=D)[:, None]
    out = run_loss("gspo", make(x), clip_eps=0.1, clip_eps_high=0.15)
    out.loss.backward()
    # Reference: the sequence ratio s_i = exp(mean_t(logp - old)) differentiated directly, mean over sequences.
    logp2 = x["logp"].detach().clone().requires_grad_()
    m = x["mask"]
    s = torch.exp(((logp2 - x["old"]) * m).sum(-1) / m.sum(-1))
    a = x["adv"]
    want = (-torch.minimum(s * a, s.clamp(0.9, 1.15) * a)).mean()
    want.backward()
    torch.testing.assert_close(out.loss, want, **TOL)
    torch.testing.assert_close(x["logp"].grad, logp2.grad, **TOL)
    clipped_seq = (s.detach() < 0.9) | (s.detach() > 1.15)
    assert clipped_seq.any() and (~clipped_seq).any()
    assert algos.get("gspo").Params.model_validate({}).loss_agg == "seq_mean_token_mean"


def test_cispo_is_detached_clipped_weight_times_logprob():
    x = leaves()
    x["old"] = x["logp"].detach() - torch.linspace(-0.6, 0.6, 9, dtype=D)
    out = run_loss("cispo", make(x), clip_eps=1.0, clip_eps_high=0.2)
    out.loss.backward()
    logp2 = x["logp"].detach().clone().requires_grad_()
    w = torch.exp(logp2 - x["old"]).clamp(0.0, 1.2).detach()
    want = -(w * x["adv"][:, None] * logp2 * x["mask"]).sum() / x["mask"].sum()
    want.backward()
    torch.testing.assert_close(out.loss, want, **TOL)
    torch.testing.assert_close(x["logp"].grad, logp2.grad, **TOL)
    # No token's gradient is dropped, unlike PPO's clip: every valid token with A != 0 moves.
    assert (x["logp"].grad[x["mask"].bool()] != 0).all()
    assert 0 < out.metrics["clip_frac"] < 1


@pytest.mark.parametrize("name", ["ppo", "simko", "gspo", "cispo"])
def test_is_weight_scales_policy_gradient_only(name):
    kw = dict(kl_coef=0.2, entropy_coef=0.1, clip_eps=0.2, clip_eps_high=0.2)
    x = leaves()
    iw = torch.rand(6, 9, generator=torch.Generator().manual_seed(3), dtype=D) + 0.5
    base = run_loss(name, make(x, ref=True), **kw)
    with_iw = run_loss(name, make(x, ref=True, is_weight=iw), **kw)
    # KL and entropy terms are untouched by the weight.
    torch.testing.assert_close(with_iw.loss - with_iw.metrics["pg_loss"], base.loss - base.metrics["pg_loss"])
    no_reg = run_loss(name, make(x, is_weight=iw), clip_eps=0.2, clip_eps_high=0.2)
    no_reg.loss.backward()
    g_iw = x["logp"].grad.clone()
    x["logp"].grad = None
    run_loss(name, make(x), clip_eps=0.2, clip_eps_high=0.2).loss.backward()
    if name == "gspo":  # the weight multiplies each token's term of the shared sequence ratio
        assert not torch.allclose(g_iw, x["logp"].grad)
    else:
        torch.testing.assert_close(g_iw, iw * x["logp"].grad, **TOL)


@pytest.mark.parametrize("agg", ["token_mean", "seq_mean_token_mean", "seq_sum"])
@pytest.mark.parametrize("name", ["ppo", "simko", "gspo", "cispo"])
def test_micro_batches_with_global_normalisers_sum_to_full_batch(name, agg):
    kw = dict(loss_agg=agg, kl_coef=0.3, entropy_coef=0.05, clip_eps=0.2)
    if name == "simko":
        kw.update(alpha=0.3, tau=0.5)
    x = leaves()
    full = run_loss(name, make(x, ref=True, max_response_len=9), **kw)
    full.loss.backward()
    grads = [t.grad for t in (x["logp"], x["topk"], x["ent"])]  # topk: None except SimKO
    for t in (x["logp"], x["topk"], x["ent"]):
        t.grad = None
    glob = dict(global_tokens=float(x["mask"].sum()), global_seqs=6.0, max_response_len=9)
    # Micro-batch 2 (rows 3..5, <= 6 valid tokens) is padded only to its own length, as the learner does.
    parts = [make(x, slice(0, 3), ref=True, **glob), make(x, slice(3, 6), slice(0, 6), ref=True, **glob)]
    total = sum(run_loss(name, p, **kw).loss for p in parts)
    total.backward()
    torch.testing.assert_close(total, full.loss, **TOL)
    for got, want in zip((x["logp"].grad, x["topk"].grad, x["ent"].grad), grads, strict=True):
        assert (got is None) == (want is None)
        if want is not None:
            torch.testing.assert_close(got, want, **TOL)


def test_aggregations_closed_form():
    x = leaves()
    inp = make(x, global_tokens=100.0, global_seqs=10.0, max_response_len=32)
    val = torch.rand(6, 9, generator=torch.Generator().manual_seed(1), dtype=D)
    m = x["mask"]
    torch.testing.assert_close(algos.aggregate(val, inp, "token_mean"), (val * m).sum() / 100.0)
    torch.testing.assert_close(
        algos.aggregate(val, inp, "seq_mean_token_mean"), ((val * m).sum(-1) / m.sum(-1)).sum() / 10.0
    )
    torch.testing.assert_close(algos.aggregate(val, inp, "seq_sum"), (val * m).sum() / (10.0 * 32))
    with pytest.raises(ValueError, match="loss_agg"):
        algos.aggregate(val, inp, "seq_mean")


def test_psr_plus_nsr_equals_reinforce():
    x = leaves()
    x["old"] = x["logp"].detach()  # on-policy: the surrogate's gradient is REINFORCE's
    zeros = torch.zeros(6, dtype=torch.long)
    sign = torch.where(x["correct"], 1.0, -1.0).to(D)
    losses, grads = [], []
    for name in ("psr", "nsr"):
        algo = algos.get(name)
        p = algo.Params.model_validate({})
        x["adv"] = algo.advantages(torch.zeros(6, dtype=D), x["correct"], zeros, p)
        out = algo.loss(make(x), p)
        out.loss.backward()
        losses.append(out.loss.detach())
        grads.append(x["logp"].grad.clone())
        x["logp"].grad = None
    logp2 = x["logp"].detach().clone().requires_grad_()
    m = x["mask"]
    reinforce = -(sign[:, None] * logp2 * m).sum() / m.sum()  # +/-1 REINFORCE, mean over all valid tokens
    reinforce.backward()
    torch.testing.assert_close(grads[0] + grads[1], logp2.grad, **TOL)
    # Values: at ratio 1 the surrogate -r A sums to -sum(A m) / sum(m) over both halves.
    torch.testing.assert_close(losses[0] + losses[1], -(sign[:, None] * m).sum() / m.sum(), **TOL)
    # And equals W-REINFORCE with w = 1 (the same +/-1 weights through the same loss).
    wr = algos.get("w_reinforce")
    pw = wr.Params.model_validate({"w": 1.0})
    x["adv"] = wr.advantages(torch.zeros(6, dtype=D), x["correct"], zeros, pw)
    wr.loss(make(x), pw).loss.backward()
    torch.testing.assert_close(x["logp"].grad, grads[0] + grads[1], **TOL)
