"""The learner's small collectives: go/stop agreement and metric reductions across ranks.

In: Python bools/floats on every rank of the default process group (gloo, nccl, or a mixed
`cpu:gloo,cuda:nccl` group). Out: the same reduced values on every rank. With no process group (or a world of
one) each function is the identity. Must never: build a tensor on a device the group cannot reduce (an NCCL-only
group rejects CPU tensors), or import more than torch (`benchmarks/gpu_check.py` loads this file alone).

Every rank must call the same functions in the same order with the same list lengths / dict keys: these are
collectives, and a mismatch hangs or fails in the backend.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def device_for_backend(config: str) -> torch.device:
    """The device to put reduction tensors on for a backend config string as torch writes it
    (`dist.get_backend_config()`: "cpu:gloo,cuda:gloo", "cuda:nccl", "cpu:gloo,cuda:nccl"; a bare "gloo"/"nccl"
    is read the same way). CPU whenever the group serves it: scalars reduce there without a device copy."""
    served: list[str] = []
    for item in config.lower().split(","):
        dev, _, backend = item.strip().partition(":")
        if not backend:  # a bare backend name
            dev, backend = {"nccl": "cuda"}.get(dev, "cpu"), dev
        served.append(dev)
    if "cpu" in served or not served:
        return torch.device("cpu")
    dev = served[0]
    return torch.device(dev, torch.get_device_module(dev).current_device())


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _reduce(values: list[float], op: dist.ReduceOp.RedOpType) -> list[float]:
    if not _active() or not values:
        return [float(v) for v in values]
    dev = device_for_backend(dist.get_backend_config())
    vec = torch.tensor(values, dtype=torch.float64, device=dev)
    dist.all_reduce(vec, op=op)
    return [float(v) for v in vec.tolist()]


def all_sum(values: list[float]) -> list[float]:
    """Element-wise sum over ranks, in float64."""
    return _reduce(values, dist.ReduceOp.SUM)


def all_max(values: list[float]) -> list[float]:
    """Element-wise maximum over ranks, in float64."""
    return _reduce(values, dist.ReduceOp.MAX)


def agree(ok: bool) -> bool:
    """True on every rank only if every rank passed True. A rank that stops alone would leave the others
    waiting in the next collective; this lets all of them stop together."""
    return _reduce([1.0 if ok else 0.0], dist.ReduceOp.MIN)[0] > 0.5


def all_mean(metrics: dict[str, float]) -> dict[str, float]:
    """Mean of each metric over ranks (every rank passes the same keys)."""
    keys = sorted(metrics)
    world = dist.get_world_size() if _active() else 1
    sums = all_sum([float(metrics[k]) for k in keys])
    return {k: v / world for k, v in zip(keys, sums, strict=True)}
