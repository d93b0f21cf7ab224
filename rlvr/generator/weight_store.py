"""`WeightStore`: a named Ray actor that remembers the newest policy weights and their epoch.

In: from the learner, `publish_weights(store, version, state, new_epoch=False, lend=True)`. The state is
cut into bounded chunks (`weight_chunks`), each `ray.put` once by the publisher, and `commit_refs` makes
those refs the newest weights: the store only borrows them, so the weights exist once in the object
store. A borrowed object lives while its owner (the publishing process) does; a publisher that exits
while replicas may still need its last version calls `adopt()` first, which gives the store its own copy
of the newest weights (one copy per run, not per step). A publisher that dies without adopting (a crashed
learner) loses its last version: replicas keep the weights they have until a newer version lands (the
restarted learner republishes under a new epoch). `lend=False` keeps the copying path: each chunk is
staged (`stage`, the store re-puts it so that the store owns it) and freed by the publisher before the
next one, then `commit`; `publish(version, [ref, ...], new_epoch)` is its one-call form for refs
already in the object store. Out: `latest_tagged() -> (epoch, version, refs)` (and `latest() ->
(version, refs)`) for generator replicas that pull.

Why lending needs `adopt`: Ray 2.56+ has no `ray.put(_owner=...)`, so an object is owned by whoever put it
and dies with that process. A new commit drops the previous refs (a replica still reading them holds its
own reference); a lent publish drops them before its chunks are put (`make_room`) and, for a state of at
least `RELEASE_WAIT_MIN_BYTES`, waits until they are freed, so two versions do not share the object store
(unless such waits keep timing out: see `RELEASE_WAIT_MAX_TIMEOUTS`).
Versions must grow within an epoch; `new_epoch=True` (a learner restarted from a
checkpoint) bumps the epoch and accepts any version. `wait_newer` blocks until a newer version or a new
epoch lands (the actor runs several threads, see `get_or_create_store`).
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

import ray

from rlvr.generator.object_store import bytes_used, wait_for_release
from rlvr.generator.weight_chunks import DEFAULT_CHUNK_BYTES, encode_chunks

log = logging.getLogger(__name__)
DEFAULT_NAME = "rlvr-weight-store"
# Below this size a lent publish does not wait for the replaced version to leave the object store: a
# second copy that small costs nothing, while the wait (polling the raylet's stats) cost the tiny model
# 0.4 s of every 1 s step (py-spy on the learner, vs_trl.py's tiny task, sync mode).
RELEASE_WAIT_MIN_BYTES = 64 * 2**20
# Per publishing process: after RELEASE_WAIT_MAX_TIMEOUTS waits in a row timed out, it stops waiting. A
# wait that never succeeds protects nothing: every 0.5B bf16 publish of generation_throughput.py on a
# 2-core AMD EPYC waited the full 2 s (sync 3.3 s against 0.8 s without the wait).
RELEASE_WAIT_MAX_TIMEOUTS = 2
_release_wait = {"timeouts": 0}


@ray.remote(num_cpus=0)
class WeightStore:
    def __init__(self) -> None:
        self._epoch = 0
        self._version = -1
        self._refs: list[Any] | None = None
        self._staged: dict[str, list[Any]] = {}
        self._borrowed = False  # the newest refs are owned by their publisher (see `adopt`)
        self._changed = threading.Condition()

    def check(self, version: int, new_epoch: bool = False) -> None:
        """Raise ValueError when `version` would be refused (so a publisher can skip sending it)."""
        if not new_epoch and version <= self._version:
            raise ValueError(f"weight version {version} is not newer than the stored {self._version}")

    def make_room(self, version: int, new_epoch: bool = False) -> bool:
        """Before a lent publish of `version`: check it, then drop the refs of the version it replaces, so
        its copy is freed before the new chunks are put (the object store held both, one extra copy of the
        weights, at every publish). Replicas keep the weights they loaded, and a replica reading the old
        version holds its own refs; until the commit, `latest_tagged` says there is nothing newer to load.
        Returns whether refs were dropped."""
        with self._changed:
            self.check(version, new_epoch)
            dropped = self._refs is not None
            self._refs, self._borrowed = None, False
            return dropped

    def stage(self, token: str, chunk_ref: list[Any]) -> int:
        """Take ownership of one chunk of an upcoming commit; returns the chunks staged so far."""
        own = ray.put(ray.get(chunk_ref[0], timeout=300))
        with self._changed:
            self._staged.setdefault(token, []).append(own)
            return len(self._staged[token])

    def commit(self, token: str, version: int, new_epoch: bool = False) -> int:
        with self._changed:
            refs = self._staged.pop(token, None)
            if not refs:
                raise ValueError(f"commit of weight version {version}: nothing was staged under {token}")
            self._set(version, refs, new_epoch, borrowed=False)
        return version

    def commit_refs(self, version: int, refs: list[Any], new_epoch: bool = False) -> int:
        """Make the publisher's chunk refs the newest weights without copying them (see the module doc)."""
        if not (isinstance(refs, list) and refs and all(isinstance(r, ray.ObjectRef) for r in refs)):
            raise TypeError("commit_refs(version, [ref, ...]): pass the ObjectRefs inside a list")
        with self._changed:
            self._set(version, refs, new_epoch, borrowed=True)
        return version

    def _set(self, version: int, refs: list[Any], new_epoch: bool, borrowed: bool) -> None:
        self.check(version, new_epoch)
        self._epoch += int(new_epoch)
        self._version, self._refs, self._borrowed = version, refs, borrowed
        self._changed.notify_all()

    def adopt(self) -> int:
        """Own a copy of the newest weights if they are borrowed (their publisher is about to exit);
        returns their version. Copies chunk by chunk, outside the lock: replicas keep reading meanwhile."""
        with self._changed:
            version, refs, borrowed = self._version, self._refs, self._borrowed
        if not borrowed or refs is None:
            return version
        own = [ray.put(ray.get(r, timeout=300)) for r in refs]
        with self._changed:
            if self._version == version and self._refs is refs:  # nothing newer landed meanwhile
                self._refs, self._borrowed = own, False
        return version

    def publish(self, version: int, state_ref: list[Any], new_epoch: bool = False) -> int:
        """Publish refs already in the object store (one per chunk, or one whole state dict)."""
        if not (
            isinstance(state_ref, list) and state_ref and all(isinstance(r, ray.ObjectRef) for r in state_ref)
        ):
            raise TypeError("publish(version, [ref, ...]): pass the ObjectRefs inside a list")
        self.check(version, new_epoch)  # before copying gigabytes
        token = uuid.uuid4().hex
        for ref in state_ref:
            self.stage(token, [ref])
        return self.commit(token, version, new_epoch)

    def abort(self, token: str) -> None:
        with self._changed:
            self._staged.pop(token, None)

    def latest_tagged(self) -> tuple[int, int, list[Any]] | None:
        with self._changed:
            return None if self._refs is None else (self._epoch, self._version, list(self._refs))

    def latest(self) -> tuple[int, list[Any]] | None:
        tagged = self.latest_tagged()
        return None if tagged is None else (tagged[1], tagged[2])

    def version(self) -> int:
        return self._version

    def epoch(self) -> int:
        return self._epoch

    def wait_newer(self, version: int, timeout_s: float, epoch: int | None = None) -> int:
        """The stored version once it is newer than `version` or the epoch moved on (from `epoch`, or
        from the one current at the call), else the current version after `timeout_s`."""
        with self._changed:
            start = self._epoch if epoch is None else epoch
            self._changed.wait_for(lambda: self._version > version or self._epoch != start, timeout=timeout_s)
            return self._version


