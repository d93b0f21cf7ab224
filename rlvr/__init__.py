"""rlvr: Ray-native reinforcement learning with verifiable rewards.

Public API: `run`, `load_config`, `register_verifier`, `register_algorithm`, `register_group_reward`,
and the typed records.
Heavy modules (Ray, torch, vLLM) load only when a function that needs them is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rlvr.config import RlvrConfig, load_config
from rlvr.types import Prompt, Sample, Trajectory, VerifierResult, VerifyStatus, WeightVersion

__version__ = "0.1.0"

if TYPE_CHECKING:
    from rlvr.algorithms.base import register_algorithm
    from rlvr.rewards import register_group_reward
    from rlvr.verifiers.base import register_verifier


def __getattr__(name: str) -> Any:
    if name == "register_verifier":
        from rlvr.verifiers.base import register_verifier

        return register_verifier
    if name == "register_algorithm":
        from rlvr.algorithms.base import register_algorithm

        return register_algorithm
    if name == "register_group_reward":
        from rlvr.rewards import register_group_reward

        return register_group_reward
    raise AttributeError(f"module 'rlvr' has no attribute {name!r}")


def run(config: RlvrConfig | list[str] | None = None) -> dict[str, Any]:
    """Train with `config` (a validated config or a list of overrides); returns the run summary."""
    from rlvr.pipeline.boot import run as run_training  # the cluster starts while the pipeline imports

    cfg = config if isinstance(config, RlvrConfig) else load_config(config or [])
    return run_training(cfg)


__all__ = [
    "Prompt",
    "RlvrConfig",
    "Sample",
    "Trajectory",
    "VerifierResult",
    "VerifyStatus",
    "WeightVersion",
    "load_config",
    "register_algorithm",
    "register_group_reward",
    "register_verifier",
    "run",
]
