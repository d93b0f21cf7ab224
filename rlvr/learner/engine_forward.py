"""The bookkeeping `DeepSpeedEngine.forward()` does before a forward, for a learner that skips it.

In: a DeepSpeed engine (any ZeRO stage). Out: its optimizer and ZeRO-3 parameter coordinator ready for one
more micro-batch forward. The learner never calls `engine(...)`: that would run the model's full-logits
forward, and the fused policy statistics call the decoder body and the LM head of `engine.module` instead.
Must never: run a forward itself or touch gradients.

Why it matters (DeepSpeed 0.19.8): ZeRO-3 advances its micro-step counter only in `engine.forward()`. Left at
0, every micro-batch's reduced gradient is copied over the previous one instead of added to it, so with
gradient accumulation only the last micro-batch trains (measured on CPU, 2 ranks: update off by ~100%).
"""

from __future__ import annotations

from typing import Any


def begin_forward(engine: Any) -> None:
    """Call before each forward on `engine.module` (train and no-grad recompute alike), on every rank."""
    from deepspeed.runtime.base_optimizer import ZeROOptimizer

    opt = getattr(engine, "optimizer", None)
    if isinstance(opt, ZeROOptimizer):  # as engine.forward(): micro-step and backward-hook counters
        opt.clear_backward_seen_flag()
    offload = getattr(opt, "parameter_offload", None)  # ZeRO-3 only
    if offload is not None:
        # What the top module's forward pre-hook does: a new fetch step, so the prefetch trace lines up.
        offload.get_param_coordinator().reset_step()
