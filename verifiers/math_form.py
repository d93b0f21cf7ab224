"""Is an extracted answer written out, or arithmetic left for the grader to do?

math_verify compares values, so `\\boxed{18+34}` (or "18 + 34 = x") is "correct" for a gold of 52. On
prompts that state the sum, a policy can learn to copy the question back. The math verifier's
`require_evaluated` option (on by default) marks such an answer wrong when the gold is itself a number
written out. In: the answer text math_verify extracted. Out: why it is unevaluated, or None.
What counts as arithmetic left undone: two numbers joined by + - * / ^ (and their LaTeX forms), a
factorial, or a fraction whose denominator divides its numerator (`\\frac{90}{2}`). A fraction not in
lowest terms (`\\frac{2}{6}`) and scientific notation (`1.2 \\times 10^{3}`) are numbers written out.
Text only: nothing here is evaluated.
"""

from __future__ import annotations

import re

_FRACTION = "\u2063"  # stands in for a fraction of integers once it has been checked
_SPACING = re.compile(r"\s+|\\[,;:! ]|\\left|\\right|\{,\}|\$")
_SCI = re.compile(r"(\d(?:\.\d+)?)(?:\\times|\\cdot|\*|x)10\^(?:\{[-+]?\d+\}|[-+]?\d+)")
_FRAC = re.compile(r"\\[dt]?frac(?:\{(-?\d+)\}|(\d))(?:\{(-?\d+)\}|(\d))")
_SLASH = re.compile(r"(?<![\d}])(?<!\d\.)(-?\d+)/(\d+)(?!\d|\.\d)")
_NUM = r"(?:\d+(?:\.\d+)?|\{-?\d+(?:\.\d+)?\}|" + _FRACTION + ")"
_OP = r"(?:[-+*/^\u00d7\u00b7\u00f7]|\\times|\\cdot|\\div|\\ast)"
_ARITH = re.compile(_NUM + r"[()]*" + _OP + r"[()]*-?" + _NUM)
_FACTORIAL = re.compile(r"\d!")


def _fractions(text: str) -> tuple[str, str | None]:
    """Fractions of integer literals become one placeholder; an integer written as one is a reason."""
    why: list[str] = []

    def sub(m: re.Match[str], num: str, den: str) -> str:
        if int(den) != 0 and int(num) % int(den) == 0:
            why.append(f"division left undone: {m.group(0)}")
        return _FRACTION

    text = _FRAC.sub(lambda m: sub(m, m.group(1) or m.group(2), m.group(3) or m.group(4)), text)
    text = _SLASH.sub(lambda m: sub(m, m.group(1), m.group(2)), text)
    return text, (why[0] if why else None)


def unevaluated(answer: str) -> str | None:
    """The reason `answer` is arithmetic on numbers rather than a number, or None."""
    text = _SCI.sub(r"\1", _SPACING.sub("", answer))
    text, why = _fractions(text)
    if why:
        return why
    m = _ARITH.search(text) or _FACTORIAL.search(text)
    return None if m is None else f"arithmetic left undone: {m.group(0).replace(_FRACTION, '<fraction>')}"
