"""All 270 cases of math_verify's own suite, through our verifier path (fast path, caches, child process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rlvr.verifiers import get

pytestmark = pytest.mark.unit

SUITE = Path("conformance") / "math_verify_suite.jsonl"  # under ../shared


def case_kwargs(case: dict[str, Any]) -> dict[str, Any]:
    """Translate a case's harness config into math-verifier options."""
    config = case["config"]
    # require_evaluated and reject_hedged are rlvr's own rules on top of math_verify: off, to compare with
    # math_verify alone.
    own = {"require_evaluated": False, "reject_hedged": False}
    if config["harness"] == "verify":  # verify(parse(gold), parse(pred)): math_verify's default extraction
        return {"extraction": "answer_is", "match_types": ["latex", "expr"], **own}
    assert config["harness"] == "compare_strings", config
    kwargs = {
        k: case["params"][v.split(":", 1)[1].rstrip(">")]
        if isinstance(v, str) and v.startswith("<param:")
        else v
        for k, v in config["kwargs"].items()
    }
    # compare_strings uses LatexExtractionConfig(boxed_match_priority=0), i.e. our boxed_first.
    out: dict[str, Any] = {
        "extraction": "boxed_first",
        "match_types": kwargs.pop("match_types"),
        **own,
    }
    out.update(kwargs)  # precision, strict, allow_set_relation_comp
    return out


def load(shared_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (shared_dir / SUITE).read_text().splitlines() if line.strip()]


def test_all_270_cases_agree(shared_dir: Path) -> None:
    cases = load(shared_dir)
    assert len(cases) == 270
    verifier = get("math")
    disagreements = []
    for case in cases:
        result = verifier.verify(case["pred"], case["gold"], timeout_s=20, **case_kwargs(case))
        if result.correct != bool(case["expected"]):
            disagreements.append((case["test"], case["line"], case["gold"][:60], case["pred"][:60], result))
    agree = len(cases) - len(disagreements)
    assert agree == 270, f"{agree}/270 agree; first disagreements: {disagreements[:5]}"


def test_require_evaluated_changes_only_arithmetic_left_undone(shared_dir: Path) -> None:
    """rlvr's defaults differ from math_verify on exactly the suite's two answers that leave the
    arithmetic to the grader (reject_hedged changes none); every other label, right or wrong, is math_verify's."""
    verifier = get("math")
    changed = []
    for case in load(shared_dir):
        kwargs = {**case_kwargs(case), "require_evaluated": True, "reject_hedged": True}
        result = verifier.verify(case["pred"], case["gold"], timeout_s=20, **kwargs)
        if result.correct != bool(case["expected"]):
            changed.append((case["gold"], case["pred"], case["expected"], result.reason))
    assert changed == [
        ("$10$", r"Answer \( (9+1) \)", True, "arithmetic left undone: 9+1"),
        ("$1$", r"$\frac3{3} $", True, r"division left undone: \frac{3}{3}"),
    ]
