"""pass@K estimator against brute-force enumeration of k-subsets."""

from __future__ import annotations

import itertools
from math import comb

import pytest

from rlvr.metrics.passk import default_ks, pass_at_k, pass_at_k_curve

pytestmark = pytest.mark.unit


def brute(n: int, c: int, k: int) -> float:
    samples = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_matches_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute(n, c, k), abs=1e-12)


def test_stable_for_large_n():
    got = pass_at_k(1000, 3, 100)
    assert got == pytest.approx(1 - comb(997, 100) / comb(1000, 100), rel=1e-12)
    assert pass_at_k(1000, 0, 500) == 0.0 and pass_at_k(1000, 600, 500) == 1.0


def test_curve_and_ks():
    assert default_ks(16) == [1, 2, 4, 8, 16]
    assert default_ks(6) == [1, 2, 4, 6]
    assert default_ks(1) == [1]
    curve = pass_at_k_curve([(8, 1), (8, 0), (8, 8)])
    assert list(curve) == [1, 2, 4, 8]
    for k, v in curve.items():
        assert v == pytest.approx((brute(8, 1, k) + 0 + 1) / 3)
    assert pass_at_k_curve([(4, 1), (8, 2)]) == pytest.approx(
        {k: (brute(4, 1, k) + brute(8, 2, k)) / 2 for k in [1, 2, 4]}
    )
    assert pass_at_k_curve([]) == {}


def test_rejects_bad_counts():
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)
