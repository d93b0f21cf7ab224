"""LoRA through peft (`rlvr.learner.lora`) on a random tiny Qwen2: trainable set, merge, checkpoints."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from rlvr.config.schema import LoraConfig
from rlvr.errors import RlvrUserError
from rlvr.learner.lora import apply_lora, is_lora, merged_state_dict, save_adapter, save_merged

pytestmark = pytest.mark.unit
peft = pytest.importorskip("peft", reason="peft is not installed (pip install 'rlvr[lora]')")

VOCAB = 128


def tiny_qwen2(seed: int = 0) -> torch.nn.Module:
    """The layout of tests/e2e/test_learner_support.build_random_qwen2, smaller."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    conf = Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=64,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_hidden_layers=2,
        intermediate_size=128,
        max_position_embeddings=64,
        tie_word_embeddings=False,
    )
    return Qwen2ForCausalLM(conf).eval()


def lora_model(**kw: object) -> torch.nn.Module:
    model = apply_lora(tiny_qwen2(), LoraConfig(enabled=True, r=4, alpha=8.0, **kw))
    torch.manual_seed(1)
    with torch.no_grad():  # peft starts B at zero (a no-op adapter): make the merge non-trivial
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.5)
    return model


def logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


IDS = torch.tensor([[1, 5, 9, 33, 70, 2]])


def test_disabled_returns_the_model_unchanged() -> None:
    model = tiny_qwen2()
    assert apply_lora(model, LoraConfig()) is model
    assert not is_lora(model)
    assert set(merged_state_dict(model)) == set(model.state_dict())


def test_only_adapter_parameters_require_grad() -> None:
    model = lora_model()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert any("embed_tokens" in n for n in frozen) and any("lm_head" in n for n in frozen)
    # all-linear adapts every projection of every layer (7 per Qwen2 layer) but not the head
    assert len(trainable) == 2 * 7 * 2


def test_merged_state_equals_peft_merge_and_unload_and_leaves_the_model_alone() -> None:
    model = lora_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out_before = logits(model, IDS)
    merged = merged_state_dict(model)
    reference = copy.deepcopy(model).merge_and_unload().state_dict()
    assert set(merged) == set(reference) == set(tiny_qwen2().state_dict())
    for key, value in reference.items():
        torch.testing.assert_close(merged[key], value.float(), rtol=1e-5, atol=1e-6, msg=key)
    # W + alpha/r * B @ A, written out once for one layer
    q = model.get_base_model().model.layers[0].self_attn.q_proj
    expect = q.base_layer.weight + (8.0 / 4) * q.lora_B["default"].weight @ q.lora_A["default"].weight
    torch.testing.assert_close(merged["model.layers.0.self_attn.q_proj.weight"], expect, rtol=1e-5, atol=1e-6)
    # the training model keeps its adapters, unmerged, with the same outputs
    after = model.state_dict()
    assert set(after) == set(before)
    assert all(torch.equal(after[k], before[k]) for k in before)
    torch.testing.assert_close(logits(model, IDS), out_before)
    assert not any(m.merged for m in model.modules() if hasattr(m, "merged_adapters"))


def test_merged_weights_load_into_a_plain_model_with_the_same_outputs() -> None:
    model = lora_model()
    plain = tiny_qwen2(seed=5)  # different random weights, replaced by the merged ones
    plain.load_state_dict(merged_state_dict(model))
    torch.testing.assert_close(logits(plain, IDS), logits(model, IDS), rtol=1e-4, atol=1e-5)


def test_checkpoint_folders_load(tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = lora_model(dropout=0.1)
    model.eval()
    expected = logits(model, IDS)
    merged_dir = save_merged(model, tmp_path / "merged")
    loaded = AutoModelForCausalLM.from_pretrained(str(merged_dir), dtype=torch.float32).eval()
    assert not is_lora(loaded)
    torch.testing.assert_close(logits(loaded, IDS), expected, rtol=1e-4, atol=1e-5)

    adapter_dir = save_adapter(model, tmp_path / "adapter")
    assert (adapter_dir / "adapter_config.json").exists()
    restored = PeftModel.from_pretrained(tiny_qwen2(), str(adapter_dir)).eval()
    torch.testing.assert_close(logits(restored, IDS), expected, rtol=1e-4, atol=1e-5)


def test_save_adapter_needs_a_lora_model(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="peft model"):
        save_adapter(tiny_qwen2(), tmp_path)


def test_explicit_target_modules() -> None:
    model = lora_model(target_modules=["q_proj", "v_proj"])
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert len(trainable) == 2 * 2 * 2 and all("q_proj" in n or "v_proj" in n for n in trainable)


def test_unknown_target_module_is_a_one_line_error_naming_the_key() -> None:
    with pytest.raises(RlvrUserError, match=r"^learner\.lora\.target_modules: ") as e:
        apply_lora(tiny_qwen2(), LoraConfig(enabled=True, target_modules=["no_such_proj"]))
    assert "\n" not in str(e.value)


def test_the_output_head_cannot_be_adapted() -> None:
    with pytest.raises(RlvrUserError, match=r"learner\.lora\.target_modules: the output head"):
        apply_lora(tiny_qwen2(), LoraConfig(enabled=True, target_modules=["q_proj", "lm_head"]))


def test_config_keys_validate_through_the_loader() -> None:
    from rlvr.config import load_config

    cfg = load_config(
        ["learner.lora.enabled=true", "learner.lora.r=2", "learner.lora.target_modules=[q_proj]"]
    )
    assert (
        cfg.learner.lora.enabled and cfg.learner.lora.r == 2 and cfg.learner.lora.target_modules == ["q_proj"]
    )
    with pytest.raises(RlvrUserError, match=r"learner\.lora\.r"):
        load_config(["learner.lora.r=0"])
