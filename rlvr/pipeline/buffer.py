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
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import ray

from rlvr.types import Trajectory


@dataclass
class _StepBatch:
    trajs: list[Trajectory]
    world_size: int
    epoch: int
    taken_by: set[int] = field(default_factory=set)

    def untaken(self) -> list[Trajectory]:
        """The slices no rank has taken yet, in batch order."""
        return [t for i, t in enumerate(self.trajs) if i % self.world_size not in self.taken_by]


class BufferCore:
    """FIFO of trajectories + step batches keyed by learner step. Not thread-safe by itself.

    Weight epochs: a learner restarted from checkpoint c republishes c under a new epoch, so versions
    after c from the old epoch belong to a lost branch. `fork_version` is the version the newest epoch
    started from; a trajectory of an older epoch is fresh only when its version is <= fork_version.
    """

    def __init__(self) -> None:
        self.queue: deque[Trajectory] = deque()
        self.batches: dict[int, _StepBatch] = {}
        self.handed_out: set[str] = set()
        self.double_trained: list[str] = []
        self.dropped_stale = 0
        self.dropped_lost_branch = 0
        self.filtered = 0
        self.replayed_steps = 0
        self.put_count = 0
        self.metrics: list[dict[str, Any]] = []
        self.closed = False
        self.waiting = 0  # learner ranks blocked in `take` right now (the controller's starvation signal)
        self.epoch = 0
        self.fork_version = -1
        self.stops: dict[int, dict[str, Any]] = {}  # rank -> why its learner loop ended, and at which step
        self.restarts: list[dict[str, Any]] = []  # the first take of every new weight epoch
        self.first_ask_at: float | None = None  # epoch seconds: a learner first asked for data (it is up)
        self.first_take_at: float | None = None  # ... and first got a batch (its first step starts)

    def put(self, trajs: list[Trajectory]) -> int:
        self.queue.extend(trajs)
        self.put_count += len(trajs)
        return len(self.queue)

    def _fresh(self, t: Trajectory, current_version: int, max_staleness: int) -> bool:
        if t.sample.weight_epoch < self.epoch and t.weight_version > self.fork_version:
            return False
        return t.weight_version >= current_version - max_staleness

    def _drop_stale(self, current_version: int, max_staleness: int) -> None:
        keep = []
        for t in self.queue:
            if self._fresh(t, current_version, max_staleness):
                keep.append(t)
            elif t.sample.weight_epoch < self.epoch and t.weight_version > self.fork_version:
                self.dropped_lost_branch += 1
            else:
                self.dropped_stale += 1
        self.queue = deque(keep)

    def _requeue(self, batch: _StepBatch) -> None:
        """Slices nobody took go back to the front of the queue: they were never trained."""
        self.queue.extendleft(reversed(batch.untaken()))

    def _new_epoch(self, epoch: int, current_version: int) -> None:
        # Batches assembled before the restart may mix branches: give their untaken slices back.
        for batch in self.batches.values():
            self._requeue(batch)
        self.batches.clear()
        self.epoch, self.fork_version = epoch, current_version
        self.restarts.append({"epoch": epoch, "fork_version": current_version})

    def try_take(
        self,
        step: int,
        rank: int,
        world_size: int,
        n: int,
        current_version: int,
        max_staleness: int,
        epoch: int = 0,
    ) -> list[Trajectory] | None:
        """This rank's slice of the step batch, or None when not enough fresh data is queued yet."""
        self.first_ask_at = self.first_ask_at or time.time()
        if epoch > self.epoch:
            self._new_epoch(epoch, current_version)
        batch = self.batches.get(step)
        if batch is not None and rank in batch.taken_by:
            # The same rank asks for the same step again: its worker restarted and the earlier update was
            # lost. Train fresh data rather than hand the same ids out twice; the other ranks' untaken
            # slices were never trained, so they go back to the queue.
            self.replayed_steps += 1
            del self.batches[step]
            self._requeue(batch)
            batch = None
        if batch is None:
            self._drop_stale(current_version, max_staleness)
            if len(self.queue) < n:
                return None
            batch = _StepBatch([self.queue.popleft() for _ in range(n)], world_size, self.epoch)
            self.batches[step] = batch
        batch.taken_by.add(rank)
        self.first_take_at = self.first_take_at or time.time()
        mine = batch.trajs[rank :: batch.world_size]
        for t in mine:
            if t.traj_id in self.handed_out:
                self.double_trained.append(t.traj_id)
            self.handed_out.add(t.traj_id)
        if self.restarts and "step" not in self.restarts[-1]:  # the first batch of a new epoch
            self.restarts[-1].update(
                {
                    "step": step,
                    "sample_epochs": sorted({t.sample.weight_epoch for t in mine}),
                    "old_epoch_max_version": max(
                        (t.weight_version for t in mine if t.sample.weight_epoch < epoch), default=-1
                    ),
                }
            )
        if len(batch.taken_by) >= batch.world_size:
            del self.batches[step]  # every rank has its slice; free the memory
        return mine

    def count_filtered(self, ids: list[str]) -> None:
        self.filtered += len(ids)

    def report_stop(self, rank: int, step: int, reason: str) -> None:
        self.stops[rank] = {"step": step, "reason": reason}

    def counters(self) -> dict[str, Any]:
        return {
            "put": self.put_count,
            "queued": len(self.queue) + sum(len(b.untaken()) for b in self.batches.values()),
            "trained": len(self.handed_out),
            "dropped_stale": self.dropped_stale + self.dropped_lost_branch,
            "dropped_lost_branch": self.dropped_lost_branch,
            "filtered": self.filtered,
            "replayed_steps": self.replayed_steps,
            "double_trained": len(self.double_trained),
            "double_trained_ids": list(self.double_trained[:10]),
            "waiting": self.waiting,
            "epoch": self.epoch,
            "stops": dict(self.stops),
            "restarts": list(self.restarts),
            "first_ask_at": self.first_ask_at,
            "first_take_at": self.first_take_at,
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
        epoch: int = 0,
    ) -> list[Trajectory] | None:
        """None when the buffer is closed or `timeout_s` passes (see `stop_reason`)."""
        cond = self._condition()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        async with cond:
            self.core.waiting += 1
            try:
                while not self.core.closed:
                    got = self.core.try_take(step, rank, world_size, n, current_version, max_staleness, epoch)
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

    async def is_closed(self) -> bool:
        return self.core.closed

    async def report_stop(self, rank: int, step: int, reason: str) -> None:
        self.core.report_stop(rank, step, reason)

    async def report_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        self.core.metrics.append({"step": step, **metrics})

    async def pop_metrics(self) -> list[dict[str, Any]]:
        out, self.core.metrics = self.core.metrics, []
        return out

    async def close(self) -> None:
        async with self._condition():
            self.core.closed = True
            self._condition().notify_all()
