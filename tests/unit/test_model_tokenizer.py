"""load_tokenizer keeps the saved tokenizer when transformers 5 would substitute Qwen2's; check_roundtrip."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlvr.config.schema import ModelConfig, TinyModelConfig
from rlvr.errors import RlvrUserError
from rlvr.models.tokenizer import check_roundtrip, load_tokenizer

pytestmark = pytest.mark.unit
DECOMPOSED = "cafe\u0301 costs 3 + 4 = \\boxed{7}"  # "é" as e + combining accent: NFC would merge it


def _qwen2_folder(d: Path, tok) -> Path:
    from transformers import Qwen2Config

    Qwen2Config(vocab_size=512, hidden_size=64, num_hidden_layers=1, num_attention_heads=1).save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture
def byte_folder(tmp_path) -> Path:
    """The tiny model's byte-level tokenizer saved next to a qwen2 config: the case transformers 5 breaks."""
    from rlvr.models.tiny import build_tokenizer

    return _qwen2_folder(tmp_path / "byte", build_tokenizer(256))


@pytest.fixture
def char_folder(tmp_path) -> Path:
    """A character vocabulary (space is a token, no byte-level mapping) next to a qwen2 config."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    chars = ["<pad>", "<s>", "</s>", *" abcdefghijklmnopqrstuvwxyz0123456789+=."]
    tk = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(chars)}, merges=[]))
    tk.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    return _qwen2_folder(tmp_path / "char", tok)


def test_autotokenizer_substitutes_and_load_tokenizer_does_not(byte_folder):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    auto = AutoTokenizer.from_pretrained(byte_folder)
    assert type(auto).__name__ == "Qwen2Tokenizer"  # the substitution this module exists for
    with pytest.raises(RlvrUserError, match=r"^model.tokenizer: the tokenizer \(Qwen2Tokenizer\)") as e:
        check_roundtrip(auto, ["1+2=", DECOMPOSED])
    assert "\n" not in str(e.value)

    tok = load_tokenizer(ModelConfig(path=str(byte_folder)), str(byte_folder))
    assert type(tok).__name__ == "TokenizersBackend"
    saved = Tokenizer.from_file(str(byte_folder / "tokenizer.json"))
    assert str(tok.backend_tokenizer.pre_tokenizer) == str(saved.pre_tokenizer)
    assert tok.backend_tokenizer.normalizer is None
    # The saved tokenizer_config still applies: specials, padding side, the <s> post-processor.
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.padding_side) == ("<s>", "</s>", "<pad>", "left")
    assert tok(DECOMPOSED)["input_ids"][0] == 1
    check_roundtrip(tok, ["1+2=", DECOMPOSED, "  two  spaces\n\ttab é 中文"])


def test_a_generic_saved_tokenizer_skips_autotokenizer(byte_folder, monkeypatch):
    """The saved file decides anyway; AutoTokenizer's model tables cost ~3 s of every start-up."""
    from transformers import AutoTokenizer

    def refuse(*a, **kw):
        raise AssertionError("AutoTokenizer called for a generic saved tokenizer")

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", refuse)
    tok = load_tokenizer(ModelConfig(path=str(byte_folder)), str(byte_folder))
    assert type(tok).__name__ == "TokenizersBackend"
    check_roundtrip(tok, ["1+2=", DECOMPOSED])


def test_character_vocab_keeps_its_spaces(char_folder):
    from transformers import AutoTokenizer

    text = "one plus two = 3"
    auto = AutoTokenizer.from_pretrained(char_folder)
    with pytest.raises(RlvrUserError, match="model.tokenizer"):
        check_roundtrip(auto, [text])
    tok = load_tokenizer(ModelConfig(path=str(char_folder)), str(char_folder))
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    check_roundtrip(tok, [text])


def test_model_tokenizer_overrides_the_model_folder(byte_folder, char_folder):
    tok = load_tokenizer(ModelConfig(path=str(byte_folder), tokenizer=str(char_folder)), str(byte_folder))
    assert len(tok) == 43  # the character vocabulary, not the byte one (3 specials + 256 bytes)
    with pytest.raises(RlvrUserError, match=r"^model.tokenizer: cannot load '/no/such/tok'"):
        load_tokenizer(ModelConfig(path=str(byte_folder), tokenizer="/no/such/tok"), str(byte_folder))


def test_check_roundtrip_samples_at_most_max_texts(byte_folder):
    from transformers import AutoTokenizer

    auto = AutoTokenizer.from_pretrained(byte_folder)
    check_roundtrip(auto, ["1+2=", DECOMPOSED], max_texts=1)  # the failing text is past the sample
    with pytest.raises(RlvrUserError, match=r"^data\.source: "):
        check_roundtrip(auto, [DECOMPOSED], key="data.source")


def test_load_model_and_tokenizer_uses_the_saved_tokenizer(tmp_path, monkeypatch):
    from rlvr.models.loading import load_model_and_tokenizer
    from rlvr.models.tiny import build_tiny_model

    monkeypatch.setenv("RLVR_CACHE", str(tmp_path))
    path = str(build_tiny_model(TinyModelConfig(sft_steps=0)))
    model, tok = load_model_and_tokenizer(path, "float32")
    assert type(tok).__name__ == "TokenizersBackend" and not model.training
    check_roundtrip(tok, [DECOMPOSED])


def test_disagreement_finds_an_engine_tokenizer_that_differs(char_folder, byte_folder):
    from transformers import AutoTokenizer

    from rlvr.models.tokenizer import disagreement

    saved = load_tokenizer(ModelConfig(path=str(char_folder)), str(char_folder))
    auto = AutoTokenizer.from_pretrained(char_folder)  # what an engine's AutoTokenizer gets: Qwen2's
    texts = ["one plus two = 3"]
    assert disagreement(saved, saved, texts) is None
    msg = disagreement(saved, auto, texts)
    assert msg is not None and msg.startswith("'one plus two = 3' ") and "\n" not in msg
    byte = load_tokenizer(ModelConfig(path=str(byte_folder)), str(byte_folder))
    assert disagreement(byte, byte) is None  # the default probes: spaces, tabs, non-ASCII


def test_the_hf_backend_tokenizes_with_model_tokenizer(tmp_path, monkeypatch, char_folder):
    """model.tokenizer reaches the replica through the engine arguments (prepare.derive), so the HF
    backend (and vLLM, which also gets it as `tokenizer`) encodes as the driver does."""
    import shutil

    from rlvr.config import load_config
    from rlvr.generator.hf_backend import HfBackend
    from rlvr.models.tiny import build_tiny_model
    from rlvr.pipeline.prepare import derive

    monkeypatch.setenv("RLVR_CACHE", str(tmp_path))
    model = tmp_path / "model"
    shutil.copytree(build_tiny_model(TinyModelConfig(sft_steps=0)), model)
    for f in model.glob("tokenizer*"):
        f.unlink()  # the folder has no tokenizer: only model.tokenizer can supply one
    cfg = load_config([f"model.path={model}", f"model.tokenizer={char_folder}", "generator.backend=hf"])
    derive(cfg, str(model))
    assert cfg.generator.engine_kwargs["tokenizer"] == str(char_folder)
    backend = HfBackend(str(model), cfg.generator)
    assert len(backend.tok) == 43  # the character vocabulary of model.tokenizer
