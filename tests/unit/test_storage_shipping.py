"""Checkpoint storage (local paths and pyarrow URIs) and the folder shipping helpers, without Ray."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from rlvr.config import load_config
from rlvr.errors import RlvrUserError
from rlvr.learner.launcher import resolve_resume
from rlvr.learner.storage import Storage, for_run, newest_checkpoint, open_storage, resolve_resume_spec
from rlvr.models import shipping

pytestmark = pytest.mark.unit


def _ckpt(root: Path, run: str, step: int) -> Path:
    d = root / run / "learner" / f"checkpoint_{step:06d}"
    (d / "hf").mkdir(parents=True)
    (d / "hf" / "model.safetensors").write_bytes(b"w" * 10)
    (d / "meta.json").write_text(json.dumps({"step": step, "weight_version": step}))
    return d


def test_default_storage_is_the_run_dir(tmp_path):
    st = for_run(None, tmp_path / "run1")
    assert st.fs is None and st.path == str((tmp_path / "run1").resolve())
    assert st.uri() == st.path


def test_storage_uri_round_trips_and_resume_latest_downloads(tmp_path):
    _ckpt(tmp_path / "store", "run-a", 2)
    newest = _ckpt(tmp_path / "store", "run-b", 5)
    # A URI storage goes through pyarrow; file:// is the one this machine can test without a bucket.
    st = open_storage(f"file://{tmp_path / 'store'}")
    assert newest_checkpoint(st) == str(newest)
    local = resolve_resume_spec("latest", f"file://{tmp_path / 'store'}", "unused")
    assert (
        Path(local, "meta.json").is_file() and json.loads(Path(local, "meta.json").read_text())["step"] == 5
    )
    remote = Storage(object(), "bucket/prefix/run", "s3", "region=eu")
    assert remote.uri("bucket/prefix/run/learner/checkpoint_000001") == (
        "s3://bucket/prefix/run/learner/checkpoint_000001?region=eu"
    )
    s3 = for_run("s3://bucket/prefix?region=eu-west-1", tmp_path / "r1")  # region given: no network call
    assert (s3.path, s3.uri()) == ("bucket/prefix/r1", "s3://bucket/prefix/r1?region=eu-west-1")


def test_resume_reads_trainer_storage(tmp_path):
    _ckpt(tmp_path / "store", "run-x", 3)
    cfg = load_config([f"trainer.storage={tmp_path / 'store'}", "trainer.resume=latest"])
    found = resolve_resume(cfg)
    assert found is not None and found.endswith("run-x/learner/checkpoint_000003")
    cfg = load_config([f"trainer.output_dir={tmp_path / 'empty'}", "trainer.resume=latest"])
    with pytest.raises(RlvrUserError, match="trainer.resume=latest"):
        resolve_resume(cfg)
    with pytest.raises(RlvrUserError, match=r"trainer.resume: .* \(no meta.json\)"):
        resolve_resume_spec(str(tmp_path), None, str(tmp_path))


def test_unknown_storage_scheme_is_one_line_error():
    with pytest.raises(RlvrUserError, match="^trainer.storage: cannot open 'nosuch://x/y'") as e:
        open_storage("nosuch://x/y")
    assert "\n" not in str(e.value)


def test_pack_unpack_round_trip_and_fingerprint(tmp_path, monkeypatch):
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    (src / "config.json").write_text("{}")
    (src / "sub" / "w.bin").write_bytes(os.urandom(64))
    fp = shipping.fingerprint(str(src))
    assert fp == shipping.fingerprint(str(src)) and shipping.fingerprint(str(tmp_path / "none")) is None
    dest = tmp_path / "cache" / fp / "model"
    shipping.unpack(shipping.pack(str(src)), dest)
    assert (dest / shipping.DONE).exists()
    assert (dest / "sub" / "w.bin").read_bytes() == (src / "sub" / "w.bin").read_bytes()
    (src / "config.json").write_text('{"changed": 1}')
    os.utime(src / "config.json", ns=(1, 1))
    assert shipping.fingerprint(str(src)) != fp  # a rebuilt model is fetched again


def test_unpack_refuses_paths_outside_the_folder(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(tarfile.TarError):
        shipping.unpack(buf.getvalue(), tmp_path / "c" / "m")
    assert not (tmp_path / "c" / "escape.txt").exists()


def test_local_path_passthrough_and_missing_without_ray(tmp_path, monkeypatch):
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # an earlier test may have left one running
    assert shipping.local_path("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"  # hub names are not shipped
    assert shipping.local_path(str(tmp_path)) == str(tmp_path)
    with pytest.raises(RlvrUserError, match="^model.path: .* does not exist"):
        shipping.local_path(str(tmp_path / "missing"))