def get_or_create_store(name: str = DEFAULT_NAME, namespace: str | None = None) -> Any:
    """The named store, created on first use. Not detached: it dies with the driver that made it, so a
    new run never inherits an old run's version counter."""
    # Several threads: `wait_newer` blocks one while publish and the replicas' reads go on.
    opts = {"name": name, "namespace": namespace, "get_if_exists": True, "max_concurrency": 8}
    return WeightStore.options(**opts).remote()  # type: ignore[attr-defined]


def publish_weights(
    store: Any,
    version: int,
    state: dict[str, Any],
    timeout_s: float = 60.0,
    new_epoch: bool = False,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    lend: bool = False,
) -> int:
    """Send `state` (any dtype, kept as is) chunk by chunk and publish it as `version`. `lend=True`: one copy,
    owned by this process, which must outlive the replicas' reads or call `store.adopt` before exiting."""
    if lend:
        nbytes = state_bytes(state)
        wait = nbytes >= RELEASE_WAIT_MIN_BYTES and _release_wait["timeouts"] < RELEASE_WAIT_MAX_TIMEOUTS
        before = bytes_used() if wait else None
        # A refused version raises here: nothing is sent.
        dropped = ray.get(store.make_room.remote(version, new_epoch), timeout=timeout_s)
        # The replaced version (about this size) should be gone before the new one is put.
        if dropped and wait:
            freed = wait_for_release(before, nbytes)
            _release_wait["timeouts"] = 0 if freed else _release_wait["timeouts"] + 1
            if _release_wait["timeouts"] == RELEASE_WAIT_MAX_TIMEOUTS:
                log.warning(
                    "weight version %d: the replaced version was not freed from the object store in time, "
                    "%d publishes in a row; this process publishes without waiting from now on (two versions "
                    "may briefly coexist)",
                    version,
                    RELEASE_WAIT_MAX_TIMEOUTS,
                )
        refs = [ray.put(chunk) for chunk in encode_chunks(state, chunk_bytes)]
        return int(ray.get(store.commit_refs.remote(version, refs, new_epoch), timeout=timeout_s))
    ray.get(store.check.remote(version, new_epoch), timeout=timeout_s)  # refused: send nothing
    token = uuid.uuid4().hex
    try:
        for chunk in encode_chunks(state, chunk_bytes):
            ref = ray.put(chunk)
            ray.get(store.stage.remote(token, [ref]), timeout=timeout_s)
            del ref  # the store holds its own copy now: free ours before the next chunk
        return int(ray.get(store.commit.remote(token, version, new_epoch), timeout=timeout_s))
    except BaseException:
        store.abort.remote(token)
        raise


def state_bytes(state: dict[str, Any]) -> int:
    """Bytes of the tensors in `state` (what one version of it takes in the object store, about)."""
    return sum(int(v.numel() * v.element_size()) for v in state.values() if hasattr(v, "element_size"))
