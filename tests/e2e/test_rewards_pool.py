"""Composed rewards through a real VerifierPool: plan.items -> verify_batch -> plan.combine.

Covers what unit tests cannot: the reward keys (weight, applies_to) never reach a verifier as options,
and the reasoning_gym verifier (third-party scoring, run in the pool's guarded child) gets its row metadata.
"""

from __future__ import annotations

import pytest

from rlvr.config import load_config
from rlvr.data.procedural import generate
from rlvr.rewards import RewardPlan
from rlvr.types import Prompt, Sample, VerifierResult
from rlvr.verifier_pool import VerifierPool
from rlvr.verifiers import register_verifier

pytestmark = pytest.mark.e2e


@register_verifier("e2e_strict_exact", override=True)
def strict_exact(response: str, ground_truth: str, *, strip: bool = True) -> VerifierResult:
    """No **kwargs: any unexpected keyword (weight, applies_to) would be a TypeError."""
    ok = (response.strip() if strip else response) == ground_truth
    return VerifierResult(float(ok), ok)


def _row(prompt: Prompt, text: str, gid: str) -> tuple[Prompt, Sample, str]:
    return prompt, Sample([1], [2, 3], text, [0.0, 0.0], "stop", 0), gid


def test_weighted_components_through_the_pool(ray_cluster) -> None:
    pytest.importorskip("reasoning_gym", reason="reasoning-gym is not installed")
    cfg = load_config(
        [
            "verifiers=[math,format,reasoning_gym]",
            "verifiers.specs.format.weight=0.5",
            "+verifiers.specs.e2e_strict_exact.weight=2.0",
            # The guarded child imports reasoning_gym on its first check: slow on a loaded 2-core machine
            # (it overran 10 s once), and a time-out is not what this test is about.
            "verifiers.specs.reasoning_gym.timeout_s=120",
        ]
    )
    pool_timeout_s = 300
    plan = RewardPlan.from_config(cfg.verifiers)
    specs = {name: spec.model_dump() for name, spec in cfg.verifiers.specs.items()}
    pool = VerifierPool(specs, pool_size=1, num_cpus=0.25, request_timeout_s=pool_timeout_s)
    try:
        rg = generate("reasoning_gym/leg_counting", 1, 0)[0]
        math_p = Prompt(text="2+2=", ground_truth="4", data_source="math")
        exact_p = Prompt(text="say hi", ground_truth="hi", data_source="e2e_strict_exact")
        rows = [
            _row(math_p, "so \\boxed{4}", "g0"),
            _row(math_p, "it is 5", "g0"),
            _row(rg, f"<answer>{rg.ground_truth}</answer>", "g1"),
            _row(rg, f"\\boxed{{{rg.ground_truth}}}", "g1"),
            _row(exact_p, " hi ", "g2"),
        ]
        results = pool.verify_batch(plan.items(rows))
        assert all(r.status.value in ("ok", "no_answer") for r in results), [r.reason for r in results]
        out, means = plan.combine(rows, results)
    finally:
        pool.shutdown()
    assert [r.correct for r in out] == [True, False, True, True, True]
    assert [r.reward for r in out] == pytest.approx([1.5, 0.0, 1.0, 1.5, 2.0])
    assert means == pytest.approx(
        {
            "reward/math": 0.5,
            "reward/format": 2 / 5,
            "reward/reasoning_gym": 1.0,
            "reward/e2e_strict_exact": 1.0,
        }
    )
