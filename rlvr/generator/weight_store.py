"""`WeightStore`: a named Ray actor that remembers the newest policy weights.

In: `publish(version, [ref])` from the learner, where `ref` is an ObjectRef to a state dict of
numpy arrays (or tensors) already in the object store. Out: `latest() -> (version, [ref]) | None`
for generator replicas that pull. It re-puts the weights so that it owns them: they outlive the
publisher (a finished or restarted learner). It never accepts an older or equal version. Refs are
wrapped in a list so Ray passes the reference, not the value; a new publish drops the old copy.
`wait_newer(version, timeout_s)` blocks until a newer version lands, so the controller's weight gate
reacts at once instead of polling (the actor runs several threads, see `get_or_create_store`).
"""

from __future__ import annotations

import threading
from typing import Any

import ray

DEFAULT_NAME = "rlvr-weight-store"


@ray.remote(num_cpus=0)
class WeightStore:
    def __init__(self) -> None:
        self._version = -1
        self._ref: list[Any] | None = None
        self._changed = threading.Condition()

    def publish(self, version: int, state_ref: list[Any]) -> int:
        if version <= self._version:
            raise ValueError(f"weight version {version} is not newer than the stored {self._version}")
        if not (
            isinstance(state_ref, list) and len(state_ref) == 1 and isinstance(state_ref[0], ray.ObjectRef)
        ):
            raise TypeError("publish(version, [ref]): pass the ObjectRef inside a one-element list")
        # Own a copy: an object owned by the publishing learner dies with it (end of run, worker
        # restart), and replicas that pull later would get OwnerDiedError.
        own = [ray.put(ray.get(state_ref[0], timeout=300))]
        with self._changed:
            if version <= self._version:  # a concurrent publish won
                raise ValueError(f"weight version {version} is not newer than the stored {self._version}")
            self._version, self._ref = version, own
            self._changed.notify_all()
        return version

    def latest(self) -> tuple[int, list[Any]] | None:
        with self._changed:
            return None if self._ref is None else (self._version, self._ref)

    def version(self) -> int:
        return self._version

    def wait_newer(self, version: int, timeout_s: float) -> int:
        """The stored version once it is newer than `version`, or the current one after `timeout_s`."""
        with self._changed:
            self._changed.wait_for(lambda: self._version > version, timeout=timeout_s)
            return self._version


def get_or_create_store(name: str = DEFAULT_NAME, namespace: str | None = None) -> Any:
    """The named store, created on first use. Not detached: it dies with the driver that made it, so a
    new run never inherits an old run's version counter."""
    # Several threads: `wait_newer` blocks one while publish and the replicas' reads go on.
    opts = {"name": name, "namespace": namespace, "get_if_exists": True, "max_concurrency": 8}
    return WeightStore.options(**opts).remote()  # type: ignore[attr-defined]


def to_numpy_state(state: dict[str, Any]) -> dict[str, Any]:
    """CPU numpy copies (zero-copy reads from the object store); bfloat16 stays a torch tensor."""
    import torch

    out: dict[str, Any] = {}
    for k, v in state.items():
        t = v.detach().cpu() if isinstance(v, torch.Tensor) else v
        out[k] = (
            t
            if isinstance(t, torch.Tensor) and t.dtype == torch.bfloat16
            else getattr(t, "numpy", lambda t=t: t)()
        )
    return out


def publish_weights(store: Any, version: int, state: dict[str, Any], timeout_s: float = 60.0) -> int:
    """Put `state` in the object store and publish it as `version`; returns the version."""
    ref = ray.put(to_numpy_state(state))
    return int(ray.get(store.publish.remote(version, [ref]), timeout=timeout_s))
