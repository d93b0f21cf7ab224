"""`cpu_state`: what the learner publishes and saves. Tied weights appear once; `copy=False` (below ZeRO-3)
hands out the live parameters when no cast is needed, and a cast is a copy either way."""

from __future__ import annotations

import pytest
import torch

from rlvr.learner.publish import cpu_state

pytestmark = pytest.mark.unit


def tied_model(dtype: torch.dtype) -> torch.nn.Module:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    conf = Qwen2Config(vocab_size=64, hidden_size=64, num_attention_heads=1, num_key_value_heads=1,
                       num_hidden_layers=1, intermediate_size=64, tie_word_embeddings=True)  # fmt: skip
    return Qwen2ForCausalLM(conf).to(dtype)


def shares(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def test_no_copy_hands_out_the_live_parameters_once() -> None:
    model = tied_model(torch.bfloat16)
    state = cpu_state(model, torch.bfloat16, copy=False)
    live = dict(model.named_parameters())
    assert "lm_head.weight" not in state  # tied to the embedding: sent and saved once
    assert all(shares(state[k], live[k]) for k in live if k in state)
    assert all(v.dtype == torch.bfloat16 for v in state.values())


def test_copy_and_casts_never_alias_the_parameters() -> None:
    model = tied_model(torch.float32)
    live = dict(model.named_parameters())
    for state in (cpu_state(model, torch.float32), cpu_state(model, torch.bfloat16, copy=False)):
        assert state.keys() == {k for k in live if k != "lm_head.weight"}
        assert not any(shares(state[k], live[k]) for k in state)
        for k, v in state.items():
            assert torch.equal(v, live[k].detach().to(v.dtype))
