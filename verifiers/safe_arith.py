"""Exact arithmetic on untrusted text without eval.

In: an expression string. Out: its exact `Fraction` value and the list of number literals it used.
Only integer literals, + - * /, unary minus and parentheses are accepted; length, node count, depth and
operand size are capped, so no input can make this slow. Anything else raises `UnsafeExpression`.
"""

from __future__ import annotations

import ast
from fractions import Fraction

MAX_CHARS = 300
MAX_NODES = 100
MAX_DEPTH = 30
MAX_DIGITS = 60


class UnsafeExpression(ValueError):
    pass


_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def evaluate(expr: str) -> tuple[Fraction, list[Fraction]]:
    if len(expr) > MAX_CHARS:
        raise UnsafeExpression(f"longer than {MAX_CHARS} characters")
    if not expr or any(c not in "0123456789+-*/() \t" for c in expr):
        raise UnsafeExpression("only digits, + - * / and parentheses are allowed")
    try:
        tree = ast.parse(expr, mode="eval")
    except (SyntaxError, RecursionError, MemoryError, ValueError) as e:
        raise UnsafeExpression(f"not an expression: {type(e).__name__}") from e
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise UnsafeExpression(f"more than {MAX_NODES} nodes")
    used: list[Fraction] = []
    return _walk(tree.body, used, 0), used


def _walk(node: ast.AST, used: list[Fraction], depth: int) -> Fraction:
    if depth > MAX_DEPTH:
        raise UnsafeExpression("nested too deeply")
    if isinstance(node, ast.Constant) and type(node.value) is int:
        value = Fraction(node.value)
        used.append(value)
        return value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_walk(node.operand, used, depth + 1)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left = _walk(node.left, used, depth + 1)
        right = _walk(node.right, used, depth + 1)
        if isinstance(node.op, ast.Add):
            out = left + right
        elif isinstance(node.op, ast.Sub):
            out = left - right
        elif isinstance(node.op, ast.Mult):
            out = left * right
        else:
            out = left / right  # ZeroDivisionError is the caller's "wrong answer"
        if len(str(out.numerator)) > MAX_DIGITS or len(str(out.denominator)) > MAX_DIGITS:
            raise UnsafeExpression("intermediate value too large")
        return out
    raise UnsafeExpression(f"{type(node).__name__} is not allowed")
