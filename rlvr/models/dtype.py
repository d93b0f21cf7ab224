"""`model.dtype=auto`: bfloat16 where the hardware computes it natively, float32 where it would emulate it.

In: whether the run uses GPUs. Out: the dtype name, and `cpu_has_native_bf16()`. On a CPU whose oneDNN has no
bf16 kernels (x86 without AVX-512, e.g. AVX2 only) every bf16 matmul is emulated: SmolLM2-135M's forward and
backward (4 x 128 tokens, 2 threads) took 117 s in bf16 against 5 s in float32 on such a machine, and vLLM's
generation slowed alike. A GPU run gets bfloat16 (every GPU rlvr targets has it).
"""

from __future__ import annotations

import functools
from typing import Literal


@functools.cache
def cpu_has_native_bf16() -> bool:
    """oneDNN's own check of this CPU's bf16 kernels (on x86: AVX-512 or AMX)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN: nothing to tell it with
        return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def auto_dtype(uses_gpu: bool) -> Literal["bfloat16", "float32"]:
    return "bfloat16" if uses_gpu or cpu_has_native_bf16() else "float32"
