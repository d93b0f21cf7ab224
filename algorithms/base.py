"""The one signature every loss strategy shares.

In: a `LossInput` built by the learner from the common policy actor's `TokenStats`.
Out: a `LossOutput` (scalar loss + float metrics). A strategy never touches the model,
the optimizer or the config object: it is a pure function of tensors and its params.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field

from rlvr.registry import Registry


@dataclass
class TokenStats:
    """Per-token statistics from the common policy actor. Shapes: B responses, T response tokens, K top-k."""

    logprobs: torch.Tensor  # [B, T] log pi(y_t), differentiable
    topk_logprobs: torch.Tensor  # [B, T, K] log pi of current rank-1..K, differentiable
    topk_ids: torch.Tensor  # [B, T, K] long
    entropy: torch.Tensor  # [B, T] full-vocabulary entropy; carries grad for the entropy bonus, detach to log
    is_rank1: torch.Tensor  # [B, T] bool: sampled token is the current rank-1
    ref_logprobs: torch.Tensor | None = None  # [B, T] frozen reference policy, detached


@dataclass
class LossInput:
    stats: TokenStats
    old_logprobs: torch.Tensor  # [B, T] behaviour (or learner-recomputed) log-probs, detached
    advantages: torch.Tensor  # [B] per-response advantage from the strategy's `advantages`
    rewards: torch.Tensor  # [B]
    correct: torch.Tensor  # [B] bool
    mask: torch.Tensor  # [B, T] float, 1 on valid response tokens


@dataclass
class LossOutput:
    loss: torch.Tensor  # scalar
    metrics: dict[str, float] = field(default_factory=dict)


class AlgorithmParams(BaseModel):
    """Parameters shared by every clipped-surrogate strategy; strategies subclass to add their own."""

    model_config = ConfigDict(extra="forbid")

    clip_eps: float = Field(0.2, ge=0.0, le=1.0)
    clip_eps_high: float | None = Field(
        None, ge=0.0, le=10.0, description="DAPO clip-higher; None = clip_eps"
    )
    kl_coef: float = Field(0.0, ge=0.0)
    entropy_coef: float = Field(0.0, ge=0.0)
    loss_agg: str = Field("token_mean", pattern="^(token_mean|seq_sum)$", description="seq_sum = Dr.GRPO")
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
