"""pass@K: the unbiased estimator of Chen et al. (2021) and a K = 1, 2, 4, ..., n curve.

In: per-problem (n samples, c correct) counts. Out: floats in [0, 1]. Pure arithmetic, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n-c, k) / C(n, k), as 1 - prod_{i=n-c+1}^{n} (1 - k/i) (no huge binomials)."""
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def default_ks(n: int) -> list[int]:
    """1, 2, 4, ... up to n, always including n."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return ks + [n] if n >= 1 else []


def pass_at_k_curve(
    per_problem: Sequence[tuple[int, int]], ks: Iterable[int] | None = None
) -> dict[int, float]:
    """Mean pass@K over problems. Default ks = default_ks(smallest n), so every problem supports every K."""
    if not per_problem:
        return {}
    ks = default_ks(min(n for n, _ in per_problem)) if ks is None else sorted(set(ks))
    return {k: sum(pass_at_k(n, c, k) for n, c in per_problem) / len(per_problem) for k in ks}
