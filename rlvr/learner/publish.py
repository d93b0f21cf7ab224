"""Gather the learner's full parameters and publish them to the WeightStore.

In: a DeepSpeed engine (any ZeRO stage) and a WeightStore actor handle. Out: a CPU state dict on
rank 0 (None elsewhere) and a `publish(version, [ref])` call. The state is put into the object
store owned by the WeightStore, so published weights outlive the learner worker that made them
(a finished or restarted learner must not take its weights down with it).
"""

from __future__ import annotations

from typing import Any

import ray
import torch


def gather_full_state(engine: Any, zero_stage: int, rank: int) -> dict[str, torch.Tensor] | None:
    """Collective under ZeRO-3 (every rank must call); returns fp32 CPU tensors on rank 0 only."""
    module = engine.module
    if zero_stage == 3:
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None):
            return _cpu_state(module) if rank == 0 else None
    return _cpu_state(module) if rank == 0 else None


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", torch.float32).clone() for k, v in module.state_dict().items()}


def publish(store: Any, version: int, state: dict[str, torch.Tensor] | None, timeout_s: float = 120.0) -> None:
    if state is None:
        return
    ref = ray.put(state, _owner=store)
    # Wrapped in a list so Ray passes the reference itself instead of resolving it into the store's heap.
    ray.get(store.publish.remote(version, [ref]), timeout=timeout_s)
