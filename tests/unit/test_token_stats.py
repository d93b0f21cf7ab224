"""The fused LM-head statistics against a naive full-softmax reference (float64)."""

from __future__ import annotations

import pytest
import torch

from rlvr.policy_stats import fused_token_stats, policy_token_stats

pytestmark = pytest.mark.unit
TOL = dict(atol=1e-5, rtol=1e-5)


def naive_stats(hidden, weight, targets, k, bias=None, temperature=1.0):
    z = (hidden @ weight.t() + (0 if bias is None else bias)) / temperature
    logp_all = torch.log_softmax(z, -1)
    topk_ids = z.topk(k, -1).indices
    logp = logp_all.gather(1, targets[:, None]).squeeze(1)
    topk_lp = logp_all.gather(1, topk_ids)
    ent = -(logp_all.exp() * logp_all).sum(-1)
    return logp, topk_lp, topk_ids, ent, targets == topk_ids[:, 0]


def _inputs(n=37, h=16, v=101, seed=0, bias=False):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, h, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(v, h, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(v, generator=g, dtype=torch.float64, requires_grad=True) if bias else None
    targets = torch.randint(0, v, (n,), generator=g)
    targets[:5] = (hidden[:5].detach() @ weight.detach().t()).argmax(-1)  # some rank-1 hits
    return hidden, weight, b, targets


def _grads(outs, params, coefs):
    loss = sum((c * o).sum() for c, o in zip(coefs, outs, strict=True))
    return torch.autograd.grad(loss, params)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("chunk", [1, 5, 8, 37, 1024])
@pytest.mark.parametrize("bias", [False, True])
def test_fused_matches_naive_values_and_grads(chunk, bias, temperature):
    hidden, weight, b, targets = _inputs(bias=bias)
    k = 4
    fused = fused_token_stats(
        hidden, weight, targets, k, chunk_size=chunk, lm_head_bias=b, temperature=temperature
    )
    naive = naive_stats(hidden, weight, targets, k, b, temperature)
    for name, f, r in zip(["logp", "topk_lp", "topk_ids", "entropy", "rank1"], fused, naive, strict=True):
        assert f.shape == r.shape, name
        if f.is_floating_point():
            torch.testing.assert_close(f, r, **TOL, msg=name)
        else:
            assert torch.equal(f, r), name
    assert fused[4][:5].all()
    # Random upstream grads on logp, top-k log-probs and entropy.
    g = torch.Generator().manual_seed(1)
    coefs = [torch.randn(o.shape, generator=g, dtype=torch.float64) for o in (fused[0], fused[1], fused[3])]
    params = [hidden, weight] + ([b] if bias else [])
    got = _grads([fused[0], fused[1], fused[3]], params, coefs)
    want = _grads([naive[0], naive[1], naive[3]], params, coefs)
    for gg, ww in zip(got, want, strict=True):
        torch.testing.assert_close(gg, ww, **TOL)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_fused_only_logp_grad_and_gradcheck(temperature):
    hidden, weight, b, targets = _inputs(n=6, h=4, v=9, bias=True)
    t = temperature
    # logp, top-k log-probs and entropy (the outputs that carry a gradient), w.r.t. hidden, weight, bias.
    assert torch.autograd.gradcheck(
        lambda h, w, bb: [
            o
            for i, o in enumerate(fused_token_stats(h, w, targets, 2, 4, lm_head_bias=bb, temperature=t))
            if i in (0, 1, 3)
        ],
        (hidden, weight, b),
    )
    lp = fused_token_stats(hidden, weight, targets, 2, chunk_size=4, temperature=t)[0]
    (gh,) = torch.autograd.grad(lp.sum(), [hidden])
    (rh,) = torch.autograd.grad(naive_stats(hidden, weight, targets, 2, temperature=t)[0].sum(), [hidden])
    torch.testing.assert_close(gh, rh, **TOL)


def test_temperature_changes_the_distribution_and_is_checked():
    hidden, weight, _, targets = _inputs()
    cold = fused_token_stats(hidden, weight, targets, 3, temperature=0.5)
    warm = fused_token_stats(hidden, weight, targets, 3, temperature=2.0)
    assert (cold[3] < warm[3]).all()  # a colder softmax has lower entropy on every row
    assert torch.equal(cold[2], warm[2])  # the ranking does not depend on T
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature"):
            fused_token_stats(hidden, weight, targets, 3, temperature=bad)


def test_partitioned_weight_is_named_in_the_error():
    """A ZeRO-3 parameter read outside its module's forward is an empty (0,) placeholder tagged `ds_id`."""
    hidden, _, _, targets = _inputs()
    placeholder = torch.nn.Parameter(torch.empty(0, dtype=torch.float64))
    placeholder.ds_id = 7
    with pytest.raises(ValueError, match="ZeRO-3 partitioned"):
        fused_token_stats(hidden, placeholder, targets, 3)
    with pytest.raises(ValueError, match=r"must be \[V, 16\]"):
        fused_token_stats(hidden, torch.zeros(5, 3, dtype=torch.float64), targets, 3)


def test_fused_saves_no_full_logits():
    """Everything autograd keeps for backward is O(N*H + V*H + N*k), never an [N, V] block."""
    n, h, v = 64, 8, 500
    hidden, weight, _, targets = _inputs(n=n, h=h, v=v)
    sizes: list[int] = []

    def pack(t):
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fused_token_stats(hidden, weight, targets, 3, chunk_size=16)
    assert max(sizes) < n * v and max(sizes) == v * h
    (out[0].sum() + out[1].sum()).backward()
    assert hidden.grad is not None and weight.grad is not None


def _tiny_qwen(seed: int):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(
        hidden_size=64,
        num_attention_heads=1,
        num_key_value_heads=1,
        head_dim=64,
        intermediate_size=128,
        num_hidden_layers=2,
        vocab_size=300,
        max_position_embeddings=64,
    )
    return Qwen2ForCausalLM(cfg).double().eval()


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_policy_token_stats_matches_full_logits(temperature):
    t = temperature
    model, ref = _tiny_qwen(0), _tiny_qwen(1)
    b, length, k = 3, 12, 3
    ids = torch.randint(0, 300, (b, length), generator=torch.Generator().manual_seed(2))
    attn = torch.ones(b, length, dtype=torch.long)
    attn[2, -3:] = 0  # right padding
    loss_mask = torch.zeros(b, length)
    loss_mask[:, 4:] = 1
    loss_mask[2, -3:] = 0
    st = policy_token_stats(model, ids, attn, loss_mask, k=k, chunk_size=7, ref_model=ref, temperature=t)

    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1] / t
    lp_all = torch.log_softmax(logits, -1)
    tgt = ids[:, 1:]
    sel = loss_mask[:, 1:].bool()
    want_lp = lp_all.gather(-1, tgt[..., None]).squeeze(-1) * sel
    want_topk = lp_all.topk(k, -1).values * sel[..., None]
    want_ent = -(lp_all.exp() * lp_all).sum(-1) * sel
    with torch.no_grad():
        ref_all = torch.log_softmax(ref(input_ids=ids, attention_mask=attn).logits[:, :-1] / t, -1)
    want_ref = ref_all.gather(-1, tgt[..., None]).squeeze(-1) * sel

    assert st.logprobs.shape == (b, length - 1) and st.topk_ids.shape == (b, length - 1, k)
    torch.testing.assert_close(st.logprobs, want_lp, **TOL)
    torch.testing.assert_close(st.topk_logprobs, want_topk, **TOL)
    torch.testing.assert_close(st.entropy, want_ent, **TOL)
    torch.testing.assert_close(st.ref_logprobs, want_ref, **TOL)
    assert not st.ref_logprobs.requires_grad
    assert not st.is_rank1[~sel].any()

    # Gradients through the whole model equal the naive path's.
    coef = torch.randn(b, length - 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    params = [p for p in model.parameters() if p.requires_grad]
    got = torch.autograd.grad((st.logprobs * coef).sum() + st.topk_logprobs.sum(), params)
    want = torch.autograd.grad((want_lp * coef).sum() + want_topk.sum(), params)
    for gg, ww in zip(got, want, strict=True):
        torch.testing.assert_close(gg, ww, **TOL)


def test_head_call_runs_through_the_head_module_hooks():
    """ZeRO-3 gathers the head in its module hooks: the fused call must be a call of the head module (once
    per forward), see the tied weight, and leave the module's own forward in place afterwards."""
    model = _tiny_qwen(0)
    model.config.tie_word_embeddings = True
    model.tie_weights()
    head = model.get_output_embeddings()
    assert head.weight is model.get_input_embeddings().weight
    calls: list[str] = []
    pre = head.register_forward_pre_hook(lambda m, args: calls.append("pre"))
    post = head.register_forward_hook(lambda m, args, out: calls.append(f"post:{len(out)}"))
    ids = torch.randint(0, 300, (2, 8), generator=torch.Generator().manual_seed(4))
    st = policy_token_stats(model, ids, torch.ones_like(ids), torch.ones(2, 8), k=2)
    pre.remove()
    post.remove()
    assert calls == ["pre", "post:5"]
    assert "forward" not in head.__dict__
    x = torch.randn(3, 64, dtype=torch.float64)
    torch.testing.assert_close(head(x), x @ head.weight.t())  # the plain Linear again
    # The tied Parameter gets both gradients (embedding lookup and head).
    (g,) = torch.autograd.grad(st.logprobs.sum(), [head.weight])
    want = model(input_ids=ids).logits[:, :-1].log_softmax(-1).gather(-1, ids[:, 1:, None]).sum()
    (gw,) = torch.autograd.grad(want, [head.weight])
    torch.testing.assert_close(g, gw, **TOL)
