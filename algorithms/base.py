"""The one signature every loss strategy shares, and the strategy (preset) registry.

In: a `LossInput` built by the learner from the common policy actor's `TokenStats`.
Out: a `LossOutput` (scalar loss + float metrics). A strategy never touches the model,
the optimizer or the config object: it is a pure function of tensors and its params.

A strategy (`Algorithm`) pairs an advantage estimator with a policy loss. The built-in ones are compositions
of the two registries in `rlvr.algorithms.registries` (see `rlvr.algorithms.composed`); a class registered
with `register_algorithm` that implements `advantages` and `loss` itself works the same way.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field

from rlvr.loss_types import LossInput, LossOutput, TokenStats
from rlvr.registry import Registry

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "AlgorithmParams",
    "LossInput",
    "LossOutput",
    "TokenStats",
    "register_algorithm",
]


class AlgorithmParams(BaseModel):
    """Parameters every policy loss shares; losses (and custom strategies) subclass to add their own."""

    model_config = ConfigDict(extra="forbid")

    clip_eps: float = Field(0.2, ge=0.0, le=1.0, description="lower clip range: ratio >= 1 - clip_eps")
    clip_eps_high: float | None = Field(
        None, ge=0.0, le=10.0, description="DAPO clip-higher: ratio <= 1 + clip_eps_high; None = clip_eps"
    )
    kl_coef: float = Field(0.0, ge=0.0, description="weight of the k3 KL to the reference model")
    entropy_coef: float = Field(0.0, ge=0.0, description="weight of the entropy bonus")
    loss_agg: str = Field(
        "token_mean",
        pattern="^(token_mean|seq_mean_token_mean|seq_sum)$",
        description="token_mean | seq_mean_token_mean | seq_sum (Dr.GRPO); see rlvr.algorithms.aggregation",
    )
    metrics_top_k: int = Field(3, ge=1, le=64, description="ranks tracked for the Lambda^(k) metric")


class Algorithm:
    """A loss strategy. Subclass, set `Params`, implement `advantages` and `loss`, and register."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[AlgorithmParams]] = AlgorithmParams

    def top_k(self, params: AlgorithmParams) -> int:
        """How many top-k candidates the policy actor must return for this strategy."""
        return params.metrics_top_k

    def advantages(
        self, rewards: torch.Tensor, correct: torch.Tensor, group_index: torch.Tensor, params: Any
    ) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, inp: LossInput, params: Any) -> LossOutput:
        raise NotImplementedError


ALGORITHMS: Registry[Algorithm] = Registry("algorithm", "rlvr.algorithms")


def register_algorithm(name: str, *, override: bool = False):  # type: ignore[no-untyped-def]
    """Class decorator: `@register_algorithm("mine") class Mine(Algorithm): ...`."""

    def wrap(cls: type[Algorithm]) -> type[Algorithm]:
        cls.name = name
        ALGORITHMS.register(name, cls(), override=override)
        return cls

    return wrap
