"""Verifiers (imported as `rlvr.verifiers`): `get(name).verify(response, ground_truth, **metadata)`.

Importing this package registers the built-in verifiers: math, logic (knights and knaves), countdown,
format (a non-empty `\\boxed{}`) and reasoning_gym (reasoning-gym's own scoring; needs its extra).
"""

from rlvr.verifiers.base import VERIFIERS, Verifier, register_verifier


def get(name: str) -> Verifier:
    return VERIFIERS.get(name)


def available() -> list[str]:
    return VERIFIERS.available()


# Registration happens on import; the imports sit below `get` so plugins can import this package first.
from rlvr.verifiers import countdown as _countdown  # noqa: E402,F401
from rlvr.verifiers import format as _format  # noqa: E402,F401
from rlvr.verifiers import logic as _logic  # noqa: E402,F401
from rlvr.verifiers import math as _math  # noqa: E402,F401
from rlvr.verifiers import reasoning_gym as _reasoning_gym  # noqa: E402,F401

__all__ = ["VERIFIERS", "Verifier", "available", "get", "register_verifier"]
