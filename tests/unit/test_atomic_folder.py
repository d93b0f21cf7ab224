"""Model folders (tiny build, GGUF import, shipped folders) appear whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlvr.models.atomic import atomic_folder

pytestmark = pytest.mark.unit


def test_a_failed_write_leaves_the_old_folder_and_no_temporary(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    with atomic_folder(dest) as tmp:
        (tmp / "weights").write_text("v1")
    assert (dest / "weights").read_text() == "v1" and oct(dest.stat().st_mode & 0o777) == "0o755"
    with pytest.raises(RuntimeError, match="disk full"), atomic_folder(dest) as tmp:
        (tmp / "weights").write_text("half")
        raise RuntimeError("disk full")
    assert (dest / "weights").read_text() == "v1"
    with atomic_folder(dest) as tmp:
        (tmp / "other").write_text("v2")
    assert sorted(p.name for p in dest.iterdir()) == ["other"]  # replaced, not merged
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary folder left behind
