"""How many parameters a saved model has, read from its safetensors headers (no weights are loaded).

In: a local folder or a cached hub name. Out: the parameter count, or None when the folder has no
safetensors files (or only in an unreadable form). Never downloads.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from rlvr.models.tokenizer import saved_file


def _header_params(file: Path) -> int:
    with open(file, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    return sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")


def saved_param_count(path: str) -> int | None:
    """Parameters in `path`'s safetensors files (tied weights, saved once, count once)."""
    try:
        index = saved_file(path, "model.safetensors.index.json")
        if index is not None:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            files = [saved_file(path, s) for s in shards]
            if any(f is None for f in files):
                return None
            return sum(_header_params(f) for f in files if f is not None)
        single = saved_file(path, "model.safetensors")
        return None if single is None else _header_params(single)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, struct.error):  # any malformed file
        return None
