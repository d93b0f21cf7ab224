"""Shared fixtures: one local Ray cluster for the whole session, and the ../shared data path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (test data). Missing on a user's clone: the tests that need it skip, with one line naming
    the folder; under CI=true they fail instead, so CI always runs them."""
    if not SHARED.exists():
        msg = f"needs the test data folder {SHARED} (not part of the repository)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg)
        pytest.skip(msg)
    return SHARED


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[dict]:
    """A local Ray cluster bound to loopback, shared by every e2e test."""
    import ray

    from rlvr.cluster import start_local_for_tests

    info = start_local_for_tests(num_cpus=float(os.environ.get("RLVR_TEST_CPUS", "4")))
    try:
        yield info
    finally:
        ray.shutdown()
