"""The runtime environment that ships rlvr's code to a remote Ray cluster.

In: the user's `cluster.runtime_env`. Out: a runtime_env dict whose `py_modules` holds a staged copy
of the `rlvr` package laid out as installed (rlvr/, rlvr/algorithms, rlvr/verifiers). Never uploads a
virtualenv, run outputs, caches, or VCS data.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

EXCLUDES = [
    ".venv",
    "venv",
    ".git",
    "runs",
    "outputs",
    "__pycache__",
    "*.pyc",
    "*.egg-info",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "*.safetensors",
    "*.bin",
    "*.pt",
]


def stage_package(dest: Path | None = None) -> Path:
    """Copy the importable rlvr package (with its mapped subpackages) into `dest`/rlvr."""
    import rlvr
    import rlvr.algorithms
    import rlvr.verifiers

    dest = dest or Path(tempfile.mkdtemp(prefix="rlvr-pkg-"))
    target = dest / "rlvr"
    ignore = shutil.ignore_patterns(*EXCLUDES)
    shutil.copytree(Path(rlvr.__path__[0]), target, ignore=ignore, dirs_exist_ok=True)
    # algorithms/ and verifiers/ live outside rlvr/ in the source tree (package-dir mapping).
    for sub in (rlvr.algorithms, rlvr.verifiers):
        name = sub.__name__.rsplit(".", 1)[-1]
        shutil.copytree(Path(sub.__path__[0]), target / name, ignore=ignore, dirs_exist_ok=True)
    return target


def code_runtime_env(user_env: dict[str, Any]) -> dict[str, Any]:
    """Merge the shipped package into the user's runtime_env (user keys win; excludes always apply)."""
    env = dict(user_env)
    env["py_modules"] = [str(stage_package()), *env.get("py_modules", [])]
    if "working_dir" in env:
        env["excludes"] = sorted(set(EXCLUDES) | set(env.get("excludes", [])))
    return env
