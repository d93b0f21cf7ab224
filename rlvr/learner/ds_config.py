"""LearnerConfig -> DeepSpeed config, batch plan and LR schedule.

In: `LearnerConfig`, the world size and the step batch size. Out: a DeepSpeed config dict, a
`BatchPlan`, an optimizer and a warm-up scheduler. Bad combinations raise a one-line
`RlvrUserError` naming the field; this module never builds a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from rlvr.config.schema import LearnerConfig
from rlvr.errors import RlvrUserError


@dataclass(frozen=True)
class BatchPlan:
    step_batch: int  # responses per learner step (all ranks)
    per_rank: int  # responses per rank per step
    micro: int  # responses per forward/backward on one rank
    grad_accum: int  # micro-batches per optimizer step on one rank
    optimizer_steps: int  # optimizer steps per learner step per PPO epoch

    @property
    def mini_rank(self) -> int:
        """Responses per mini-batch on one rank."""
        return self.micro * self.grad_accum


def plan_batches(cfg: LearnerConfig, world_size: int, step_batch: int) -> BatchPlan:
    """How a step batch of `step_batch` responses splits into mini- and micro-batches."""
    if step_batch % world_size:
        raise RlvrUserError(
            f"learner.num_workers={world_size} must divide the step batch "
            f"(trainer.prompts_per_step x generator.n_samples = {step_batch})"
        )
    per_rank = step_batch // world_size
    mini = min(cfg.mini_batch_size, step_batch)
    if step_batch % mini or mini % world_size:
        raise RlvrUserError(
            f"learner.mini_batch_size={cfg.mini_batch_size} must divide the step batch ({step_batch}) "
            f"and be a multiple of learner.num_workers={world_size}"
        )
    mini_rank = mini // world_size
    micro = min(cfg.micro_batch_size, mini_rank)
    if mini_rank % micro:
        raise RlvrUserError(
            f"learner.micro_batch_size={cfg.micro_batch_size} must divide the per-worker mini-batch "
            f"(learner.mini_batch_size / learner.num_workers = {mini_rank})"
        )
    return BatchPlan(step_batch, per_rank, micro, mini_rank // micro, step_batch // mini)


def deepspeed_config(
    cfg: LearnerConfig, plan: BatchPlan, world_size: int, on_gpu: bool, bf16: bool | None = None
) -> dict[str, Any]:
    """`bf16` (default `cfg.bf16`): bf16 weights and activations with fp32 master weights in the optimizer,
    on CPU too (DeepSpeed runs bf16 on CPU with a torch optimizer)."""
    zero: dict[str, Any] = {"stage": cfg.zero_stage}
    if cfg.zero_stage == 3:
        # Small models: keep every parameter partitioned (no persistence threshold surprises in tests).
        zero["stage3_param_persistence_threshold"] = 0
    return {
        "train_micro_batch_size_per_gpu": plan.micro,
        "gradient_accumulation_steps": plan.grad_accum,
        "train_batch_size": plan.micro * plan.grad_accum * world_size,
        "gradient_clipping": cfg.grad_clip,
        "zero_optimization": zero,
        "bf16": {"enabled": bool(cfg.bf16 if bf16 is None else bf16)},
        # A torch optimizer instance is passed in: DeepSpeed's fused Adam builds a C++ op on CPU (~65 s).
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def build_optimizer(
    model: torch.nn.Module, cfg: LearnerConfig, total_updates: int = 0
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the trainable parameters and the LR schedule over `total_updates` optimizer steps."""
    params = [p for p in model.parameters() if p.requires_grad]
    # Fused: one kernel over each tensor, no temporaries. On CPU the foreach form allocated a full fp32 copy
    # of the parameters for the update (+0.5 GiB at 135M parameters) and took 10x as long
    # (benchmarks/results/optimizer_step.json).
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    opt = torch.optim.AdamW(
        params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.999), eps=1e-8, fused=fused or None
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, LrSchedule(cfg.warmup_steps, cfg.lr_schedule, total_updates, cfg.min_lr_ratio)
    )
    return opt, sched


class LrSchedule:
    """LR multiplier per optimizer step: linear warm-up over `warmup` steps, then constant, or a linear or
    cosine decay to `min_ratio` at `total` steps. Picklable (a class, not a lambda) so the scheduler state
    round-trips through checkpoints."""

    def __init__(self, warmup: int, kind: str = "constant", total: int = 0, min_ratio: float = 0.0) -> None:
        self.warmup, self.kind, self.total, self.min_ratio = warmup, kind, total, min_ratio

    def __call__(self, step: int) -> float:
        if self.warmup > 0 and step < self.warmup:
            return (step + 1) / self.warmup
        if self.kind == "constant" or self.total <= self.warmup:
            return 1.0
        frac = min(1.0, (step - self.warmup) / max(self.total - self.warmup, 1))
        shape = 1.0 - frac if self.kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * frac))
        return self.min_ratio + (1.0 - self.min_ratio) * shape


WarmUp = LrSchedule  # checkpoints written before the decay option pickled this name
