"""A strategy composed of a registered advantage estimator and a registered policy loss, and
`from_config`, the one entry point the learner and controller use.

In: an `AlgorithmConfig` (preset `name`, optional `advantage` / `loss` overrides).
Out: an `Algorithm` whose `Params` accepts exactly the estimator's keys plus the loss's keys (flat, in
`algorithm.params`), whose `advantages` / `loss` / `top_k` delegate to the registries.
A preset (`algorithms=simko`) is a `Composed` subclass naming its two parts; `advantage=rloo` swaps one.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ClassVar

from torch import Tensor

from rlvr.algorithms.base import ALGORITHMS, Algorithm, AlgorithmParams
from rlvr.algorithms.registries import ADVANTAGES, POLICY_LOSSES
from rlvr.errors import RlvrUserError, closest
from rlvr.loss_types import LossInput, LossOutput

if TYPE_CHECKING:
    from rlvr.config.schema import AlgorithmConfig


@functools.cache
def merged_params(advantage: str, loss: str) -> type[AlgorithmParams]:
    """One flat params model: the loss's fields and the estimator's (a key in both is a bug in one of them)."""
    adv_p, loss_p = ADVANTAGES.get(advantage).Params, POLICY_LOSSES.get(loss).Params
    clash = sorted(set(adv_p.model_fields) & set(loss_p.model_fields))
    if clash:
        raise RlvrUserError(
            f"advantage estimator '{advantage}' and policy loss '{loss}' both define {', '.join(clash)}"
        )
    # Multiple inheritance keeps isinstance(params, EstimatorParams) and (…, LossParams) both true.
    return type(f"Params[{advantage}+{loss}]", (loss_p, adv_p), {"__module__": __name__})


class Composed(Algorithm):
    """`advantages` from ADVANTAGES[advantage_name], `loss` and `top_k` from POLICY_LOSSES[loss_name]."""

    advantage_name: ClassVar[str] = ""
    loss_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "Params" not in cls.__dict__ and cls.advantage_name and cls.loss_name:
            cls.Params = merged_params(cls.advantage_name, cls.loss_name)

    def top_k(self, params: Any) -> int:
        return POLICY_LOSSES.get(self.loss_name).top_k(params)

    def advantages(self, rewards: Tensor, correct: Tensor, group_index: Tensor, params: Any) -> Tensor:
        return ADVANTAGES.get(self.advantage_name).fn(rewards, correct, group_index, params)

    def loss(self, inp: LossInput, params: Any) -> LossOutput:
        return POLICY_LOSSES.get(self.loss_name).fn(inp, params)


@functools.cache
def compose(advantage: str, loss: str) -> Composed:
    """The strategy `advantage` estimator + `loss` policy loss (cached: one instance per pair)."""
    cls = type(
        f"Composed[{advantage}+{loss}]",
        (Composed,),
        {"advantage_name": advantage, "loss_name": loss, "name": f"{advantage}+{loss}"},
    )
    return cls()


def _lookup(key: str, kind: str, name: str, names: list[str]) -> str:
    if name not in names:
        raise RlvrUserError(
            f"config key '{key}': unknown {kind} '{name}'; registered: {', '.join(names)}{closest(name, names)}"
        )
    return name


def _overrides_parts(algo: Algorithm) -> bool:
    """A Composed subclass that replaces advantages/loss/top_k is a custom strategy, not a pure composition."""
    cls = type(algo)
    return any(getattr(cls, m) is not getattr(Composed, m) for m in ("advantages", "loss", "top_k"))


def from_config(cfg: AlgorithmConfig) -> Algorithm:
    """The strategy `cfg` names: preset `cfg.name`, with `cfg.advantage` / `cfg.loss` swapped in when set."""
    _lookup("algorithm.name", "algorithm", cfg.name, ALGORITHMS.available())
    base = ALGORITHMS.get(cfg.name)
    if cfg.advantage is None and cfg.loss is None:
        return base
    if not isinstance(base, Composed) or _overrides_parts(base):
        key = "algorithm.advantage" if cfg.advantage is not None else "algorithm.loss"
        raise RlvrUserError(
            f"config key '{key}': algorithm '{cfg.name}' computes its own advantages and loss; "
            "only a composition of a registered estimator and loss can swap one"
        )
    adv = base.advantage_name if cfg.advantage is None else cfg.advantage
    loss = base.loss_name if cfg.loss is None else cfg.loss
    _lookup("algorithm.advantage", "advantage estimator", adv, ADVANTAGES.available())
    _lookup("algorithm.loss", "policy loss", loss, POLICY_LOSSES.available())
    if (adv, loss) == (base.advantage_name, base.loss_name):
        return base
    return compose(adv, loss)
