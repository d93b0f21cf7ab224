"""The math_verify calls behind the math verifier, run inside the guarded child process.

In: a response / gold string and hashable `MathOptions`. Out: plain picklable tuples (label, extracted text).
Everything here may be slow on adversarial input; callers run it under `GuardedWorker`'s hard timeout, so
math_verify's own signal timeouts are switched off (None). Model output only ever reaches math_verify's
parser (latex2sympy with its safe transformations), never eval/exec/sympify.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from rlvr.verifiers.math_form import unevaluated
from rlvr.verifiers.math_hedge import hedged

EXTRACTIONS = ("boxed_first", "answer_is", "last_expression")
MATCH_TYPES = ("latex", "expr", "string")


@dataclass(frozen=True)
class MathOptions:
    """How to extract and compare. Defaults follow math_verify's own `verify` defaults."""

    extraction: str = "boxed_first"
    match_types: tuple[str, ...] = ("latex", "expr")
    precision: int = 6
    strict: bool = True
    allow_set_relation_comp: bool = False
    # Not math_verify's: where the gold is a number written out, so must the answer be (math_form.py).
    require_evaluated: bool = True
    # Nor is math_verify's: where the gold is a single number, "52 or 53" is wrong (math_hedge.py).
    reject_hedged: bool = True


@lru_cache(maxsize=32)
def extraction_config(opts: MathOptions) -> list[Any]:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, StringExtractionConfig

    # boxed_first: \boxed{} outranks every anchor (what math_verify's own test harness uses).
    # answer_is: math_verify's defaults, "final answer is X" outranks \boxed{}.
    # last_expression: \boxed{} gets the plain-expression priority, so the rightmost expression wins
    # among unanchored matches (explicit "answer:" anchors still win).
    boxed_priority = {"boxed_first": 0, "answer_is": 50, "last_expression": 300}[opts.extraction]
    out: list[Any] = []
    for kind in opts.match_types:
        if kind == "latex":
            out.append(LatexExtractionConfig(boxed_match_priority=boxed_priority))
        elif kind == "expr":
            out.append(ExprExtractionConfig())
        elif kind == "string":
            out.append(StringExtractionConfig())
    return out


# Plain-text scientific notation: math_verify's number regex stops at the "e", reading 1.2e3 as 1.2.
# It is rewritten as the plain decimal it denotes (exponents up to 30, so the text stays small).
_SCI = re.compile(r"(?<![\w.\\])(\d+(?:\.\d+)?)[eE]([+-]?\d{1,2})(?!\w|\.\d)")
_MATH_ENV = re.compile(r"\$|\\\[|\\\(|\\boxed|\\begin")


def _expand(m: re.Match[str]) -> str:
    if abs(int(m.group(2))) > 30:
        return m.group(0)
    return format(Decimal(f"{m.group(1)}e{m.group(2)}").normalize(), "f")


def normalise(text: str) -> str:
    return _SCI.sub(_expand, text)


def _parse(text: str, opts: MathOptions) -> list[Any]:
    from math_verify import parse

    from rlvr.verifiers.math_compat import apply

    apply()
    return parse(normalise(text), extraction_config(opts), parsing_timeout=None)  # type: ignore[arg-type]


@lru_cache(maxsize=4096)
def parse_gold(gold: str, opts: MathOptions) -> list[Any]:
    """Gold answers repeat across a group of samples: parse each once.

    Datasets store bare LaTeX (`\\frac12`), which math_verify's latex extraction skips outside a math
    environment (and its expression extraction reads "2, 3" as just 3), so bare gold goes in as `$gold$`.
    """
    if "latex" in opts.match_types and not _MATH_ENV.search(gold):
        # Bare LaTeX gold ("2, 3", "\\pm 2"): read it as one math environment, not as loose text.
        parsed = _parse("$" + gold.strip() + "$", opts)
        if parsed:
            return parsed
    return _parse(gold, opts)


def _verify(gold: list[Any], pred: list[Any], opts: MathOptions) -> bool:
    from math_verify import verify

    return bool(
        verify(
            gold,
            pred,
            float_rounding=opts.precision,
            strict=opts.strict,
            allow_set_relation_comp=opts.allow_set_relation_comp,
            timeout_seconds=None,
        )
    )


def _extracted(parsed: list[Any]) -> str | None:
    if not parsed:
        return None
    text = parsed[-1] if isinstance(parsed[-1], str) else str(parsed[0])
    return text[:200]


def check(response: str, gold: str, opts: MathOptions) -> tuple[bool | None, str | None, bool, str | None]:
    """(label, extracted, gold_parsed, reason). label None means nothing was extracted from the response;
    reason says why an answer of the right value is marked wrong (`require_evaluated`, `reject_hedged`)."""
    gold_parsed = parse_gold(gold, opts)
    pred = _parse(response, opts)
    if not pred:
        return None, None, bool(gold_parsed), None
    label = _verify(gold_parsed, pred, opts)
    why = None
    if label and _single_number(gold_parsed):
        if opts.require_evaluated:
            why = _unevaluated(gold, pred)
        if why is None and opts.reject_hedged and isinstance(pred[-1], str):
            why = hedged(response, pred[-1])
    return label and why is None, _extracted(pred), bool(gold_parsed), why


def _single_number(gold_parsed: list[Any]) -> bool:
    return bool(gold_parsed) and bool(getattr(gold_parsed[0], "is_number", False))


def _unevaluated(gold: str, pred: list[Any]) -> str | None:
    """Why a right-valued answer is arithmetic left undone, when the gold is a number written out."""
    text = pred[-1]
    if not isinstance(text, str):
        return None
    if unevaluated(bare_gold(gold)) is not None:  # the gold is itself a product, power, ...: any form goes
        return None
    return unevaluated(text)


def gold_signature(gold: str, opts: MathOptions) -> tuple[int | None, bool]:
    """Facts the in-process fast path may rely on, computed once per gold answer.

    - the integer value, when `gold` is a plain integer and math_verify parses it to that very Integer;
    - whether a response whose only answer is `\\boxed{gold}` is judged correct by math_verify, with the
      boxed content itself parsed to a sympy object (so no other extraction route was taken).
    """
    import sympy

    parsed = parse_gold(gold, opts)
    int_value = None
    stripped = bare_gold(gold)
    if parsed and isinstance(parsed[0], sympy.Integer) and _is_small_int(stripped):
        if int(parsed[0]) == int(stripped):
            int_value = int(stripped)
    boxed = _parse("\\boxed{" + stripped + "}", opts)
    self_ok = bool(boxed) and isinstance(boxed[0], sympy.Basic) and _verify(parsed, boxed, opts)
    return int_value, self_ok


def bare_gold(gold: str) -> str:
    """The gold without surrounding whitespace and one pair of `$` delimiters."""
    text = gold.strip()
    if len(text) > 2 and text[0] == "$" and text[-1] == "$" and "$" not in text[1:-1]:
        text = text[1:-1].strip()
    return text


def _is_small_int(text: str) -> bool:
    body = text[1:] if text.startswith("-") else text
    return 0 < len(body) <= 15 and body.isascii() and body.isdigit()
