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
    if not SHARED.exists():
        pytest.fail(f"test data folder {SHARED} is missing")
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
