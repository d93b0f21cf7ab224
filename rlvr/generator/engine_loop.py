"""The replica's scheduler: one thread owns the engine, every request joins its batch.

In: generate requests from any number of concurrent callers (`submit` -> a Future), and a `sync`
callback that loads newer weights. Out: each request's groups, and the seconds from its admission to
its answer. Requests arriving while others run are added to the engine at once, so one replica
batches them together (vLLM's continuous batching) instead of serialising them. Weight loads are
atomic per replica: when new requests arrive and the store holds newer weights, they wait until the
running requests drain, the weights load, and only then join; no request ever sees half-loaded
weights. An exception from the engine's `step` means the engine is broken: every running request
fails with it at once, later ones are refused, and `error` tells the health check. A request the
engine rejects when it is added (bad input) fails alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from itertools import count

from rlvr.generator.base import GeneratorBackend, Groups, SamplingConfig

log = logging.getLogger(__name__)


@dataclass
class _Job:
    job_id: str
    prompts: list[str]
    sampling: SamplingConfig
    future: Future[tuple[Groups, float]] = field(default_factory=Future)
    started: float = 0.0


class EngineLoop:
    def __init__(self, backend: GeneratorBackend, needs_sync: Callable[[], bool], sync: Callable[[], None]):
        """`needs_sync()`: the store holds other weights than the backend; `sync()` loads them."""
        self.backend, self._needs_sync, self._sync = backend, needs_sync, sync
        self.error: BaseException | None = None
        self._pending: list[_Job] = []
        self._running: dict[str, _Job] = {}
        self._cv = threading.Condition()
        self._ids = count()
        self._thread = threading.Thread(target=self._loop, name="rlvr-engine-loop", daemon=True)
        self._thread.start()

    def submit(self, prompts: list[str], sampling: SamplingConfig) -> Future[tuple[Groups, float]]:
        job = _Job(f"r{next(self._ids)}", prompts, sampling)
        with self._cv:
            if self.error is not None:
                job.future.set_exception(RuntimeError(f"generator engine is broken: {self.error!r}"))
                return job.future
            self._pending.append(job)
            self._cv.notify()
        return job.future

    def _loop(self) -> None:
        from rlvr.cpu_threads import adopt_thread_count

        adopt_thread_count()  # this thread runs the engine: same OpenMP count as the replica's process
        while True:
            with self._cv:
                while not self._pending and not self._running:
                    self._cv.wait()
                new, self._pending = self._pending, []
            try:
                if new:
                    new = self._admit(new)
                if self._running:
                    self._finish(self.backend.step())
            except BaseException as e:  # the engine is wedged: fail everything now, never retry into it
                log.exception("generator engine failed")
                self._fail_all(e)
                return

    def _admit(self, new: list[_Job]) -> list[_Job]:
        """Add `new` to the engine, after a weight load if one is due; returns the jobs held back."""
        if self._needs_sync():
            if self._running:  # drain first: weights change only between batches
                with self._cv:
                    self._pending = new + self._pending
                return new
            t0 = time.perf_counter()
            self._sync()
            load_s = time.perf_counter() - t0
        else:
            load_s = 0.0
        for job in new:
            job.started = time.perf_counter() - load_s  # the request that waited for the load pays for it
            try:
                self.backend.add(job.job_id, job.prompts, job.sampling)
            except Exception as e:  # noqa: BLE001 - this request's own fault, the engine is fine
                job.future.set_exception(e)
                continue
            self._running[job.job_id] = job
        return []

    def _finish(self, done: list[tuple[str, Groups]]) -> None:
        for job_id, groups in done:
            job = self._running.pop(job_id)
            job.future.set_result((groups, time.perf_counter() - job.started))

    def _fail_all(self, e: BaseException) -> None:
        with self._cv:
            self.error = e
            jobs = list(self._running.values()) + self._pending
            self._running, self._pending = {}, []
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(RuntimeError(f"generator engine failed: {type(e).__name__}: {e}"))
