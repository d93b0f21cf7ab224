"""The two registries strategies are built from, as verl's `core_algos.py`: advantage estimators and
policy losses. One estimator or loss per file; each registers itself with its pydantic `Params`.

In: a function and its params model, by name.
- advantage estimator: `(rewards[N], correct[N] bool, group_index[N] long, params) -> Tensor[N]`;
- policy loss: `(LossInput, params) -> LossOutput`, plus how many top-k candidates it needs.
Out: records found by name (`ADVANTAGES.get`, `POLICY_LOSSES.get`); an unknown name is a one-line
`RlvrUserError` listing the registered ones. Installed plugins register through entry points
`rlvr.advantages` / `rlvr.policy_losses`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict
from torch import Tensor

from rlvr.algorithms.base import AlgorithmParams
from rlvr.loss_types import LossInput, LossOutput
from rlvr.registry import Registry

AdvantageFn = Callable[[Tensor, Tensor, Tensor, Any], Tensor]
LossFn = Callable[[LossInput, Any], LossOutput]
F = TypeVar("F", bound=Callable[..., Any])


class AdvantageParams(BaseModel):
    """Base of every estimator's params (the estimator's own keys only; loss keys live in AlgorithmParams)."""

    model_config = ConfigDict(extra="forbid")


def _metrics_top_k(params: Any) -> int:
    return int(params.metrics_top_k)


@dataclass(frozen=True)
class AdvantageEstimator:
    name: str
    fn: AdvantageFn
    Params: type[AdvantageParams]


@dataclass(frozen=True)
class PolicyLoss:
    name: str
    fn: LossFn
    Params: type[AlgorithmParams]
    top_k: Callable[[Any], int] = _metrics_top_k  # candidates the policy actor must return


ADVANTAGES: Registry[AdvantageEstimator] = Registry("advantage estimator", "rlvr.advantages")
POLICY_LOSSES: Registry[PolicyLoss] = Registry("policy loss", "rlvr.policy_losses")


def register_advantage(
    name: str, *, params: type[AdvantageParams] = AdvantageParams, override: bool = False
) -> Callable[[F], F]:
    """`@register_advantage("mine", params=MyParams) def mine(rewards, correct, group_index, params): ...`"""

    def wrap(fn: F) -> F:
        ADVANTAGES.register(name, AdvantageEstimator(name, fn, params), override=override)
        return fn

    return wrap


def register_policy_loss(
    name: str,
    *,
    params: type[AlgorithmParams] = AlgorithmParams,
    top_k: Callable[[Any], int] = _metrics_top_k,
    override: bool = False,
) -> Callable[[F], F]:
    """`@register_policy_loss("mine", params=MyLossParams) def mine(inp, params) -> LossOutput: ...`"""

    def wrap(fn: F) -> F:
        POLICY_LOSSES.register(name, PolicyLoss(name, fn, params, top_k), override=override)
        return fn

    return wrap
