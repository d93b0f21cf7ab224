"""The learner's collectives against a real 2-process gloo group, and as the identity without a group."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rlvr.learner import collectives as col

pytestmark = pytest.mark.unit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank_main(rank: int, world: int, port: int, backend: str, out: Any) -> None:
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        # Rank r holds r+1 and a value that only float64 keeps (2**53 + 1 - 1 == 2**53 in float32).
        res = {
            "agree_all": col.agree(True),
            "agree_one_stops": col.agree(rank != 1),
            "mean": col.all_mean({"b": float(rank), "a": 10.0 * (rank + 1)}),
            "sum": col.all_sum([rank + 1.0, 2.0**53 if rank == 0 else 1.0]),
            "max": col.all_max([float(rank), -float(rank)]),
            "empty": col.all_sum([]),
        }
        out.put((rank, res))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("backend", ["gloo"])
def test_collectives_on_a_two_rank_gloo_group(backend: str) -> None:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_rank_main, args=(r, 2, port, backend, out)) for r in range(2)]
    for p in procs:
        p.start()
    got = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    for rank in (0, 1):
        r = got[rank]
        assert r["agree_all"] is True and r["agree_one_stops"] is False
        assert r["mean"] == {"a": 15.0, "b": 0.5}
        assert r["sum"] == [3.0, 2.0**53 + 1.0]
        assert r["max"] == [1.0, 0.0]
        assert r["empty"] == []


def test_world_one_without_a_group_is_the_identity() -> None:
    assert not dist.is_initialized()
    assert col.agree(True) is True and col.agree(False) is False
    assert col.all_mean({"x": 2.5}) == {"x": 2.5}
    assert col.all_sum([1.0, 2.0]) == [1.0, 2.0]
    assert col.all_max([3.0]) == [3.0]


@pytest.mark.parametrize(
    ("config", "device"),
    [
        ("cpu:gloo,cuda:gloo", "cpu"),  # dist.get_backend_config() of a plain gloo group
        ("cpu:gloo,cuda:nccl", "cpu"),  # the GPU learner's mixed group: scalars stay on CPU
        ("gloo", "cpu"),
        ("cuda:nccl", "cuda"),  # an NCCL-only group reduces CUDA tensors only
        ("nccl", "cuda"),
    ],
)
def test_tensor_device_follows_the_backend(config: str, device: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # No GPU is needed to check the choice: only the device index is asked of the CUDA module.
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert col.device_for_backend(config).type == device
