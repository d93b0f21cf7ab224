"""The `format` verifier: is the answer in a non-empty `\\boxed{...}`?

In: a response (the ground truth and row metadata are ignored). Out: reward 1 when the response's last
`\\boxed{` opens a brace-balanced, non-blank box, else 0 (status no_answer). It judges the form only, never
the value: combine it with a correctness verifier as a weighted bonus (`applies_to: all`, see
`rlvr.rewards`). Bounded work: a single scan over at most the response's last `MAX_SCAN_CHARS` characters.
"""

from __future__ import annotations

from typing import Any

from rlvr.types import VerifierResult, VerifyStatus
from rlvr.verifiers.base import register_verifier

MAX_SCAN_CHARS = 100_000
_OPEN = "\\boxed{"


def last_boxed(response: str) -> str | None:
    """The content of the last `\\boxed{...}` (nested braces allowed), or None if none closes."""
    text = response[-MAX_SCAN_CHARS:]
    idx = text.rfind(_OPEN)
    if idx < 0:
        return None
    depth = 0
    start = idx + len(_OPEN) - 1  # at the opening brace
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1 : i]
    return None


class FormatVerifier:
    self_guarded = True  # one bounded string scan, safe in-process

    def verify(self, response: str, ground_truth: str, **_metadata: Any) -> VerifierResult:
        content = last_boxed(response)
        if content is None:
            return VerifierResult(0.0, False, status=VerifyStatus.NO_ANSWER, reason="no closed \\boxed{}")
        if not content.strip():
            return VerifierResult(0.0, False, status=VerifyStatus.NO_ANSWER, reason="empty \\boxed{}")
        return VerifierResult(1.0, True, extracted=content.strip())


register_verifier("format")(FormatVerifier())
