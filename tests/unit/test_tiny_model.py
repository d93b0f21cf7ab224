"""The procedural arith task, the offline tokenizer/model builder and model-path resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlvr.config.schema import ModelConfig, TinyModelConfig
from rlvr.data.arith import generate, sft_target
from rlvr.errors import RlvrUserError

pytestmark = pytest.mark.unit
SMALL = TinyModelConfig(sft_steps=5, sft_batch_size=4)


def test_arith_is_deterministic_and_correct():
    a, b = generate(50, seed=3), generate(50, seed=3)
    assert [p.text for p in a] == [p.text for p in b] and [p.prompt_id for p in a] == [p.prompt_id for p in b]
    assert [p.text for p in generate(50, seed=4)] != [p.text for p in a]
    for p in a:
        assert p.text.endswith("=") and p.data_source == "math"
        assert int(p.ground_truth) == eval(p.text[:-1])  # noqa: S307
    assert sft_target(a[0]) == f"\\boxed{{{a[0].ground_truth}}}"


def test_tokenizer_round_trips_any_text():
    from rlvr.models.tiny import build_tokenizer

    tok = build_tokenizer(256)
    text = "12+7*3=\\boxed{33} <answer>Zoey is a knight</answer> é"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id == 1 and tok.eos_token_id == 2 and tok.pad_token_id == 0
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok.padding_side == "left"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("RLVR_CACHE", str(tmp_path))
    return tmp_path


def test_build_loads_in_transformers_and_is_cached(cache):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlvr.models.tiny import build_tiny_model

    path = build_tiny_model(SMALL)
    assert path.parent == cache / "tiny" and path.name.startswith("arith-")
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".") and p.is_dir()], (
        "temp dir left behind"
    )
    model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    assert model.config.model_type == "qwen2"
    assert model.config.hidden_size // model.config.num_attention_heads == 64
    with torch.no_grad():
        logits = model(**tok(["1+2="], return_tensors="pt")).logits
    assert logits.shape[-1] == model.config.vocab_size >= len(tok)
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert build_tiny_model(SMALL) == path and (path / "model.safetensors").stat().st_mtime_ns == stamp
    assert build_tiny_model(SMALL, force=True) == path
    assert (path / "model.safetensors").stat().st_mtime_ns != stamp
    assert build_tiny_model(TinyModelConfig(sft_steps=6, sft_batch_size=4)) != path  # config is in the key


def test_bad_tiny_configs_are_user_errors(cache):
    from rlvr.models.tiny import build_tiny_model

    with pytest.raises(RlvrUserError, match="model.tiny.task"):
        build_tiny_model(TinyModelConfig(task="chess", sft_steps=1))
    with pytest.raises(RlvrUserError, match="head size"):
        build_tiny_model(TinyModelConfig(hidden_size=128, num_heads=8, sft_steps=1))


def test_resolve_model_path(cache, tmp_path, monkeypatch):
    from rlvr.models import loading
    from rlvr.models.loading import load_model_and_tokenizer, resolve_model_path

    tiny = resolve_model_path(ModelConfig(path="tiny", tiny=SMALL))
    assert Path(tiny).is_dir()
    assert resolve_model_path(ModelConfig(path=tiny)) == str(Path(tiny).resolve())
    monkeypatch.setattr(loading, "hub_reachable", lambda: True)  # offline: tests/unit/test_model_loading.py
    assert resolve_model_path(ModelConfig(path="Qwen/Qwen2.5-0.5B")) == "Qwen/Qwen2.5-0.5B"
    with pytest.raises(RlvrUserError, match="model.path"):
        resolve_model_path(ModelConfig(path=str(tmp_path / "missing")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(RlvrUserError, match="no config.json"):
        resolve_model_path(ModelConfig(path=str(tmp_path / "empty")))
    model, tok = load_model_and_tokenizer(tiny, "float32")
    assert not model.training and tok.pad_token == "<pad>"


def test_hub_name_offline_is_one_line_error(monkeypatch):
    from rlvr.models.loading import load_model_and_tokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RlvrUserError, match="cannot load 'nobody/no-such-model-rlvr'") as e:
        load_model_and_tokenizer("nobody/no-such-model-rlvr")
    assert "\n" not in str(e.value)
