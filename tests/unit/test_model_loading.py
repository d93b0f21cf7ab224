"""Model loading: offline hub names, training/reference models, context length, the hf preset, eval's checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rlvr
from rlvr.config.schema import ModelConfig, TinyModelConfig
from rlvr.errors import RlvrUserError
from rlvr.models import loading

pytestmark = pytest.mark.unit


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> str:
    from rlvr.models.tiny import build_tiny_model

    monkeypatch.setenv("RLVR_CACHE", str(tmp_path / "cache"))
    return str(build_tiny_model(TinyModelConfig(sft_steps=0)))


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache; `cached()` puts a fake snapshot of a repo in it."""
    from huggingface_hub import constants

    root = tmp_path / "hf-hub"
    root.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))
    return root


def _cache_snapshot(root: Path, repo: str) -> Path:
    base = root / f"models--{repo.replace('/', '--')}"
    snap = base / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text("a" * 40)
    (snap / "config.json").write_text('{"model_type": "qwen2", "max_position_embeddings": 4096}')
    return snap


def test_offline_hub_name_is_one_line_error_before_anything_starts(hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RlvrUserError) as e:
        loading.resolve_model_path(ModelConfig(path="Qwen/Qwen2.5-0.5B-Instruct"))
    assert str(e.value) == (
        "model.path: 'Qwen/Qwen2.5-0.5B-Instruct' not found locally (no folder, not in the Hugging Face cache, "
        "hub unreachable)"
    )


def test_unreachable_hub_is_detected_without_offline_flag(hub_cache, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # discard port: connection refused
    assert loading.hub_reachable() is False
    with pytest.raises(RlvrUserError, match="not found locally"):
        loading.resolve_model_path(ModelConfig(path="nobody/no-such-model-rlvr"))


def test_offline_hub_name_in_cache_resolves_to_its_snapshot(hub_cache, monkeypatch):
    snap = _cache_snapshot(hub_cache, "org/cached-model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert Path(loading.resolve_model_path(ModelConfig(path="org/cached-model"))) == snap.resolve()
    assert loading.model_max_len(str(snap)) == 4096


def test_reachable_hub_keeps_the_name(hub_cache, monkeypatch):
    monkeypatch.setattr(loading, "hub_reachable", lambda: True)
    assert loading.resolve_model_path(ModelConfig(path="Qwen/Qwen2.5-0.5B")) == "Qwen/Qwen2.5-0.5B"


def test_model_max_len(tiny, tmp_path):
    assert loading.model_max_len(tiny) == TinyModelConfig().max_position_embeddings
    (tmp_path / "gpt2").mkdir()
    (tmp_path / "gpt2" / "config.json").write_text('{"n_positions": 1024}')
    assert loading.model_max_len(str(tmp_path / "gpt2")) == 1024
    (tmp_path / "nolen").mkdir()
    (tmp_path / "nolen" / "config.json").write_text("{}")
    assert loading.model_max_len(str(tmp_path / "nolen")) is None
    assert loading.model_max_len(str(tmp_path / "missing")) is None


def test_load_train_model_float32_with_gradient_checkpointing(tiny):
    import torch

    cfg = ModelConfig(path=tiny, dtype="bfloat16")  # the master weights ignore model.dtype
    plain = loading.load_train_model(tiny, cfg)
    assert plain.training and plain.dtype == torch.float32 and not plain.is_gradient_checkpointing
    ckpt = loading.load_train_model(tiny, cfg, gradient_checkpointing=True)
    assert ckpt.is_gradient_checkpointing and ckpt.config.use_cache is False
    assert all(p.requires_grad for p in ckpt.parameters())
    # Recomputed activations give the same gradients as stored ones.
    ids = torch.tensor([[1, 20, 13, 21, 31]])
    grads = []
    for m in (plain, ckpt):
        m.zero_grad()
        m(input_ids=ids, labels=ids).loss.backward()
        grads.append(m.model.embed_tokens.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_load_reference_model_is_frozen_in_model_dtype(tiny):
    import torch

    ref = loading.load_reference_model(tiny, ModelConfig(path=tiny, dtype="bfloat16"))
    assert not ref.training and ref.dtype == torch.bfloat16
    assert not any(p.requires_grad for p in ref.parameters())


def test_trust_remote_code_is_forwarded(tiny, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

    seen: list[bool] = []
    # The tiny model's tokenizer is saved as the generic class, which load_tokenizer reads directly.
    for cls in (AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast):
        orig = cls.from_pretrained.__func__

        def spy(klass, *a, _orig=orig, **kw):
            seen.append(kw.get("trust_remote_code"))
            return _orig(klass, *a, **kw)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    cfg = ModelConfig(path=tiny, trust_remote_code=True)
    loading.load_model_and_tokenizer(tiny, model_cfg=cfg)
    loading.load_train_model(tiny, cfg)
    loading.load_reference_model(tiny, cfg)
    assert seen == [True, True, True, True]


def test_hf_preset_has_real_model_defaults():
    cfg = rlvr.load_config(["model=hf"])
    assert (
        cfg.model.path == "Qwen/Qwen2.5-0.5B-Instruct" and cfg.model.dtype == "auto"
    )  # bf16 where native (prepare)
    assert cfg.learner.lr == 1e-6 and cfg.learner.gradient_checkpointing
    assert cfg.generator.max_tokens == 512 and cfg.generator.max_model_len == 1024
    assert cfg.trainer.prompts_per_step == 4
    assert cfg.learner.mini_batch_size == cfg.trainer.prompts_per_step * cfg.generator.n_samples
    assert cfg.learner.micro_batch_size <= cfg.learner.mini_batch_size
    # A folder override keeps the preset's other defaults; the default preset is untouched.
    assert rlvr.load_config(["model=hf", "model.path=/some/folder"]).learner.lr == 1e-6
    assert rlvr.load_config([]).learner.lr != 1e-6


def test_eval_picks_the_newest_checkpoint(tmp_path):
    from rlvr.pipeline.evaluate import hf_folder

    run = tmp_path / "run"
    for step in (5, 40, 100):  # 100 sorts before 40 and 5 as text
        hf = run / "learner" / f"checkpoint_{step:03d}" / "hf"
        hf.mkdir(parents=True)
        (hf / "config.json").write_text("{}")
        (hf.parent / "meta.json").write_text(json.dumps({"step": step}))
    (run / "learner" / "checkpoint_100" / "meta.json").unlink()  # the name alone still gives the step
    assert hf_folder(str(run)) == str(run / "learner" / "checkpoint_100" / "hf")
    assert hf_folder(str(run / "learner" / "checkpoint_005")) == str(
        run / "learner" / "checkpoint_005" / "hf"
    )
    assert hf_folder(str(run / "learner" / "checkpoint_040" / "hf")) == str(
        run / "learner" / "checkpoint_040" / "hf"
    )
    (tmp_path / "empty").mkdir()
    with pytest.raises(RlvrUserError, match="model.path: no HF model"):
        hf_folder(str(tmp_path / "empty"))
