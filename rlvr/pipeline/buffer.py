"""The trajectory buffer between the controller and the learners.

In: verified `Trajectory` records (advantages already computed) from the controller; step
requests from learner ranks. Out: per-rank disjoint slices of one step batch, accounting
counters, and the learners' per-step metrics for the controller. It must never train, compute
advantages or reorder within a step batch: it only assembles, slices and counts.

The logic lives in the plain class `BufferCore` (unit-testable without Ray); the
`TrajectoryBuffer` actor wraps it with asyncio so `put` and a waiting `take` never block
each other.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import ray

from rlvr.types import Trajectory


@dataclass
class _StepBatch:
    trajs: list[Trajectory]
    world_size: int
    taken_by: set[int] = field(default_factory=set)


class BufferCore:
    """FIFO of trajectories + step batches keyed by learner step. Not thread-safe by itself."""

    def __init__(self) -> None:
        self.queue: deque[Trajectory] = deque()
        self.batches: dict[int, _StepBatch] = {}
        self.handed_out: set[str] = set()
        self.double_trained: list[str] = []
        self.dropped_stale = 0
        self.filtered = 0
        self.replayed_steps = 0
        self.put_count = 0
        self.metrics: list[dict[str, Any]] = []
        self.closed = False
        self.waiting = 0  # learner ranks blocked in `take` right now (the controller's starvation signal)

    def put(self, trajs: list[Trajectory]) -> int:
        self.queue.extend(trajs)
        self.put_count += len(trajs)
        return len(self.queue)

    def _drop_stale(self, current_version: int, max_staleness: int) -> None:
        keep = [t for t in self.queue if t.weight_version >= current_version - max_staleness]
        self.dropped_stale += len(self.queue) - len(keep)
        self.queue = deque(keep)

    def try_take(
        self, step: int, rank: int, world_size: int, n: int, current_version: int, max_staleness: int
    ) -> list[Trajectory] | None:
        """This rank's slice of the step batch, or None when not enough fresh data is queued yet."""
        batch = self.batches.get(step)
        if batch is not None and rank in batch.taken_by:
            # The same rank asks for the same step again: its worker restarted from a checkpoint and the
            # earlier update was lost. Train fresh data rather than hand the same ids out twice.
            self.replayed_steps += 1
            del self.batches[step]
            batch = None
        if batch is None:
            self._drop_stale(current_version, max_staleness)
            if len(self.queue) < n:
                return None
            batch = _StepBatch([self.queue.popleft() for _ in range(n)], world_size)
            self.batches[step] = batch
        batch.taken_by.add(rank)
        mine = batch.trajs[rank :: batch.world_size]
        for t in mine:
            if t.traj_id in self.handed_out:
                self.double_trained.append(t.traj_id)
            self.handed_out.add(t.traj_id)
        if len(batch.taken_by) >= batch.world_size:
            del self.batches[step]  # every rank has its slice; free the memory
        return mine

    def count_filtered(self, ids: list[str]) -> None:
        self.filtered += len(ids)

    def counters(self) -> dict[str, Any]:
        return {
            "put": self.put_count,
            "queued": len(self.queue),
            "trained": len(self.handed_out),
            "dropped_stale": self.dropped_stale,
            "filtered": self.filtered,
            "replayed_steps": self.replayed_steps,
            "double_trained": len(self.double_trained),
            "double_trained_ids": list(self.double_trained[:10]),
            "waiting": self.waiting,
        }


@ray.remote(num_cpus=0)
class TrajectoryBuffer:
    """Async actor around `BufferCore`: waiting takes park on a condition, puts wake them."""

    def __init__(self) -> None:
        self.core = BufferCore()
        self._cond: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:  # created lazily inside the actor's event loop
            self._cond = asyncio.Condition()
        return self._cond

    async def put(self, trajs: list[Trajectory]) -> int:
        async with self._condition():
            size = self.core.put(trajs)
            self._condition().notify_all()
        return size

    async def take(
        self,
        step: int,
        rank: int,
        world_size: int,
        n: int,
        current_version: int,
        max_staleness: int,
        timeout_s: float,
    ) -> list[Trajectory] | None:
        cond = self._condition()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        async with cond:
            self.core.waiting += 1
            try:
                while not self.core.closed:
                    got = self.core.try_take(step, rank, world_size, n, current_version, max_staleness)
                    if got is not None:
                        return got
                    left = deadline - loop.time()
                    if left <= 0:
                        return None
                    try:
                        await asyncio.wait_for(cond.wait(), timeout=left)
                    except asyncio.TimeoutError:
                        return None
            finally:
                self.core.waiting -= 1
        return None

    async def count_filtered(self, ids: list[str]) -> None:
        self.core.count_filtered(ids)

    async def counters(self) -> dict[str, Any]:
        return self.core.counters()

    async def report_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        self.core.metrics.append({"step": step, **metrics})

    async def pop_metrics(self) -> list[dict[str, Any]]:
        out, self.core.metrics = self.core.metrics, []
        return out

    async def close(self) -> None:
        async with self._condition():
            self.core.closed = True
            self._condition().notify_all()
