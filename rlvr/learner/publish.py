"""Gather the learner's full parameters and publish them to the WeightStore.

In: a DeepSpeed engine (any ZeRO stage) and a WeightStore actor handle. Out: a CPU state dict on
rank 0 (None elsewhere) and a `publish` that lends its chunks to the store: the weights exist once in
the object store, owned by the learner worker, so rank 0 calls `keep_after_exit` before the worker exits
(the store then copies the last version once; Ray 2.56+ has no `ray.put(_owner=...)`).
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
    each tensor once (a tied LM head is left out: loaders re-tie it). Below ZeRO-3, tensors already on
    CPU in `dtype` are the live parameters, not copies: use the state before the next optimizer step."""
    module = engine.module
    if zero_stage == 3:
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None):
            return cpu_state(module, dtype) if rank == 0 else None
    return cpu_state(module, dtype, copy=False) if rank == 0 else None


def cpu_state(
    module: torch.nn.Module, dtype: torch.dtype = torch.float32, copy: bool = True
) -> dict[str, torch.Tensor]:
    """The module's state on CPU in `dtype`, with names that alias an earlier tensor (tied weights) dropped.
    A LoRA model gives its merged weights under the base model's names (what a generator loads).
    `copy=False`: a tensor already on CPU in `dtype` is returned as is (a publish copies it into the
    object store anyway; a full extra copy was 2 bytes a parameter of learner memory at bf16)."""
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
        c = t.to(dtype) if t.is_floating_point() else t
        out[k] = c.clone() if copy and c.data_ptr() == v.data_ptr() else c
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
        publish_weights(store, version, state, timeout_s, new_epoch=new_epoch, lend=True)
    except ray.exceptions.RayTaskError as e:
        if "not newer" not in str(e):
            raise
        log.warning("weight version %d not published: the store has a newer one (replayed step)", version)
        return False
    return True


def keep_after_exit(store: Any, timeout_s: float = 300.0) -> None:
    """Before the publishing worker exits: the store copies the newest (lent) weights, so replicas that
    load them later do not find their owner gone."""
    ray.get(store.adopt.remote(), timeout=timeout_s)
