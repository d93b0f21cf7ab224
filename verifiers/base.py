"""The verifier registry.

In: a response string, the ground truth, and the row's metadata. Out: a `VerifierResult`.
A verifier never executes model output (no eval/exec/sympify of raw text).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from rlvr.registry import Registry
from rlvr.types import VerifierResult


class Verifier(Protocol):
    def verify(self, response: str, ground_truth: str, **metadata: Any) -> VerifierResult: ...


class FunctionVerifier:
    """Adapts a plain function to the `Verifier` protocol."""

    def __init__(self, fn: Callable[..., VerifierResult], name: str) -> None:
        self.fn = fn
        self.name = name

    def verify(self, response: str, ground_truth: str, **metadata: Any) -> VerifierResult:
        return self.fn(response, ground_truth, **metadata)


VERIFIERS: Registry[Verifier] = Registry("verifier", "rlvr.verifiers")


def register_verifier(name: str, *, override: bool = False) -> Callable[[Any], Any]:
    """Decorate a function `(response, ground_truth, **metadata) -> VerifierResult`, or a class with `verify`."""

    def wrap(obj: Any) -> Any:
        if isinstance(obj, type):
            VERIFIERS.register(name, obj(), override=override)
        elif hasattr(obj, "verify"):
            VERIFIERS.register(name, obj, override=override)
        else:
            VERIFIERS.register(name, FunctionVerifier(obj, name), override=override)
        return obj

    return wrap
