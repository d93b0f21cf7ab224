"""Gather the learner's full parameters and publish them to the WeightStore.

In: a DeepSpeed engine (any ZeRO stage) and a WeightStore actor handle. Out: a CPU state dict on
rank 0 (None elsewhere) and a `publish(version, [ref])` call. The learner worker owns the object
(Ray 2.56+ removed `ray.put(_owner=...)`): a store that must serve weights after the learner exits
or restarts has to keep its own copy.
"""

from __future__ import annotations

import logging
from typing import Any

import ray
import torch

log = logging.getLogger(__name__)


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


def publish(
    store: Any, version: int, state: dict[str, torch.Tensor] | None, timeout_s: float = 120.0
) -> bool:
    """Publish rank 0's state; False when the store already holds a version >= `version`.

    That happens after a worker restart: the steps since the last checkpoint are trained again and their
    versions were already published. The store keeps the newer numbers; the learner publishes again once
    it passes them.
    """
    from rlvr.generator.weight_store import publish_weights

    if state is None:
        return False
    try:
        publish_weights(store, version, state, timeout_s)  # ray.put + publish(version, [ref])
    except ray.exceptions.RayTaskError as e:
        if "not newer" not in str(e):
            raise
        log.warning("weight version %d not published: the store has a newer one (replayed step)", version)
        return False
    return True
