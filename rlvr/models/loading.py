"""Model references -> local paths -> Hugging Face objects.

In: `ModelConfig.path` ("tiny", a local folder, or a hub name). Out: a path string every component
(generator, learner) can load; for HF users the (model, tokenizer) pair, the learner's float32 policy and
its frozen reference model, and the context length a model was built for. Never downloads on its own:
a hub name is returned as-is where the hub is reachable, as its cached snapshot folder where it is not,
and is a one-line error, before anything starts, when it is neither.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlvr.config.schema import ModelConfig
from rlvr.errors import RlvrUserError
from rlvr.models.tokenizer import hub_offline, load_tokenizer, saved_file

DTYPES = ("float32", "bfloat16", "float16")
HUB_PROBE_TIMEOUT_S = 3.0


def hub_reachable() -> bool:
    """One short request to the hub's endpoint (proxies honoured); False when offline is requested."""
    if hub_offline():
        return False
    try:
        from huggingface_hub import constants, get_session

        get_session().head(constants.ENDPOINT, timeout=HUB_PROBE_TIMEOUT_S)
    except Exception:  # DNS, connect, TLS or proxy failure: all mean "cannot load from the hub now"
        return False
    return True


def cached_snapshot(name: str) -> str | None:
    """The local snapshot folder of hub model `name` when its config is in the HF cache, else None."""
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(name, local_files_only=True)
    except Exception:  # not cached (LocalEntryNotFoundError), or not a valid repo id
        return None
    return folder if (Path(folder) / "config.json").exists() else None


def resolve_model_path(model_cfg: ModelConfig) -> str:
    """'tiny' -> the built (cached) tiny model; a folder -> itself; a hub name -> itself or its cache."""
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
    if hub_reachable():
        return ref
    # Offline: every component loads the cached snapshot by path, so none of them retries the network.
    snapshot = cached_snapshot(ref)
    if snapshot is None:
        raise RlvrUserError(
            f"model.path: '{ref}' not found locally (no folder, not in the Hugging Face cache, hub unreachable)"
        )
    return snapshot


def saved_config(path: str) -> dict[str, Any] | None:
    """A local folder's config.json (or a hub name's cached one) as a dict, else None; never a download."""
    cfg_file = Path(path).expanduser() / "config.json"
    if not cfg_file.exists():
        cached = saved_file(path, "config.json")
        if cached is None:
            return None
        cfg_file = cached
    return dict(json.loads(cfg_file.read_text()))


def kv_bytes_per_token(path: str, dtype: str) -> int | None:
    """KV-cache bytes one token takes (K and V, every layer) for the saved config, else None."""
    cfg = saved_config(path)
    if cfg is None:
        return None
    c = cfg.get("text_config") or cfg
    try:
        layers, heads = int(c["num_hidden_layers"]), int(c["num_attention_heads"])
        kv_heads = int(c.get("num_key_value_heads") or heads)
        head_dim = int(c.get("head_dim") or int(c["hidden_size"]) // heads)
    except (KeyError, TypeError, ValueError):
        return None
    return 2 * layers * kv_heads * head_dim * (4 if dtype == "float32" else 2)


def model_max_len(path: str) -> int | None:
    """`max_position_embeddings` (or `n_positions`) of a local model folder's config.json, else None."""
    cfg = saved_config(path)
    if cfg is None:
        return None
    for c in (cfg, cfg.get("text_config") or {}):  # multimodal configs nest the language model's
        for key in ("max_position_embeddings", "n_positions"):
            if isinstance(c.get(key), int):
                return int(c[key])
    return None


def _torch_dtype(dtype: str) -> Any:
    import torch

    if dtype == "auto":  # a run resolves it before start-up (prepare); direct callers get the same rule here
        from rlvr.models.dtype import auto_dtype

        dtype = auto_dtype(torch.cuda.is_available())
    if dtype not in DTYPES:
        raise RlvrUserError(f"model.dtype: '{dtype}' is not one of {', '.join(DTYPES)}")
    return getattr(torch, dtype)


def _from_pretrained(path: str, dtype: Any, trust_remote_code: bool) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, trust_remote_code=trust_remote_code, local_files_only=hub_offline()
        )
    except OSError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RlvrUserError(
            f"model.path: cannot load '{path}' (no local folder, and the hub is unreachable or has no such "
            f"model: {first})"
        ) from e


def load_model_and_tokenizer(
    path: str,
    dtype: str = "float32",
    trust_remote_code: bool = False,
    model_cfg: ModelConfig | None = None,
) -> tuple[Any, Any]:
    """A transformers causal LM (eval mode) and its saved tokenizer; one-line error when either cannot load.

    `model_cfg` brings `model.tokenizer`; its `trust_remote_code` wins over the argument when given."""
    mc = model_cfg or ModelConfig(path=path, trust_remote_code=trust_remote_code)
    tok = load_tokenizer(mc, path)
    model = _from_pretrained(path, _torch_dtype(dtype), mc.trust_remote_code)
    return model.eval(), tok


def load_train_model(path: str, model_cfg: ModelConfig, *, gradient_checkpointing: bool = False) -> Any:
    """The policy for training: float32 master weights (DeepSpeed casts to bf16 itself when asked).

    With `gradient_checkpointing`, HF recomputes each layer's activations in backward (non-reentrant,
    which works with frozen inputs and DeepSpeed) and the KV cache, useless in training, is off."""
    import torch

    model = _from_pretrained(path, torch.float32, model_cfg.trust_remote_code)
    if gradient_checkpointing:
        if not getattr(model, "supports_gradient_checkpointing", False):
            raise RlvrUserError(
                f"learner.gradient_checkpointing: {type(model).__name__} does not support gradient checkpointing"
            )
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    return model.train()


def load_reference_model(path: str, model_cfg: ModelConfig) -> Any:
    """The frozen reference policy: `model.dtype`, eval mode, no gradients."""
    model = _from_pretrained(path, _torch_dtype(model_cfg.dtype), model_cfg.trust_remote_code)
    model.requires_grad_(False)
    return model.eval()
