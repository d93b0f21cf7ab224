"""Which attention kernel the learner's forward and backward use, chosen per micro-batch.

In: the policy (or reference) model, a micro-batch's shape, `learner.attn_implementation`. Out: the model
switched to "eager" or "sdpa" (HF's `set_attn_implementation`, about 75 us; only when the choice changes).
Why: on CPU, torch's bf16 flash-attention backward is slow. `benchmarks/attention_kernels.py` (vs_trl.py's
tiny model, one thread, forward+backward): in bf16 eager took 0.72x sdpa's time at 128 rows x 18 tokens and
0.95x at 4 x 512; in float32 0.97x at 128 x 18 and 1.11x at 4 x 512, so float32 keeps sdpa. Eager keeps
every layer's [rows, heads, L, L] scores for backward, so `auto` picks it only while those are small; GPUs
keep sdpa.
"""

from __future__ import annotations

from typing import Any

import torch

EAGER_MAX_SCORE_BYTES = 4 * 2**20  # one layer's attention scores (fp32) for eager under `auto`


def _heads(model: Any) -> int:
    cfg = getattr(model, "config", None)
    cfg = getattr(cfg, "text_config", None) or cfg
    return int(getattr(cfg, "num_attention_heads", 0) or 0)


def choose(setting: str, rows: int, seq_len: int, heads: int, on_gpu: bool, half: bool) -> str:
    """The kernel for one micro-batch: `setting`, or under auto eager for 16-bit weights on CPU with small
    scores (see the module doc), else sdpa."""
    if setting != "auto":
        return setting
    if on_gpu or not half or heads <= 0:
        return "sdpa"
    return "eager" if rows * heads * seq_len * seq_len * 4 <= EAGER_MAX_SCORE_BYTES else "sdpa"


class AttentionSwitch:
    """Keeps one model's attention kernel in step with the micro-batches it is given."""

    def __init__(self, model: Any, setting: str, on_gpu: bool) -> None:
        self.model = (
            model.get_base_model() if hasattr(model, "get_base_model") else model
        )  # LoRA: the HF model
        self.setting, self.on_gpu = setting, on_gpu
        self.heads = _heads(self.model)
        first = next(iter(self.model.parameters()), None)
        self.half = first is not None and first.dtype in (torch.bfloat16, torch.float16)
        self.current = getattr(getattr(self.model, "config", None), "_attn_implementation", None)
        self.enabled = hasattr(self.model, "set_attn_implementation")
        if setting != "auto":
            self._set(setting)  # an explicit choice the model cannot take fails here, naming the key

    def _set(self, kernel: str) -> None:
        if kernel == self.current:
            return
        try:
            self.model.set_attn_implementation(kernel)
        except (ValueError, ImportError, AttributeError) as e:
            if self.setting != "auto":
                from rlvr.errors import RlvrUserError

                raise RlvrUserError(
                    f"learner.attn_implementation: {type(self.model).__name__} cannot use '{kernel}': {e}"
                ) from e
            self.enabled = False  # auto: keep the model's own kernel
            return
        self.current = kernel

    def before(self, rows: int, seq_len: int) -> str | None:
        """Switch for a micro-batch of `rows` x `seq_len` tokens; returns the kernel in use."""
        if self.enabled and self.setting == "auto":
            self._set(choose(self.setting, rows, seq_len, self.heads, self.on_gpu, self.half))
        return self.current
