"""A persistent child process that runs checks under a hard wall-clock timeout.

In: an operation name and a picklable payload. Out: the child's return value, or `CheckTimeout` /
`WorkerCrashed`. sympy and big-int C code ignore signals, so the only reliable stop is to kill the
process: on timeout the child is killed and a fresh one is started lazily on the next call. The caller
(the verifier, a pool actor) survives. This module never runs model output itself.
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from typing import Any

_HEADER = struct.Struct("!Q")


class CheckTimeout(Exception):
    """A check ran past its wall-clock limit; its process was killed."""


class WorkerCrashed(Exception):
    """The child process died or answered garbage while running a check."""


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            raise CheckTimeout()
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise WorkerCrashed("worker process exited")
        buf += chunk
    return bytes(buf)


class GuardedWorker:
    """Run `rlvr.verifiers.worker_main` ops in a child process; kill it when a call overruns.

    `init_ops` are replayed on every (re)start, e.g. to hand the child pickled custom verifiers.
    Thread-safe: calls are serialised by a lock.
    """

    def __init__(self, init_ops: list[tuple[str, Any]] | None = None, start_timeout_s: float = 120.0) -> None:
        self.init_ops = list(init_ops or [])
        self.start_timeout_s = start_timeout_s
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    # -- process management -------------------------------------------------------------------------
    def _start(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rlvr.verifiers.worker_main"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._proc = proc
        # The start (imports) is not charged to any check: wait for the ready frame on its own clock.
        self._roundtrip(proc, "ping", None, self.start_timeout_s)
        for op, payload in self.init_ops:
            self._roundtrip(proc, op, payload, self.start_timeout_s)
        return proc

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.kill()
            proc.wait(timeout=10)
        except Exception:  # noqa: BLE001 - best effort, the process may be gone already
            pass
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass

    def close(self) -> None:
        with self._lock:
            self._kill()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    # -- calls --------------------------------------------------------------------------------------
    @staticmethod
    def _roundtrip(proc: subprocess.Popen[bytes], op: str, payload: Any, timeout_s: float | None) -> Any:
        assert proc.stdin is not None and proc.stdout is not None
        data = pickle.dumps((op, payload), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            proc.stdin.write(_HEADER.pack(len(data)) + data)
            proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise WorkerCrashed(f"worker pipe closed: {e}") from e
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        fd = proc.stdout.fileno()
        (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
        kind, value = pickle.loads(_read_exact(fd, size, deadline))
        if kind == "err":
            raise WorkerCrashed(str(value))
        return value

    def call(self, op: str, payload: Any, timeout_s: float | None) -> Any:
        """Run one op; on timeout or crash the child is killed (a new one starts on the next call)."""
        with self._lock:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                if proc is not None:
                    self.restarts += 1
                    self._kill()
                proc = self._start()
            try:
                return self._roundtrip(proc, op, payload, timeout_s)
            except CheckTimeout:
                self.restarts += 1
                self._kill()
                raise
            except WorkerCrashed:
                if proc.poll() is not None:
                    self.restarts += 1
                    self._kill()
                raise

    def __del__(self) -> None:
        try:
            self._kill()
        except Exception:  # noqa: BLE001
            pass
