"""The bf16 optimizer step of DeepSpeed's unfused optimizer, one parameter at a time.

In: a DeepSpeed engine. Out: when its optimizer is `FP16_UnfusedOptimizer` (what DeepSpeed 0.19 builds for
bf16 at ZeRO-0 with a torch optimizer), that instance's `step` replaced by `lean_step`; any other engine is
left alone. Must never: change the update (same clipping, same Adam math, same order of state).

Why: DeepSpeed's step first turns every bf16 gradient into an fp32 copy and only then runs the optimizer,
so the bf16 gradients (2 B/param) and all fp32 gradients (4 B/param) are alive together: +0.75 GiB at
SmolLM2-135M, the learner's peak. Adam is elementwise and per-parameter, so stepping the parameters one
by one (each with its own fp32 gradient, freed right after, the bf16 one freed before) gives the same
update with one parameter's fp32 gradient alive at a time. The global norm is computed first, exactly as
DeepSpeed does. Tested against DeepSpeed's own step for bitwise-equal weights and optimizer state.
"""

from __future__ import annotations

import types
from typing import Any

import torch


def use_lean_step(engine: Any) -> bool:
    """Swap in `lean_step` on the engine's optimizer if it is the unfused bf16/fp16 one; returns whether."""
    from deepspeed.runtime.fp16.unfused_optimizer import FP16_UnfusedOptimizer

    opt: Any = getattr(engine, "optimizer", None)
    if type(opt) is not FP16_UnfusedOptimizer or opt.fused_lamb_legacy:
        return False
    opt.step = types.MethodType(lean_step, opt)
    return True


@torch.no_grad()
def lean_step(self: Any, closure: Any = None) -> bool:
    """`FP16_UnfusedOptimizer.step` (DeepSpeed 0.19.8) with the fp32 gradients made one parameter at a time."""
    from deepspeed.moe.utils import split_params_grads_into_shared_and_expert_params
    from deepspeed.runtime.utils import get_global_norm, get_weight_norm, is_invalid_grad_norm

    if closure is not None:
        raise NotImplementedError("lean_step does not support closure")
    self.overflow = self.overflow_checker.check()
    if self.overflow:
        return bool(self._skip_invalid_grad_norm())
    norm_groups = []
    for group in self.fp16_groups:
        grads_for_norm, _ = split_params_grads_into_shared_and_expert_params(group)
        norm_groups.append(get_weight_norm(grads_for_norm, mpu=self.mpu) if grads_for_norm else 0.0)
    self._global_grad_norm = get_global_norm(norm_list=norm_groups)
    if is_invalid_grad_norm(self._global_grad_norm):
        return bool(self._skip_invalid_grad_norm())
    self._update_scale(False)
    scale = self.unscale_and_clip_grads(self._global_grad_norm, apply_scale=False)
    for fp32_group, fp16_group in zip(self.fp32_groups, self.fp16_groups, strict=True):
        for fp32_param, fp16_param in zip(fp32_group, fp16_group, strict=True):
            if fp16_param.grad is None:  # as DeepSpeed: a zero gradient (weight decay and moments still move)
                fp32_param.grad = torch.zeros_like(fp32_param)
            else:
                fp32_param.grad = fp16_param.grad.to(fp32_param.dtype)
                fp16_param.grad = None
            fp32_param.grad.mul_(1.0 / scale)
            self.optimizer.step()  # only parameters with a gradient take a step: this one
            fp32_param.grad = None
            fp16_param.data.copy_(fp32_param.data)
    return bool(self.overflow)
