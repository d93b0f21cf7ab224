"""In-process fast path of the math verifier: decide without parsing when the label is certain.

`forced_boxed(response, opts)`: the single boxed content math_verify would be forced onto, or None. Then
`fast_label(content, gold, *signature)` (the gold's cached signature from `math_ops.gold_signature`):
`(label, extracted)` or None (go to math_verify). It fires only when math_verify's own extraction is
forced onto a single `\\boxed{...}`: latex matching on, \\boxed ranked above every anchor that could be
present (no "final answer" phrase), exactly one \\boxed and no LaTeX, braces, % or ^ after it, and (with
`reject_hedged`) no other value offered beside it. Then
- plain integer vs plain integer gold: math_verify compares two sympy Integers, i.e. exact equality;
- content identical to the gold, and `\\boxed{gold}` was verified correct once: the same parse follows.
Anything else returns None. It never evaluates anything.
"""

from __future__ import annotations

import re

from rlvr.verifiers.math_hedge import hedged
from rlvr.verifiers.math_ops import MathOptions, bare_gold

_INT = re.compile(r"-?(?:0|[1-9]\d{0,14})")
_FINAL = re.compile(r"final answer", re.IGNORECASE)
# After the box: anything that could attach to it (units, percent, degrees, more LaTeX) sends us to math_verify.
_TRAILING = re.compile(r"[{}\\%^]|percent|pct", re.IGNORECASE)


def _single_boxed(response: str) -> str | None:
    if response.count("\\boxed") != 1 or "\\fbox" in response or _FINAL.search(response):
        return None
    start = response.index("\\boxed") + len("\\boxed")
    if start >= len(response) or response[start] != "{":
        return None
    depth = 0
    for i in range(start, min(len(response), start + 2000)):
        ch = response[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return None if _TRAILING.search(response[i + 1 :]) else response[start + 1 : i]
    return None


def forced_boxed(response: str, opts: MathOptions) -> str | None:
    """The single \\boxed content that math_verify's extraction is forced onto, or None. When it is not
    None, the label depends only on (content, gold, options): results can be cached by that key."""
    if "latex" not in opts.match_types or "string" in opts.match_types:
        return None
    if opts.extraction not in ("boxed_first", "answer_is"):
        return None
    content = _single_boxed(response)
    if content is None or (opts.reject_hedged and hedged(response, content.strip()) is not None):
        return None  # a hedge ("either 53 or \\boxed{52}") is the slow path's to mark
    return content.strip()


def fast_label(content: str, gold: str, gold_int: int | None, boxed_gold_ok: bool) -> tuple[bool, str] | None:
    """The label of `content` (what `forced_boxed` returned) without math_verify, or None when it needs it."""
    if gold_int is not None and _INT.fullmatch(content):
        return int(content) == gold_int, content
    if boxed_gold_ok and content == bare_gold(gold):
        return True, content
    return None
