"""`release_free_heap`: a trim after freeing only a little is skipped (it walks every arena)."""

from __future__ import annotations

import ctypes.util

import pytest

from rlvr.heap import TRIM_MIN_BYTES, release_free_heap

pytestmark = pytest.mark.unit
glibc = pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="no C library to trim")


def test_a_small_free_is_not_trimmed() -> None:
    assert release_free_heap(TRIM_MIN_BYTES - 1) is False
    assert release_free_heap(0) is False


@glibc
def test_a_large_free_or_an_unsized_call_trims() -> None:
    has_trim = release_free_heap()
    assert release_free_heap(TRIM_MIN_BYTES) is has_trim
