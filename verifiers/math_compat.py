"""A compatibility fix for latex2sympy2_extended 1.11.0 with antlr 4.9.3 (math_verify's parser backend).

In: nothing. Out: `apply()` patches, once, a stale generated parser. The antlr-4.9.3 `PSParser.AtomContext`
lacks the `FUNC_GAMMA()` accessor that `latex2sympy2.py` calls for every atom it reaches after the Greek
branch, so any LaTeX percent (`28\\%`) raised AttributeError and math_verify silently dropped the parse.
The accessor we add is exactly what antlr generates for a token child (getToken, None when absent); for
other antlr versions the attribute exists and nothing changes. It touches no behaviour of math_verify itself.
"""

from __future__ import annotations

_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    from latex2sympy2_extended.antlr_parser import PSParser

    atom = PSParser.AtomContext
    if not hasattr(atom, "FUNC_GAMMA"):

        def FUNC_GAMMA(self):  # noqa: N802 - mirrors the generated antlr accessor name
            return self.getToken(PSParser.FUNC_GAMMA, 0)

        atom.FUNC_GAMMA = FUNC_GAMMA
