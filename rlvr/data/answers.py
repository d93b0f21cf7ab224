"""Gold answers from dataset fields: `data.answer_format` -> a function `field text -> gold | None`.

In: the raw answer field of a row (GSM8K's worked solution ending in `#### 72`, a MATH solution with a
`\\boxed{}`, or an already-bare answer). Out: the bare gold string the verifier compares against, or None when
the field holds no extractable answer; the loader skips such rows rather than grading against garbage.
Formats live in a registry (`raw`, `gsm8k`, `boxed`) plus the parameterised `regex:<pattern>`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rlvr.errors import RlvrUserError

Extractor = Callable[[str], str | None]

_GSM8K_MARK = "####"
# "1,234" and "1,234.5" in GSM8K golds: the verifier compares numbers, so thousands separators go.
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")


def raw(text: str) -> str | None:
    """The field as it is (whitespace trimmed); an empty field has no answer."""
    return text.strip() or None


def gsm8k(text: str) -> str | None:
    """What follows the last `####` (GSM8K's convention), thousands separators dropped."""
    if _GSM8K_MARK not in text:
        return None
    answer = text.rsplit(_GSM8K_MARK, 1)[1].strip()
    if _THOUSANDS.match(answer):
        answer = answer.replace(",", "")
    return answer or None


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}`, nested braces included; None if absent or unbalanced."""
    idx = text.rfind("\\boxed{")
    if idx < 0:
        return None
    depth = 0
    start = idx + len("\\boxed")
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1 : i].strip() or None
    return None


def regex(pattern: str) -> Extractor:
    """Group 1 of the last match of `pattern` (the whole match when it has no group)."""
    try:
        compiled = re.compile(pattern, re.DOTALL)
    except re.error as e:
        raise RlvrUserError(f"data.answer_format: bad regex {pattern!r}: {e}") from None

    def extract(text: str) -> str | None:
        matches = list(compiled.finditer(text))
        if not matches:
            return None
        m = matches[-1]
        found = m.group(1) if compiled.groups else m.group(0)
        return found.strip() if found and found.strip() else None

    return extract


FORMATS: dict[str, Extractor] = {"raw": raw, "gsm8k": gsm8k, "boxed": last_boxed}
_REGEX_PREFIX = "regex:"


def get_extractor(answer_format: str) -> Extractor:
    """The extractor `data.answer_format` names; a one-line error for anything else."""
    if answer_format.startswith(_REGEX_PREFIX):
        pattern = answer_format[len(_REGEX_PREFIX) :]
        if not pattern:
            raise RlvrUserError("data.answer_format: 'regex:' needs a pattern, e.g. regex:answer is (\\d+)")
        return regex(pattern)
    if answer_format not in FORMATS:
        names = ", ".join([*FORMATS, "regex:<pattern>"])
        raise RlvrUserError(f"data.answer_format: unknown format '{answer_format}'; use one of {names}")
    return FORMATS[answer_format]
