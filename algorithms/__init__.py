"""Loss strategies (imported as `rlvr.algorithms`): advantage estimators, policy losses, and the presets
that pair them. One estimator or loss per file, two registries (`registries.py`), one entry point:

    algo = rlvr.algorithms.from_config(cfg.algorithm)
    params = algo.Params.model_validate(cfg.algorithm.params)
    algo.advantages(rewards, correct, group_index, params); algo.loss(inp, params); algo.top_k(params)
"""

# Importing an estimator/loss module registers it (and its preset).
from rlvr.algorithms import (  # noqa: E402,F401
    cispo,
    grpo,
    gspo,
    nsr,
    ppo,
    psr,
    reinforce_pp,
    rloo,
    simko,
    w_reinforce,
)
from rlvr.algorithms.aggregation import LOSS_AGGS, aggregate
from rlvr.algorithms.base import (
    ALGORITHMS,
    Algorithm,
    AlgorithmParams,
    LossInput,
    LossOutput,
    TokenStats,
    register_algorithm,
)
from rlvr.algorithms.composed import Composed, compose, from_config
from rlvr.algorithms.registries import (
    ADVANTAGES,
    POLICY_LOSSES,
    AdvantageEstimator,
    AdvantageParams,
    PolicyLoss,
    register_advantage,
    register_policy_loss,
)


def get(name: str) -> Algorithm:
    return ALGORITHMS.get(name)


def available() -> list[str]:
    return ALGORITHMS.available()


__all__ = [
    "ADVANTAGES",
    "ALGORITHMS",
    "LOSS_AGGS",
    "POLICY_LOSSES",
    "AdvantageEstimator",
    "AdvantageParams",
    "Algorithm",
    "AlgorithmParams",
    "Composed",
    "LossInput",
    "LossOutput",
    "PolicyLoss",
    "TokenStats",
    "aggregate",
    "available",
    "compose",
    "from_config",
    "get",
    "register_advantage",
    "register_algorithm",
    "register_policy_loss",
]
