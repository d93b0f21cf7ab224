"""One distribution, one import root: rlvr.algorithms and rlvr.verifiers, never top-level names."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit


def test_import_root():
    import rlvr
    import rlvr.algorithms
    import rlvr.verifiers

    assert rlvr.algorithms.__name__ == "rlvr.algorithms"
    assert {"grpo", "psr", "nsr", "w_reinforce", "simko"} <= set(rlvr.algorithms.available())
    assert {"math", "logic", "countdown"} <= set(rlvr.verifiers.available())
    assert callable(rlvr.register_verifier) and callable(rlvr.register_algorithm)


def test_built_wheel_has_one_import_root(tmp_path):
    """`pip wheel .` maps algorithms/ and verifiers/ under rlvr/, and they import from the unpacked wheel."""
    repo = Path(__file__).resolve().parents[2]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(repo),
        ],
        check=True,
        timeout=300,
        cwd=tmp_path,
    )
    wheel = next(tmp_path.glob("rlvr-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "rlvr/algorithms/simko.py" in names and "rlvr/verifiers/math.py" in names
    assert "rlvr/conf/algorithms/simko.yaml" in names
    assert not any(n.startswith(("algorithms/", "verifiers/")) for n in names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = "import rlvr.algorithms as a, rlvr.verifiers as v; print(a.__file__); print(v.get('math'))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(site)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith(str(site))
