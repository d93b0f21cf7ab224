"""The tokenizer a model was saved with, and the check that it gives text back unchanged.

In: `ModelConfig` (`model.tokenizer` overrides the folder or hub name) and the resolved model path.
Out: a transformers tokenizer of the class recorded in `tokenizer_config.json`, and `check_roundtrip`,
which raises a one-line `RlvrUserError` when decode(encode(text)) != text. Never downloads on its own
beyond what `from_pretrained` does for a hub name.

Why: transformers 5's `AutoTokenizer` may replace the saved class by the one its model-type table
names (any `qwen2` config gets `Qwen2Tokenizer`, whose own pre-tokenizer and NFC normaliser replace
the saved ones). For a tokenizer that was not Qwen2's, ids then differ from training and text stops
round-tripping (a character vocabulary lost every space). The saved `tokenizer.json` is the truth.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rlvr.config.schema import ModelConfig
from rlvr.errors import RlvrUserError

# Classes that are only a wrapper around tokenizer.json: when one of these was saved, the file decides.
GENERIC_CLASSES = ("TokenizersBackend", "PreTrainedTokenizerFast")


def hub_offline() -> bool:
    """HF_HUB_OFFLINE read at call time (not at import), so tests and users can set it late."""
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false")


def saved_file(source: str, name: str) -> Path | None:
    """`name` from a local folder, or from the Hugging Face cache for a hub name; never a download."""
    p = Path(source).expanduser()
    if p.is_dir():
        return p / name if (p / name).exists() else None
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(source, name)
    except Exception:  # an invalid repo id: the loader reports it
        return None
    return Path(hit) if isinstance(hit, str) else None


def saved_tokenizer_class(source: str) -> str | None:
    cfg = saved_file(source, "tokenizer_config.json")
    if cfg is None:
        return None
    try:
        return json.loads(cfg.read_text()).get("tokenizer_class")
    except (OSError, ValueError):
        return None


def _load_error(source: str, key: str, e: Exception) -> RlvrUserError:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return RlvrUserError(
        f"{key}: cannot load '{source}' (no local folder, and the hub is unreachable or has "
        f"no such tokenizer: {first})"
    )


def load_tokenizer(model_cfg: ModelConfig, model_path: str) -> Any:
    """The saved tokenizer of `model_cfg.tokenizer` (default: `model_path`), pad token set."""
    from transformers import PreTrainedTokenizerFast

    source = model_cfg.tokenizer or model_path
    key = "model.tokenizer" if model_cfg.tokenizer else "model.path"
    kwargs: dict[str, Any] = {
        "trust_remote_code": model_cfg.trust_remote_code,
        "local_files_only": hub_offline(),
    }
    generic = saved_tokenizer_class(source) in GENERIC_CLASSES and saved_file(source, "tokenizer.json")
    try:
        if generic:
            # The saved tokenizer.json and tokenizer_config (special tokens, padding side, chat template)
            # decide, through the generic class. AutoTokenizer could substitute its model-type class, and
            # importing its tables alone takes ~3 s of start-up.
            tok = PreTrainedTokenizerFast.from_pretrained(source, **kwargs)
        else:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as e:
        raise _load_error(source, key, e) from e
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def roundtrip_failure(tok: Any, text: str) -> str | None:
    """The decoded text when it differs from `text`, else None. Special tokens in `text` stay special."""
    ids = tok(text, add_special_tokens=False)["input_ids"]
    back = tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return None if back == text else back


def check_roundtrip(
    tok: Any, texts: Iterable[str], key: str = "model.tokenizer", max_texts: int = 64
) -> None:
    """decode(encode(t)) == t for the first `max_texts` texts, else one-line RlvrUserError naming `key`."""
    for i, text in enumerate(texts):
        if i >= max_texts:
            return
        back = roundtrip_failure(tok, text)
        if back is not None:
            at = next((j for j, (a, b) in enumerate(zip(text, back, strict=False)) if a != b), None)
            at = min(len(text), len(back)) if at is None else at
            raise RlvrUserError(
                f"{key}: the tokenizer ({type(tok).__name__}) does not round-trip text: "
                f"{text[max(at - 15, 0) : at + 15]!r} decodes as {back[max(at - 15, 0) : at + 15]!r} "
                "(point model.tokenizer at the tokenizer the model was trained with)"
            )


PROBES = ("What is 3 + 4? Put the answer in \\boxed{}.", "  two  spaces,\ttab\nnew line", "Ünïcödé ½ π 数学")


def disagreement(ours: Any, theirs: Any, texts: Iterable[str] = PROBES) -> str | None:
    """A one-line description of the first text `theirs` encodes or decodes differently from `ours`,
    else None. For an engine that loads its own tokenizer (vLLM): its ids must be the driver's."""
    for text in texts:
        a = ours(text, add_special_tokens=False)["input_ids"]
        b = theirs(text, add_special_tokens=False)["input_ids"]
        if a != b:
            return f"{text!r} encodes as {b[:12]}... instead of {a[:12]}..."
        back = theirs.decode(a, skip_special_tokens=True)
        if back != ours.decode(a, skip_special_tokens=True):
            return f"{text!r} decodes as {back!r}"
    return None
