"""A model folder written in full or not at all.

In: the folder's final path. Out (`atomic_folder`): a private temporary folder beside it to write into;
when the block ends without an error it becomes the final folder in one rename (an older one is
replaced), and after an error it is removed. A reader (another replica, rank or run on the node) never
sees a half-written folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_folder(dest: Path) -> Iterator[Path]:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp makes it private; the result is a normal folder
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
