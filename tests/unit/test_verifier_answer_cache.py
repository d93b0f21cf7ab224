"""Repeated final answers within a group are decided once: same forced \\boxed content, same label."""

from __future__ import annotations

import pytest

from rlvr.verifiers.math import MathVerifier

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("right, wrong", [("\\frac{1}{2}", "\\frac{1}{3}"), ("\\sqrt{2}", "2\\sqrt{2}")])
def test_second_identical_answer_hits_the_cache_with_the_same_label(right, wrong):
    v = MathVerifier(timeout_s=10)
    try:
        gold = right
        first = v.verify(f"Some reasoning. So $\\boxed{{{right}}}$.", gold)
        wrong1 = v.verify(f"Other steps entirely. Thus $\\boxed{{{wrong}}}$.", gold)
        assert first.correct and not wrong1.correct
        hits = v.fast_hits
        again = v.verify(f"A different, longer derivation... giving $\\boxed{{{right}}}$.", gold)
        wrong2 = v.verify(f"Yet another path: $\\boxed{{{wrong}}}$.", gold)
        assert again.correct and not wrong2.correct
        assert v.fast_hits == hits + 2 and again.reason == wrong2.reason == "fast path"
        # A response whose extraction is not forced onto one box never uses the cache.
        two_boxes = v.verify(f"$\\boxed{{{wrong}}}$ or maybe $\\boxed{{{right}}}$", gold)
        assert two_boxes.reason != "fast path"
    finally:
        v.close()
