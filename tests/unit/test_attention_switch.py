"""`learner.attn_implementation`: which attention kernel the learner's passes use, per micro-batch."""

from __future__ import annotations

import pytest
import torch

from rlvr.errors import RlvrUserError
from rlvr.learner.attention import EAGER_MAX_SCORE_BYTES, AttentionSwitch, choose
from rlvr.policy_stats import policy_token_stats

pytestmark = pytest.mark.unit


def small_model(dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    conf = Qwen2Config(vocab_size=64, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                       num_hidden_layers=2, intermediate_size=128, attn_implementation="sdpa")  # fmt: skip
    return Qwen2ForCausalLM(conf).to(dtype).train()


def test_auto_picks_eager_only_for_small_scores_of_16_bit_models_on_cpu() -> None:
    # vs_trl.py's tiny task: 128 rows x 22 tokens x 4 heads, 1 MB of scores a layer
    assert choose("auto", 128, 22, 4, on_gpu=False, half=True) == "eager"
    assert choose("auto", 128, 22, 4, on_gpu=False, half=False) == "sdpa"  # float32: no gain measured
    # SmolLM2 at 4 x 384 tokens x 9 heads: 21 MB a layer
    assert choose("auto", 4, 384, 9, on_gpu=False, half=True) == "sdpa"
    edge = int((EAGER_MAX_SCORE_BYTES / (4 * 4)) ** 0.5)  # one row, 4 heads: the longest eager length
    assert choose("auto", 1, edge, 4, on_gpu=False, half=True) == "eager"
    assert choose("auto", 1, edge + 1, 4, on_gpu=False, half=True) == "sdpa"
    assert choose("auto", 128, 22, 4, on_gpu=True, half=True) == "sdpa"
    assert choose("auto", 128, 22, 0, on_gpu=False, half=True) == "sdpa"  # heads unknown: the default
    assert choose("sdpa", 1, 2, 4, on_gpu=False, half=True) == "sdpa"
    assert choose("eager", 64, 4096, 32, on_gpu=True, half=False) == "eager"


def test_the_switch_follows_the_micro_batches() -> None:
    model = small_model(torch.bfloat16)
    switch = AttentionSwitch(model, "auto", on_gpu=False)
    assert switch.before(8, 12) == "eager" and model.config._attn_implementation == "eager"
    assert switch.before(4096, 512) == "sdpa" and model.config._attn_implementation == "sdpa"
    assert switch.before(8, 12) == "eager"
    fp32 = small_model()
    assert AttentionSwitch(fp32, "auto", on_gpu=False).before(8, 12) == "sdpa"


def test_both_kernels_give_the_same_statistics_and_gradients() -> None:
    model = small_model()
    ids = torch.randint(1, 64, (8, 12))
    mask = torch.ones_like(ids)
    mask[:4, 9:] = 0  # right padding, as collate makes it

    def grads(kernel: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
        AttentionSwitch(model, kernel, on_gpu=False)
        model.zero_grad()
        st = policy_token_stats(model, ids, mask, mask, 3)
        (st.logprobs.sum() + st.entropy.sum()).backward()
        return st.logprobs.detach(), [p.grad.clone() for p in model.parameters()]

    lp_eager, g_eager = grads("eager")
    lp_sdpa, g_sdpa = grads("sdpa")
    torch.testing.assert_close(lp_eager, lp_sdpa, rtol=1e-5, atol=1e-5)
    for a, b in zip(g_eager, g_sdpa, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_an_explicit_kernel_is_set_once_and_kept() -> None:
    model = small_model()
    switch = AttentionSwitch(model, "eager", on_gpu=False)
    assert model.config._attn_implementation == "eager"
    assert switch.before(4096, 512) == "eager"  # not auto: shapes do not change it


def test_a_kernel_the_model_cannot_take_names_the_key() -> None:
    class NoEager(torch.nn.Module):
        config = type("C", (), {"num_attention_heads": 2, "_attn_implementation": "sdpa"})()

        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1, dtype=torch.bfloat16))  # 16-bit: auto tries eager

        def set_attn_implementation(self, kernel: str) -> None:
            raise ValueError(f"{kernel} is not supported")

    with pytest.raises(RlvrUserError, match="learner.attn_implementation"):
        AttentionSwitch(NoEager(), "eager", on_gpu=False)
    auto = AttentionSwitch(NoEager(), "auto", on_gpu=False)
    assert auto.before(8, 8) == "sdpa" and not auto.enabled  # auto keeps the model's own kernel
