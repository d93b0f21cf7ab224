"""Does a response offer its answer next to other candidates ("The answer is 52 or 53.")?

math_verify reads "The answer is 52 or 53." as 52, so a policy that names two values gets the reward for
either. The math verifier's `reject_hedged` option (on by default) marks such an answer wrong when the
gold is a single number. In: the response and the answer text math_verify extracted. Out: why the answer
is hedged, or None.
A hedge is a chain of numbers that holds the answer at its place (below) and a different
value: joined by "or" anywhere in its sentence ("51, 52 or 53"), or joined by "and" or commas only when the
chain ends its sentence ("The answer is 52 and 53.", "The answer is 52, 53."), so "52, 3 more than 49" and
"52 and 53 were tried" are not hedges. Values equal as decimals ("52 or 52.0") are not a hedge either.
The answer's place is its last \\boxed{} when it is boxed, else where it last appears, so a check after
the box ("\\boxed{52}. Its divisors are 1, 2, 4, 13, 26, 52.") does not make it a hedge.
Values compare exactly (fractions too: "\\frac{1}{2}, 0.5" is one value written twice).
Text only: no expression is evaluated; number literals and \\frac of two integer literals are read exactly.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

_NUMBER = re.compile(
    r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])(?!\.\d)|\\[dt]?frac\{-?\d+\}\{\d+\}"
)
# What may sit between two numbers of one chain besides the joining word: spaces, commas, math
# delimiters and the LaTeX a box or text run puts there.
_FILL = r"(?:\s|,|\$|\\[,;: ]|\\quad|\\\(|\\\)|\\text\{|\\mathrm\{|\\boxed\{|\})*"
_OR_LINK = re.compile(_FILL + r"\b(?i:or)(?:\s+(?:maybe|possibly|perhaps|else))?\b" + _FILL)
_AND_LINK = re.compile(_FILL + r"\b(?i:and)\b" + _FILL)
_COMMA_LINK = re.compile(r"(?:\s|\$|\})*,(?:\s|\$|\\boxed\{)*")
_CLOSE = re.compile(r"(?:\s|\$|\}|\\\)|\\\])*")  # what may follow a chain that ends its sentence
_BOX_OPEN = re.compile(r"\\boxed\{\s*\$?\Z")  # just before a number: it opens the box
_FRAC = re.compile(r"\\[dt]?frac\{(-?\d+)\}\{(\d+)\}")
_SENTENCE_END = re.compile(r"\.(?!\d)|[!?\n]")  # a decimal point is followed by a digit


def _value(token: str) -> Fraction | str:
    """The exact value of a number token ("\\frac{1}{2}" and "0.5" are one value written twice)."""
    try:
        return Fraction(Decimal(token.replace(",", "")))
    except InvalidOperation:
        pass
    frac = _FRAC.fullmatch(token)
    if frac and int(frac.group(2)) != 0:
        return Fraction(int(frac.group(1)), int(frac.group(2)))
    return token.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")


def _sentence(text: str, start: int, end: int) -> tuple[int, int]:
    before = [m.end() for m in _SENTENCE_END.finditer(text, 0, start)]
    after = _SENTENCE_END.search(text, end)
    return (before[-1] if before else 0), (after.start() if after else len(text))


def _chains(text: str, numbers: list[re.Match[str]]) -> list[tuple[list[re.Match[str]], bool]]:
    """Runs of numbers joined by "or", "and" or commas, each with whether an "or" joins it."""
    chains: list[tuple[list[re.Match[str]], bool]] = []
    for m in numbers:
        if chains:
            run, has_or = chains[-1]
            gap = text[run[-1].end() : m.start()]
            is_or = bool(_OR_LINK.fullmatch(gap))
            if is_or or _AND_LINK.fullmatch(gap) or _COMMA_LINK.fullmatch(gap):
                run.append(m)
                chains[-1] = run, has_or or is_or
                continue
        chains.append(([m], False))
    return chains


def hedged(response: str, extracted: str) -> str | None:
    """The reason `response` hedges its answer `extracted` between values, or None."""
    answer = _value(extracted.strip())
    hits = [m for m in _NUMBER.finditer(response) if _value(m.group(0)) == answer]
    if not hits:
        return None
    # Where the answer sits: its last box if it is boxed (a check after it may list the value again),
    # else where it last appears.
    boxed = [m for m in hits if _BOX_OPEN.search(response, max(0, m.start() - 16), m.start())]
    at = (boxed or hits)[-1]
    last = at.start()
    lo, hi = _sentence(response, last, at.end())
    for run, has_or in _chains(response, list(_NUMBER.finditer(response, lo, hi))):
        values = {_value(m.group(0)) for m in run}
        closes = bool(_CLOSE.fullmatch(response, run[-1].end(), hi))
        if (has_or or closes) and any(m.start() == last for m in run) and len(values) > 1:
            sep = " or " if has_or else ", "
            shown = sep.join(m.group(0) for m in run[:6])
            return "hedged between values: " + shown + (sep + "..." if len(run) > 6 else "")
    return None
