"""Where learner checkpoints live: `trainer.storage` (a local path, a shared mount, or a pyarrow URI such as
`s3://bucket/prefix` or `gs://bucket/prefix`), or the run directory when unset.

In: the config and the run directory. Out: `Storage` (the pyarrow filesystem and the path in it) that Ray
Train's `RunConfig(storage_path=..., storage_filesystem=...)` takes, the URI of a saved checkpoint, the
newest checkpoint under a storage root, and a local copy of a remote checkpoint for resuming. A run's
checkpoints go to `<storage>/<run name>/learner/checkpoint_NNNNNN`. Never deletes anything in storage.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rlvr.errors import RlvrUserError

META = "meta.json"  # rlvr.learner.checkpoint.META; repeated so this module imports no torch


def is_uri(spec: str) -> bool:
    return "://" in spec


@dataclass(frozen=True)
class Storage:
    """`fs` is None for a local path (Ray Train then uses the local filesystem)."""

    fs: Any
    path: str
    scheme: str = ""
    query: str = ""

    def uri(self, path: str | None = None) -> str:
        """The URI (or local path) of `path` inside this storage, as `trainer.resume` accepts it."""
        p = self.path if path is None else path
        if not self.scheme:
            return p
        return f"{self.scheme}://{p}" + (f"?{self.query}" if self.query else "")

    def child(self, name: str) -> Storage:
        return Storage(self.fs, f"{self.path.rstrip('/')}/{name}", self.scheme, self.query)


def open_storage(spec: str, key: str = "trainer.storage") -> Storage:
    """A local path or a URI -> `Storage`; a one-line error naming `key` when pyarrow cannot open it."""
    if not is_uri(spec):
        return Storage(None, str(Path(spec).expanduser().resolve()))
    import pyarrow.fs as pafs

    try:
        fs, path = pafs.FileSystem.from_uri(spec)
    except Exception as e:  # pyarrow raises ArrowInvalid/OSError/ValueError by scheme
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RlvrUserError(f"{key}: cannot open '{spec}' ({first})") from e
    parts = urlsplit(spec)
    if parts.scheme == "file":
        return Storage(None, path)  # Ray Train treats a local path as local
    return Storage(fs, path, parts.scheme, parts.query)


def for_run(storage: str | None, run_dir: Path) -> Storage:
    """The storage root of this run's Ray Train experiment (`RunConfig(name='learner')` goes below it)."""
    if not storage:
        return Storage(None, str(Path(run_dir).resolve()))  # today's layout: <run_dir>/learner/...
    return open_storage(storage).child(Path(run_dir).name)


def run_config_kwargs(st: Storage) -> dict[str, Any]:
    return {"storage_path": st.path, "storage_filesystem": st.fs}


def _local_fs(st: Storage) -> Any:
    if st.fs is not None:
        return st.fs
    import pyarrow.fs as pafs

    return pafs.LocalFileSystem()


def read_meta(st: Storage, ckpt_path: str) -> dict[str, Any] | None:
    import pyarrow.fs as pafs

    fs = _local_fs(st)
    meta = f"{ckpt_path.rstrip('/')}/{META}"
    if fs.get_file_info(meta).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(meta) as f:
        return dict(json.loads(f.read().decode()))


def newest_checkpoint(st: Storage) -> str | None:
    """Path (inside `st`) of the checkpoint with the highest step under the root, then the newest."""
    import pyarrow.fs as pafs

    fs = _local_fs(st)
    if fs.get_file_info(st.path).type != pafs.FileType.Directory:
        return None
    found = []
    for info in fs.get_file_info(pafs.FileSelector(st.path, recursive=True)):
        parent, _, name = info.path.rpartition("/")
        if name == META and parent.rpartition("/")[2].startswith("checkpoint_"):
            step = int((read_meta(st, parent) or {}).get("step", 0))
            found.append((step, info.mtime_ns or 0, parent))
    return max(found)[2] if found else None


def download(st: Storage, ckpt_path: str) -> str:
    """A local copy of a checkpoint in remote storage (removed when this process exits)."""
    import pyarrow.fs as pafs

    local = Path(tempfile.mkdtemp(prefix="rlvr-resume-"))
    atexit.register(shutil.rmtree, local, True)
    dest = local / ckpt_path.rstrip("/").rpartition("/")[2]
    pafs.copy_files(
        ckpt_path, str(dest), source_filesystem=st.fs, destination_filesystem=pafs.LocalFileSystem()
    )
    return str(dest)


def resolve_resume_spec(spec: str, storage: str | None, output_dir: str) -> str:
    """`trainer.resume` -> a local checkpoint folder: 'latest' searches `trainer.storage` (or the output
    dir), a URI is downloaded, a path is checked. Learners on other nodes get it via `rlvr.models.shipping`."""
    if spec == "latest":
        key = "trainer.storage" if storage else "trainer.output_dir"
        st = open_storage(storage or output_dir, key)
        found = newest_checkpoint(st)
        if found is None:
            raise RlvrUserError(f"trainer.resume=latest: no checkpoint under {st.uri()}")
    else:
        st = open_storage(spec, "trainer.resume")
        found = st.path
        if read_meta(st, found) is None:
            raise RlvrUserError(f"trainer.resume: '{spec}' is not a learner checkpoint (no meta.json)")
    return found if st.fs is None else download(st, found)
