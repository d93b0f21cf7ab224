"""Making a folder that exists on one node (a model, a checkpoint) available on the node a component runs on.

In: a path as the driver saw it. Out: a path that exists on *this* node: the same path when this node sees
it (the driver's node, a shared mount), else a copy fetched through the Ray object store from a node that
has the folder and unpacked into this node's cache (`$RLVR_CACHE` or `~/.cache/rlvr`, under `shipped/`).
Hub names (anything that is not an absolute path) pass through untouched. A folder that no node has is a
one-line `RlvrUserError` naming the config key. Nothing is packed unless a node lacks the folder; a copy
is keyed by the source's fingerprint (file names, sizes, mtimes), so each node fetches it once, and it is
unpacked into a temp dir and renamed under a file lock, so a crash never leaves half a model.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlvr.errors import RlvrUserError
from rlvr.models.atomic import atomic_folder

DONE = ".rlvr-shipped"  # written last: a copy without it is incomplete
PROBE_TIMEOUT_S = 120.0
FETCH_TIMEOUT_S = 1800.0


def shipped_root() -> Path:
    return Path(os.environ.get("RLVR_CACHE") or Path.home() / ".cache" / "rlvr") / "shipped"


def fingerprint(path: str) -> str | None:
    """Identity of the folder at `path` on this node (None when it is not a folder here)."""
    root = Path(path)
    if not root.is_dir():
        return None
    h = hashlib.sha256(str(root).encode())
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def pack(path: str) -> bytes:
    """An uncompressed tar of the folder (weights do not compress; tar keeps the copy cheap)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(path, arcname=".")
    return buf.getvalue()


def unpack(data: bytes, dest: Path) -> None:
    """Unpack into `dest` atomically; the `data` filter refuses links and paths outside the folder."""
    with atomic_folder(dest) as tmp, tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(tmp, filter="data")
        (tmp / DONE).write_text("ok\n")


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # several replicas/ranks on one node fetch once
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pinned(node_id: str) -> dict[str, Any]:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # num_cpus=0: a head that advertises no CPUs (KubeRay's, which runs the driver) still runs it.
    return {"num_cpus": 0, "scheduling_strategy": NodeAffinitySchedulingStrategy(node_id, soft=False)}


def _find_source(path: str, here: str) -> tuple[str, str] | None:
    """(node id, fingerprint) of another alive node that has the folder, or None."""
    import ray

    probe = ray.remote(fingerprint)
    nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive") and n["NodeID"] != here]
    refs = [probe.options(**_pinned(n)).remote(path) for n in nodes]
    for node, fp in zip(nodes, ray.get(refs, timeout=PROBE_TIMEOUT_S), strict=True):
        if fp is not None:
            return node, fp
    return None


def local_path(path: str, what: str = "model.path") -> str:
    """`path` if this node has it (or it is a hub name); else this node's copy, fetched once."""
    p = Path(path)
    if not p.is_absolute() or p.exists():
        return path
    import ray

    if not ray.is_initialized():
        raise RlvrUserError(f"{what}: '{path}' does not exist on this machine")
    here = ray.get_runtime_context().get_node_id()
    source = _find_source(path, here)
    if source is None:
        raise RlvrUserError(
            f"{what}: '{path}' exists on no node of the Ray cluster (use a shared mount, a hub name, "
            "or a folder on the driver's node)"
        )
    node, fp = source
    dest = shipped_root() / fp / (p.name or "root")
    if (dest / DONE).exists():
        return str(dest)
    with _locked(dest.parent / ".lock"):
        if not (dest / DONE).exists():
            ref = ray.remote(pack).options(**_pinned(node)).remote(path)
            unpack(ray.get(ref, timeout=FETCH_TIMEOUT_S), dest)
    return str(dest)
