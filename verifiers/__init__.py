"""Verifiers (imported as `rlvr.verifiers`): `get(name).verify(response, ground_truth, **metadata)`."""

from rlvr.verifiers.base import VERIFIERS, Verifier, register_verifier


def get(name: str) -> Verifier:
    return VERIFIERS.get(name)


def available() -> list[str]:
    return VERIFIERS.available()


__all__ = ["Verifier", "available", "get", "register_verifier"]
