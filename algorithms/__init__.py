"""Loss strategies (imported as `rlvr.algorithms`). One strategy per file, one registry."""

# Importing a strategy module registers it.
from rlvr.algorithms import grpo, nsr, psr, simko, w_reinforce  # noqa: E402,F401
from rlvr.algorithms.base import (
    ALGORITHMS,
    Algorithm,
    AlgorithmParams,
    LossInput,
    LossOutput,
    TokenStats,
    register_algorithm,
)


def get(name: str) -> Algorithm:
    return ALGORITHMS.get(name)


def available() -> list[str]:
    return ALGORITHMS.available()


__all__ = [
    "Algorithm",
    "AlgorithmParams",
    "LossInput",
    "LossOutput",
    "TokenStats",
    "available",
    "get",
    "register_algorithm",
]
