"""GGUF import on the real SmolLM2-135M-Instruct file: a plain HF folder that transformers loads unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlvr.config.schema import ModelConfig
from rlvr.errors import RlvrUserError
from rlvr.models.gguf import import_gguf

pytestmark = [pytest.mark.unit]
TEXTS = ["Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72", "  two  spaces\n\ttab é 中文 \\boxed{7}"]


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(RlvrUserError, match="^gguf file: .* does not exist$"):
        import_gguf(tmp_path / "none.gguf", tmp_path / "out")
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(RlvrUserError, match="is not a .gguf file"):
        import_gguf(tmp_path / "model.bin", tmp_path / "out")
    (tmp_path / "m.gguf").write_bytes(b"x")
    with pytest.raises(RlvrUserError, match="^--dtype: 'float16'"):
        import_gguf(tmp_path / "m.gguf", tmp_path / "out", dtype="float16")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(RlvrUserError, match="^--out: .* --force"):
        import_gguf(tmp_path / "m.gguf", tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


@pytest.fixture(scope="module")
def smollm2() -> Path:
    from real_model import smollm2_dir

    return smollm2_dir()


@pytest.mark.slow
def test_imported_folder_is_a_plain_hf_model(smollm2):
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    from rlvr.models.loading import load_model_and_tokenizer, model_max_len
    from rlvr.models.tokenizer import check_roundtrip

    config = json.loads((smollm2 / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    assert config["tie_word_embeddings"] and config["dtype"] == "float32"
    with safe_open(str(smollm2 / "model.safetensors"), "pt") as f:
        names = list(f.keys())
        assert f.get_tensor("model.embed_tokens.weight").dtype == torch.float32
    assert "lm_head.weight" not in names and "model.embed_tokens.weight" in names  # tied: stored once
    meta = json.loads((smollm2 / "rlvr_import.json").read_text())
    assert meta["source"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf") and len(meta["source_sha256"]) == 64
    assert model_max_len(str(smollm2)) == 8192

    model, tok = load_model_and_tokenizer(str(smollm2), model_cfg=ModelConfig(path=str(smollm2)))
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert (tok.eos_token, tok.pad_token) == ("<|im_end|>", "<|im_end|>") and tok.model_max_length == 8192
    check_roundtrip(tok, TEXTS)
    chat = tok.apply_chat_template(
        [{"role": "user", "content": "1+1?"}], tokenize=False, add_generation_prompt=True
    )
    assert chat.endswith("<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n")
    check_roundtrip(tok, [chat])  # the template's special tokens survive encode/decode

    # The saved weights are the GGUF's dequantised weights: same logits as transformers' own GGUF loader.
    gguf = Path(meta["source"])
    ref = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    ids = tok(chat, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, ref(ids).logits, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_cli_import_bfloat16(smollm2, tmp_path):
    import torch
    from safetensors import safe_open

    from rlvr.cli import main

    gguf = json.loads((smollm2 / "rlvr_import.json").read_text())["source"]
    main(["model", "import", gguf, "--out", str(tmp_path / "bf16"), "--dtype", "bfloat16"])
    out = tmp_path / "bf16"
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert f.get_tensor("model.embed_tokens.weight").dtype == torch.bfloat16
    assert (out / "model.safetensors").stat().st_size < 0.6 * (smollm2 / "model.safetensors").stat().st_size
    assert (out / "chat_template.jinja").read_text() == (smollm2 / "chat_template.jinja").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp folder left behind"
    with pytest.raises(SystemExit) as e:  # a second import into the same folder needs --force
        main(["model", "import", gguf, "--out", str(out)])
    assert e.value.code == 2
