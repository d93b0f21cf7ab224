"""Learner checkpoints: one directory per saved step.

In: a DeepSpeed engine, a gathered full state dict (rank 0), trainer progress. Out: a directory with
`hf/` (save_pretrained model + tokenizer when the source had one), `ds/` (engine state: optimizer,
scheduler; written by every rank), `rng_rank{r}.pt`, and `meta.json` (step, weight version, data
position). Loading restores all of it. This module never decides when to save.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

META = "meta.json"
DS_TAG = "ds"


def rng_state() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(
    d: Path,
    engine: Any,
    rank: int,
    meta: dict[str, Any],
    full_state: dict[str, torch.Tensor] | None,
    model_path: str,
) -> None:
    """Every rank calls this (engine.save_checkpoint is collective); rank 0 passes `full_state`."""
    d.mkdir(parents=True, exist_ok=True)
    engine.save_checkpoint(str(d), tag=DS_TAG)
    torch.save(rng_state(), d / f"rng_rank{rank}.pt")
    if rank == 0:
        from rlvr.learner.lora import is_lora, save_adapter, save_merged

        assert full_state is not None
        if is_lora(engine.module):  # the adapter alone, and a merged model any loader takes
            save_adapter(engine.module, d / "adapter")
            save_merged(engine.module, d / "hf", state=full_state)
        else:
            engine.module.save_pretrained(str(d / "hf"), state_dict=full_state)
        _save_tokenizer(model_path, d / "hf")
        (d / META).write_text(json.dumps(meta, indent=2))


TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "added_tokens.json",
    "generation_config.json",
)


def _save_tokenizer(model_path: str, out: Path) -> None:
    """Copy the tokenizer files byte for byte: re-saving through AutoTokenizer can swap the class (transformers
    5 forces its own on qwen2 models), and the checkpoint must decode exactly as the model was trained."""
    import shutil

    src = Path(model_path)
    if not src.is_dir():  # a hub name: the tokenizer comes from the hub cache
        try:
            from transformers import AutoTokenizer

            AutoTokenizer.from_pretrained(model_path).save_pretrained(str(out))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return
    for name in TOKENIZER_FILES:
        if (src / name).exists():
            shutil.copy2(src / name, out / name)  # a random test model has none: weights only


def load(d: Path, engine: Any, rank: int) -> dict[str, Any]:
    """Restore engine (weights, optimizer, scheduler) and this rank's RNG; return meta."""
    load_path, _ = engine.load_checkpoint(str(d), tag=DS_TAG, load_optimizer_states=True)
    if load_path is None:
        raise RuntimeError(f"DeepSpeed found no engine state under {d}/{DS_TAG}")
    rng = d / f"rng_rank{rank}.pt"
    if not rng.exists():
        rng = d / "rng_rank0.pt"  # resumed with more workers than saved
    if rng.exists():
        set_rng_state(torch.load(rng, weights_only=False))
    return json.loads((d / META).read_text())


def read_meta(d: Path) -> dict[str, Any] | None:
    p = Path(d) / META
    return json.loads(p.read_text()) if p.exists() else None
