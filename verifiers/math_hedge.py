"""Does a response offer its answer next to other candidates ("The answer is 52 or 53.")?

math_verify reads "The answer is 52 or 53." as 52, so a policy that names two values gets the reward for
either. The math verifier's `reject_hedged` option (on by default) marks such an answer wrong when the
gold is a single number. In: the response and the answer text math_verify extracted. Out: why the answer
is hedged, or None.
A hedge is a chain of numbers joined by "or" (with commas allowed in the chain: "51, 52 or 53") that
holds the answer where it last appears in the response and a different value. Values
equal as decimals ("52 or 52.0") are not a hedge; a bare comma list without "or" is left to math_verify.
Text only: nothing here is evaluated.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_NUMBER = re.compile(
    r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])(?!\.\d)|\\[dt]?frac\{-?\d+\}\{\d+\}"
)
# What may sit between two numbers of one chain besides the joining word: spaces, commas, math
# delimiters and the LaTeX a box or text run puts there.
_FILL = r"(?:\s|,|\$|\\[,;: ]|\\quad|\\\(|\\\)|\\text\{|\\mathrm\{|\\boxed\{|\})*"
_OR_LINK = re.compile(_FILL + r"\b(?i:or)(?:\s+(?:maybe|possibly|perhaps|else))?\b" + _FILL)
_COMMA_LINK = re.compile(r"(?:\s|\$|\})*,(?:\s|\$|\\boxed\{)*")
_SENTENCE_END = re.compile(r"\.(?!\d)|[!?\n]")  # a decimal point is followed by a digit


def _value(token: str) -> Decimal | str:
    try:
        return Decimal(token.replace(",", ""))
    except InvalidOperation:
        return token.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")


def _sentence(text: str, start: int, end: int) -> tuple[int, int]:
    before = [m.end() for m in _SENTENCE_END.finditer(text, 0, start)]
    after = _SENTENCE_END.search(text, end)
    return (before[-1] if before else 0), (after.start() if after else len(text))


def _chains(text: str, numbers: list[re.Match[str]]) -> list[tuple[list[re.Match[str]], bool]]:
    """Runs of numbers joined by "or" or commas, each with whether an "or" joins it."""
    chains: list[tuple[list[re.Match[str]], bool]] = []
    for m in numbers:
        if chains:
            run, has_or = chains[-1]
            gap = text[run[-1].end() : m.start()]
            if _OR_LINK.fullmatch(gap) or _COMMA_LINK.fullmatch(gap):
                run.append(m)
                chains[-1] = run, has_or or bool(_OR_LINK.fullmatch(gap))
                continue
        chains.append(([m], False))
    return chains


def hedged(response: str, extracted: str) -> str | None:
    """The reason `response` hedges its answer `extracted` between values, or None."""
    answer = _value(extracted.strip())
    hits = [m for m in _NUMBER.finditer(response) if _value(m.group(0)) == answer]
    if not hits:
        return None
    last = hits[-1].start()
    lo, hi = _sentence(response, last, hits[-1].end())
    for run, has_or in _chains(response, list(_NUMBER.finditer(response, lo, hi))):
        values = {_value(m.group(0)) for m in run}
        if has_or and any(m.start() == last for m in run) and len(values) > 1:
            shown = " or ".join(m.group(0) for m in run[:6])
            return "hedged between values: " + shown + (" or ..." if len(run) > 6 else "")
    return None
