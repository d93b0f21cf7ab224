"""Starting and stopping the rollout side (weight store, generator deployment, verifier pool).

In: a validated config and a model path. Out: `Rollout`, which `run` and `eval` share, so
training and evaluation sample and score through the same deployment and actors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import ray

from rlvr.config.schema import RlvrConfig
from rlvr.generator.base import SamplingConfig
from rlvr.generator.deployment import GeneratorClient, PendingGeneration, start_generator, stop_generator
from rlvr.generator.seeds import group_seeds
from rlvr.generator.weight_store import get_or_create_store, publish_weights
from rlvr.types import Sample, VerifierResult
from rlvr.verifier_pool import VerifierPool

log = logging.getLogger(__name__)


@dataclass
class Rollout:
    cfg: RlvrConfig
    store: Any
    store_name: str
    generator: GeneratorClient
    pool: VerifierPool
    app_name: str

    def submit(
        self,
        texts: list[str],
        step: int,
        *,
        prompt_ids: list[str] | None = None,
        round: int = 0,
        **sampling: Any,
    ) -> PendingGeneration:
        """Start generating without waiting, so the caller can verify the previous batch meanwhile.

        Each sample gets its own seed from (generator.seed, step, prompt id, sample index, round);
        `prompt_ids=None` uses each text's index. generator.seed=null leaves the engine's RNG."""
        params = SamplingConfig.from_config(self.cfg.generator, **sampling)
        run_seed = self.cfg.generator.seed
        if run_seed is not None:
            run_seed = run_seed * 1_000_003 + self.cfg.trainer.seed  # runs with another seed draw other dice
            ids = prompt_ids if prompt_ids is not None else [str(i) for i in range(len(texts))]
            if len(ids) != len(texts):
                raise ValueError(f"{len(ids)} prompt_ids for {len(texts)} prompts")
            params.seeds = group_seeds(run_seed, step, ids, params.n, round)
        return self.generator.submit(texts, params)

    def generate(
        self,
        texts: list[str],
        step: int,
        *,
        prompt_ids: list[str] | None = None,
        round: int = 0,
        **sampling: Any,
    ) -> list[list[Sample]]:
        return self.submit(texts, step, prompt_ids=prompt_ids, round=round, **sampling).result()

    def verify(self, items: list[tuple[str, str, str, dict[str, Any]]]) -> list[VerifierResult]:
        return self.pool.verify_batch(items)

    def weight_version(self) -> int:
        return int(ray.get(self.store.version.remote(), timeout=60))

    def weight_epoch(self) -> int:
        return int(ray.get(self.store.epoch.remote(), timeout=60))

    def wait_newer(self, version: int, timeout_s: float) -> int:
        """Blocks until the store holds a version newer than `version` or a new epoch (or timeout)."""
        return int(ray.get(self.store.wait_newer.remote(version, timeout_s), timeout=timeout_s + 60))

    def placement(self) -> dict[str, list[str]]:
        """Ray node ids of the generator replica answering and of every verifier actor."""
        timeout = self.cfg.generator.request_timeout_s
        return {
            "generator": [str(self.generator.handle.node_id.remote().result(timeout_s=timeout))],
            "verifier": [
                str(n) for n in ray.get([a.node_id.remote() for a in self.pool.actors], timeout=timeout)
            ],
        }

    def cpu_threads(self, timeout_s: float = 10.0) -> int:
        """torch's thread count in the generator replica answering (a diagnostic: a short wait)."""
        return int(self.generator.handle.cpu_threads.remote().result(timeout_s=timeout_s))

    def shutdown(self) -> None:
        stop_generator(self.app_name)
        self.pool.shutdown()
        try:
            ray.kill(self.store)
        except Exception as e:  # already gone
            log.debug("weight store: %s", e)


def start_rollout(
    cfg: RlvrConfig, model_path: str, *, tag: str = "run", initial: tuple[int, dict[str, Any]] | None = None
) -> Rollout:
    """`initial=(version, state)` seeds the store (a resumed run), so replicas start on those weights."""
    store_name = f"rlvr-weights-{tag}"
    store = get_or_create_store(store_name)
    if initial is not None:
        publish_weights(store, initial[0], initial[1], lend=True)  # the driver outlives every reader
    specs = {name: spec.model_dump() for name, spec in cfg.verifiers.specs.items()}
    pool = VerifierPool(
        specs,
        pool_size=cfg.verifiers.pool_size,
        num_cpus=cfg.verifiers.num_cpus,
        request_timeout_s=cfg.verifiers.request_timeout_s,
        resources=cfg.cluster.verifier_resources or None,
    )
    app_name = f"rlvr-generator-{tag}"
    try:
        gen = start_generator(cfg, model_path, store_name, app_name=app_name)
    except BaseException:
        pool.shutdown()
        raise
    return Rollout(cfg, store, store_name, gen, pool, app_name)
