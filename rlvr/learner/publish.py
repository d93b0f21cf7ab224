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


def gather_full_state(
    engine: Any, zero_stage: int, rank: int, dtype: torch.dtype = torch.float32
) -> dict[str, torch.Tensor] | None:
    """Collective under ZeRO-3 (every rank must call); returns CPU tensors in `dtype` on rank 0 only,
    each tensor once (a tied LM head is left out: loaders re-tie it)."""
    module = engine.module
    if zero_stage == 3:
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None):
            return cpu_state(module, dtype) if rank == 0 else None
    return cpu_state(module, dtype) if rank == 0 else None


def cpu_state(module: torch.nn.Module, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """The module's state on CPU in `dtype`, with names that alias an earlier tensor (tied weights) dropped.
    A LoRA model gives its merged weights under the base model's names (what a generator loads)."""
    from rlvr.learner.lora import is_lora, merged_state_dict

    if is_lora(module):
        base = module.get_base_model()  # type: ignore[operator]  # PeftModel's method
        aliases = {k.replace(".base_layer.", ".") for k in _alias_names(base)}
        return {
            k: v.to(dtype) if v.is_floating_point() else v
            for k, v in merged_state_dict(module).items()
            if k not in aliases
        }
    state = module.state_dict()
    aliases = _alias_names(module)
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if k in aliases:
            continue
        t = v.detach().to("cpu")
        out[k] = t.to(dtype).clone() if t.is_floating_point() else t.clone()
    return out


def _alias_names(module: torch.nn.Module) -> set[str]:
    """State-dict names whose tensor is the same storage as an earlier name's (a tied LM head)."""
    seen: set[tuple[int, int]] = set()
    out: set[str] = set()
    for k, v in module.state_dict().items():
        if not v.numel():  # ZeRO-3 partitioned placeholders all look alike: never aliases
            continue
        key = (v.untyped_storage().data_ptr(), v.storage_offset())
        if key in seen:
            out.add(k)
        seen.add(key)
    return out


def publish(
    store: Any,
    version: int,
    state: dict[str, torch.Tensor] | None,
    timeout_s: float = 120.0,
    new_epoch: bool = False,
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
        publish_weights(store, version, state, timeout_s, new_epoch=new_epoch)
    except ray.exceptions.RayTaskError as e:
        if "not newer" not in str(e):
            raise
        log.warning("weight version %d not published: the store has a newer one (replayed step)", version)
        return False
    return True
