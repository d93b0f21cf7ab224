"""GGUF file -> a plain Hugging Face model folder (dequantised safetensors + tokenizer + chat template).

In: a `.gguf` file (llama.cpp format, any quantisation transformers can dequantise) and an output folder.
Out: that folder with `config.json` (no `quantization_config`), `model.safetensors` in float32 or
bfloat16 (tied embeddings stored once), the tokenizer with its chat template, `generation_config.json`,
and `rlvr_import.json` (source file, size, sha256, dtype). vLLM and transformers load it like any other
folder. Written to a temp folder and renamed, so a crash never leaves half a model. Never downloads.

Why the rebuild: a model loaded with `gguf_file=` carries a GGUF quantisation config, and `save_pretrained`
refuses to save it ("quantized with gguf") although its weights are already dequantised tensors. Building
the same class from the cleaned config and loading the state dict gives an ordinary model.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from rlvr.errors import RlvrUserError
from rlvr.models.atomic import atomic_folder

log = logging.getLogger(__name__)
IMPORT_DTYPES = ("float32", "bfloat16")
MARKER = "rlvr_import.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_inputs(gguf_file: Path, out: Path, dtype: str, overwrite: bool) -> None:
    if not gguf_file.is_file():
        raise RlvrUserError(f"gguf file: '{gguf_file}' does not exist")
    if gguf_file.suffix != ".gguf":
        raise RlvrUserError(f"gguf file: '{gguf_file}' is not a .gguf file")
    if dtype not in IMPORT_DTYPES:
        raise RlvrUserError(f"--dtype: '{dtype}' is not one of {', '.join(IMPORT_DTYPES)}")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise RlvrUserError(f"--out: '{out}' exists and is not empty (pass --force to replace it)")
    try:
        import accelerate  # noqa: F401  # transformers' GGUF loader needs both
        import gguf  # noqa: F401
    except ModuleNotFoundError as e:
        raise RlvrUserError(f"gguf import needs '{e.name}': pip install 'rlvr[gguf]'") from e


def dequantised_model(gguf_file: Path, dtype: str) -> tuple[Any, Any]:
    """(model without quantisation config, tokenizer) read from the GGUF file."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_file.parent), gguf_file.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = dtype
    model = type(loaded)(config)  # the same architecture class, built from the cleaned config
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    # A tied lm_head is the embedding itself, so it may be absent from the state dict; nothing else may.
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if set(missing) - tied or unexpected:
        raise RuntimeError(f"GGUF state dict does not match {type(model).__name__}: {missing} {unexpected}")
    model.generation_config = loaded.generation_config
    del loaded
    if isinstance(getattr(config, "max_position_embeddings", None), int):
        tok.model_max_length = config.max_position_embeddings  # GGUF leaves it "unlimited"
    for k in ("is_local", "local_files_only", "name_or_path"):  # where it was read, not what it is
        tok.init_kwargs.pop(k, None)
    return model.to(getattr(torch, dtype)).eval(), tok


def import_gguf(gguf_file: Path, out: Path, dtype: str = "float32", overwrite: bool = False) -> Path:
    """Write the HF folder for `gguf_file` to `out` and return `out`."""
    gguf_file, out = Path(gguf_file).expanduser().resolve(), Path(out).expanduser()
    _check_inputs(gguf_file, out, dtype, overwrite)
    model, tok = dequantised_model(gguf_file, dtype)
    if tok.chat_template is None:
        log.warning("%s has no chat template: data.chat_template=true will not work with it", gguf_file.name)
    with atomic_folder(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        meta = {
            "source": str(gguf_file),
            "source_bytes": gguf_file.stat().st_size,
            "source_sha256": _sha256(gguf_file),
            "dtype": dtype,
            "architecture": type(model).__name__,
        }
        (tmp / MARKER).write_text(json.dumps(meta, indent=2))
    log.info("imported %s -> %s (%s)", gguf_file.name, out, dtype)
    return out
