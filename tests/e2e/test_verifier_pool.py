"""VerifierPool on a real Ray cluster: batches, a killed actor, adversarial inputs, driver-registered verifiers."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import ray

from rlvr.types import VerifierResult, VerifyStatus
from rlvr.verifier_pool import VerifierPool
from rlvr.verifiers import register_verifier

pytestmark = pytest.mark.e2e
TIMEOUT_S = 2.0
MARGIN_S = 6.0  # Ray round trip + worker respawn on a loaded 2-core machine


@register_verifier("e2e_exact", override=True)
def exact(response: str, ground_truth: str, **metadata) -> VerifierResult:
    ok = response.strip() == ground_truth
    return VerifierResult(float(ok), ok)


@pytest.fixture(scope="module")
def pool(ray_cluster):
    specs = {
        "math": {"timeout_s": TIMEOUT_S},
        "countdown": {"timeout_s": TIMEOUT_S},
        "e2e_exact": {"timeout_s": TIMEOUT_S},
    }
    p = VerifierPool(specs, pool_size=2, num_cpus=0.25, request_timeout_s=60)
    yield p
    p.shutdown()


def _batch(n: int) -> list[tuple]:
    items = []
    for i in range(n):
        items.append(("math", f"so \\boxed{{{i}}}.", str(i if i % 2 else i + 1), {"unique_id": i}))
        items.append(("e2e_exact", "yes", "yes" if i % 3 else "no", {}))
        items.append(("countdown", "<answer>(3 + 5) * 2</answer>", "16", {"numbers": [3, 5, 2]}))
    return items


def test_batch_served_with_stats(pool) -> None:
    items = _batch(10)
    results = pool.verify_batch(items)
    assert len(results) == len(items)
    for (name, response, gold, _), r in zip(items, results, strict=False):
        if name == "math":
            assert r.correct == (response == f"so \\boxed{{{gold}}}.")
        if name == "countdown":
            assert r.correct
    assert sum(r.correct for r, it in zip(results, items, strict=False) if it[0] == "e2e_exact") == 6
    stats = pool.stats()
    assert stats["math"]["ok"] >= 10, (
        stats,
        [r for r, it in zip(results, items, strict=False) if it[0] == "math"],
    )
    assert stats["e2e_exact"]["count"] >= 10 and stats["math"]["mean_latency_s"] > 0


def test_killed_actor_is_replaced(pool) -> None:
    items = _batch(20)
    ray.kill(pool.actors[0], no_restart=True)
    results = pool.verify_batch(items)
    assert len(results) == len(items)
    assert all(r.status == VerifyStatus.OK for r in results)
    assert pool.replaced >= 1


@pytest.mark.parametrize(
    "response",
    [
        r"\boxed{9^{9^{9^9}}}",
        r"\boxed{(10^{10})!}",
        "x" * 1_000_000 + r" \boxed{3}",
        "\\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}",
        "".join(chr(c) for c in range(0x2500, 0x2FFF)) + "\udcff\x00\\boxed{\u202e1}",
    ],
    ids=["tower", "factorial", "1MB", "nested", "unicode"],
)
def test_adversarial_bounded_and_pool_healthy(pool, response: str) -> None:
    start = time.monotonic()
    (result,) = pool.verify_batch([("math", response, "3", {})])
    assert time.monotonic() - start < TIMEOUT_S + MARGIN_S
    assert result.status in (
        VerifyStatus.TIMEOUT,
        VerifyStatus.OK,
        VerifyStatus.NO_ANSWER,
        VerifyStatus.ERROR,
    )
    assert result.reward in (0.0, 1.0)
    (after,) = pool.verify_batch([("math", r"\boxed{3.0}", "3", {})])  # not the fast path: the child
    assert after.correct


def test_code_in_answers_never_runs(pool, tmp_path: Path) -> None:
    target = tmp_path / f"pwned-{uuid.uuid4().hex}"
    evil = f"__import__('os').system('touch {target}')"
    items = [
        ("math", evil, "0", {}),
        ("math", f"\\boxed{{{evil}}}", "0", {}),
        ("countdown", f"<answer>{evil}</answer>", "0", {"numbers": [1]}),
    ]
    results = pool.verify_batch(items)
    assert not any(r.correct for r in results)
    assert not target.exists()
