"""How much of Ray's object store is in use, and a bounded wait for a release to take effect.

Ray frees an object some milliseconds after its last reference goes: the borrower tells the owner, then
the owner deletes it. A publisher that puts a new version right after the store dropped the old one
finds the old one still there, and the object store holds both (measured: 256 MiB lent four times grew
plasma to 768 MiB; with the release awaited it stayed at 256 MiB). Ray has no public call for an object
store's usage; this reads the raylet's stats and, if that is unavailable, does not wait.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

# Ray's raylet frees released objects in batches, every `free_objects_period_milliseconds` (1000 by
# default), so a release took about 0.9 s to show, on the learner's path at every lent publish; at 50 ms
# about 0.05 s (benchmarks/release_latency.py, the tiny model, vLLM and HF replicas). Set in the
# environment of every Ray process of a cluster rlvr starts, and of the pods `rlvr deploy render` writes.
FREE_OBJECTS_ENV = {"RAY_free_objects_period_milliseconds": "50"}


@lru_cache(maxsize=4)
def _cluster_state(gcs_address: str) -> Any:
    """One GCS connection per cluster, reused by every poll (a failed connect is not cached)."""
    from ray._private.internal_api import get_state_from_address

    return get_state_from_address(gcs_address)


def bytes_used() -> int | None:
    """Bytes in use in the object store (all nodes), or None where Ray's stats cannot be read."""
    try:
        import ray
        from ray._private.internal_api import get_memory_info_reply

        # This process's cluster, by its GCS address: with None, Ray reads /tmp/ray/ray_current_cluster,
        # which names whichever cluster started last on this machine (possibly one long gone).
        state = _cluster_state(ray.get_runtime_context().gcs_address)
        return int(get_memory_info_reply(state).store_stats.object_store_bytes_used)
    except Exception:  # noqa: BLE001 - a private API: a missing or changed one only skips the wait
        _cluster_state.cache_clear()  # a cluster restarted at the same address gets a fresh connection
        return None


def wait_for_release(before: int | None, nbytes: int, timeout_s: float = 2.0) -> bool:
    """Wait (at most `timeout_s`) until usage is `nbytes` below `before`; True when it got there. A reader
    still holding the old objects keeps them (then this returns False after the timeout)."""
    if before is None or nbytes <= 0:
        return False
    deadline = time.monotonic() + timeout_s
    while True:
        now = bytes_used()
        if now is None or now <= before - 0.9 * nbytes:
            return now is not None
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
