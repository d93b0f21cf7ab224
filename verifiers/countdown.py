"""The `countdown` verifier: does the answer expression reach the target using the given numbers?

In: a response with the expression in `<answer>...</answer>` or `\\boxed{...}` (an optional "= target" tail is
allowed), the target as ground truth, and `numbers` in the row metadata (other metadata is ignored).
Out: reward 1 when the expression uses each given number at most once and equals the target exactly.
Arithmetic goes through `safe_arith.evaluate` (AST walk, exact Fractions, size limits); never eval.
"""

from __future__ import annotations

import re
from collections import Counter
from fractions import Fraction
from typing import Any

from rlvr.types import VerifierResult, VerifyStatus
from rlvr.verifiers.base import register_verifier
from rlvr.verifiers.safe_arith import UnsafeExpression, evaluate

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)


def extract_expression(response: str) -> str | None:
    blocks = _ANSWER.findall(response)
    if blocks:
        return blocks[-1].strip()
    idx = response.rfind("\\boxed{")
    if idx < 0:
        return None
    depth, start = 0, idx + len("\\boxed")
    for i in range(start, len(response)):
        depth += {"{": 1, "}": -1}.get(response[i], 0)
        if depth == 0:
            return response[start + 1 : i].strip()
    return None


def _normalise(expr: str) -> str:
    expr = expr.replace("\\times", "*").replace("\\cdot", "*").replace("\\div", "/").replace("×", "*")
    expr = expr.replace("÷", "/").replace("\\left", "").replace("\\right", "").replace("$", "")
    return expr.split("=")[0].strip()


class CountdownVerifier:
    self_guarded = True  # bounded by safe_arith's size limits
    row_fields = ("numbers",)  # read from the row, not a grading option (rlvr.verifier_kwargs)

    def verify(
        self, response: str, ground_truth: str, *, numbers: Any = None, **_metadata: Any
    ) -> VerifierResult:
        if numbers is None:
            return VerifierResult(
                0.0, False, status=VerifyStatus.ERROR, reason="metadata 'numbers' is missing"
            )
        try:
            target = Fraction(str(ground_truth).strip())
            allowed = Counter(Fraction(int(n)) for n in numbers)
        except (ValueError, TypeError, ZeroDivisionError):
            return VerifierResult(0.0, False, status=VerifyStatus.ERROR, reason="bad target or numbers")
        raw = extract_expression(response)
        if not raw:
            return VerifierResult(
                0.0, False, status=VerifyStatus.NO_ANSWER, reason="no <answer> or \\boxed{}"
            )
        expr = _normalise(raw)
        try:
            value, used = evaluate(expr)
        except ZeroDivisionError:
            return VerifierResult(0.0, False, extracted=expr[:200], reason="division by zero")
        except UnsafeExpression as e:
            return VerifierResult(0.0, False, extracted=expr[:200], reason=f"rejected: {e}")
        over = Counter(used) - allowed
        if over:
            return VerifierResult(
                0.0, False, extracted=expr[:200], reason=f"numbers not available: {sorted(map(str, over))}"
            )
        correct = value == target
        return VerifierResult(float(correct), correct, extracted=expr[:200], reason=f"value {value}")


register_verifier("countdown")(CountdownVerifier())
