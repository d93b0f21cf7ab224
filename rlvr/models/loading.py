"""Model references -> local paths -> Hugging Face objects.

In: `ModelConfig.path` ("tiny", a local folder, or a hub name). Out: a path string every component
(generator, learner) can load, and for HF users the (model, tokenizer) pair. Never downloads on its
own: a hub name is returned as-is and only loads where the hub (or its cache) is reachable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rlvr.config.schema import ModelConfig
from rlvr.errors import RlvrUserError

DTYPES = ("float32", "bfloat16", "float16")


def resolve_model_path(model_cfg: ModelConfig) -> str:
    """'tiny' -> the built (cached) tiny model; a folder -> itself; anything else -> a hub name."""
    ref = model_cfg.path
    if ref == "tiny":
        from rlvr.models.tiny import build_tiny_model

        return str(build_tiny_model(model_cfg.tiny))
    p = Path(ref).expanduser()
    if p.is_dir():
        if not (p / "config.json").exists():
            raise RlvrUserError(f"model.path: folder '{ref}' has no config.json (not a Hugging Face model)")
        return str(p.resolve())
    if ref.startswith((".", "/", "~")) or ref.count("/") > 1:
        raise RlvrUserError(f"model.path: '{ref}' is not an existing folder")
    return ref


def _torch_dtype(dtype: str) -> Any:
    import torch

    if dtype not in DTYPES:
        raise RlvrUserError(f"model.dtype: '{dtype}' is not one of {', '.join(DTYPES)}")
    return getattr(torch, dtype)


def load_model_and_tokenizer(
    path: str, dtype: str = "float32", trust_remote_code: bool = False
) -> tuple[Any, Any]:
    """A transformers causal LM (eval mode) and its tokenizer; one-line error when it cannot load."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = _torch_dtype(dtype)
    # HF_HUB_OFFLINE read now (not at import): fail at once instead of retrying a dead network
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false")
    try:
        tok = AutoTokenizer.from_pretrained(
            path, trust_remote_code=trust_remote_code, local_files_only=offline
        )
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch_dtype, trust_remote_code=trust_remote_code, local_files_only=offline
        )
    except OSError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RlvrUserError(
            f"model.path: cannot load '{path}' (no local folder, and the hub is unreachable or has no such "
            f"model: {first})"
        ) from e
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model.eval(), tok
