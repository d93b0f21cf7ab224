"""The rollout controller: prompts -> generator -> verifiers -> advantages -> trajectory buffer.

In: started components (generator client, verifier pool, buffer, weight store) and the config.
Out: one batch of trajectories per learner step in the buffer, plus per-step rollout metrics.
It never trains and never branches on the algorithm's name: advantages come from the registry.
The weight-version gate that paces it lives in `rlvr.pipeline.run`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from rlvr.algorithms.base import Algorithm
from rlvr.config.schema import RlvrConfig
from rlvr.errors import RlvrUserError
from rlvr.types import Prompt, Trajectory, VerifierResult


@dataclass
class PendingRollout:
    step: int
    prompts: list[Prompt]
    generation: Any  # the groups, or a request whose result() returns them (and sets .seconds)
    t_submit: float


@dataclass
class RolloutStats:
    generated: int = 0  # filtered/trained/stale counts live in the buffer, the one place that sees them all


class Controller:
    def __init__(
        self,
        cfg: RlvrConfig,
        prompts: list[Prompt],
        generate: Callable[[list[str], int], Any],  # groups, or a pending request (see PendingRollout)
        verify: Callable[[list[tuple[str, str, str, dict[str, Any]]]], list[VerifierResult]],
        buffer: Any,
        weight_version: Callable[[], int],
        algorithm: Algorithm,
        wait_newer: Callable[[int, float], object] | None = None,
    ) -> None:
        self.cfg = cfg
        self.prompts = prompts
        self.generate = generate
        self.verify = verify
        self.buffer = buffer
        self.weight_version = weight_version
        self.algorithm = algorithm
        self._wait_newer = wait_newer
        self.params = algorithm.Params.model_validate(cfg.algorithm.params)
        self.stats = RolloutStats()
        names = set(cfg.verifiers.specs)
        unknown = sorted({p.data_source for p in prompts} - names)
        if unknown:
            raise RlvrUserError(
                f"verifiers: data rows need verifier(s) {', '.join(unknown)} but only {', '.join(sorted(names))} "
                f"are selected; add them with verifiers=[...]"
            )

    def wait_for_weights(self, version: int, timeout_s: float) -> None:
        """Block until weights newer than `version` are published, or `timeout_s` passes."""
        if self._wait_newer is None:
            time.sleep(min(timeout_s, 0.05))
        else:
            self._wait_newer(version, timeout_s)

    def staleness_bound(self) -> int:
        return 0 if self.cfg.trainer.mode == "sync" else self.cfg.trainer.max_staleness

    def prompts_for_step(self, step: int) -> list[Prompt]:
        """Deterministic in the step, so a resumed run sees the same data as an uninterrupted one."""
        k = self.cfg.trainer.prompts_per_step
        n = len(self.prompts)
        return [self.prompts[(step * k + i) % n] for i in range(k)]

    def submit(self, step: int) -> PendingRollout:
        """Start generating `step`'s batch; with a pending-request generator this returns at once."""
        prompts = self.prompts_for_step(step)
        t0 = time.monotonic()
        return PendingRollout(step, prompts, self.generate([p.text for p in prompts], step), t0)

    def rollout(self, step: int) -> tuple[list[Trajectory], dict[str, float]]:
        return self.complete(self.submit(step))

    def complete(self, pending: PendingRollout) -> tuple[list[Trajectory], dict[str, float]]:
        """Wait for the generation, then verify, score and build the step's trajectories."""
        step, prompts, gen = pending.step, pending.prompts, pending.generation
        groups = gen.result() if hasattr(gen, "result") else gen
        # The generator's own time when it reports one: a request overlapped with other work has
        # waited longer than the generator worked on it.
        t_gen = float(getattr(gen, "seconds", 0.0)) or time.monotonic() - pending.t_submit
        tag = uuid.uuid4().hex[:8]  # one group id per prompt: group-relative advantages depend on it
        flat = [
            (p, s, f"{step}-{i}-{tag}")
            for i, (p, g) in enumerate(zip(prompts, groups, strict=True))
            for s in g
        ]
        t1 = time.monotonic()
        results = self.verify(
            [(p.data_source, s.response_text, p.ground_truth, p.metadata) for p, s, _ in flat]
        )
        t_ver = time.monotonic() - t1
        rewards = torch.tensor([r.reward for r in results], dtype=torch.float32)
        correct = torch.tensor([r.correct for r in results], dtype=torch.bool)
        gids = [gid for _, _, gid in flat]
        index = {g: i for i, g in enumerate(dict.fromkeys(gids))}
        group_index = torch.tensor([index[g] for g in gids], dtype=torch.long)
        adv = self.algorithm.advantages(rewards, correct, group_index, self.params)
        trajs = [
            Trajectory(prompt=p, sample=s, group_id=gid, result=r, advantage=float(a))
            for (p, s, gid), r, a in zip(flat, results, adv.tolist(), strict=True)
        ]
        n_tokens = sum(len(s.response_ids) for _, s, _ in flat)
        versions = [s.weight_version for _, s, _ in flat]
        metrics = {
            "reward": float(rewards.mean()) if len(rewards) else 0.0,
            "accuracy": float(correct.float().mean()) if len(correct) else 0.0,
            "response_length": n_tokens / max(len(flat), 1),
            "gen/tokens_per_s": n_tokens / max(t_gen, 1e-9),
            "gen/seconds": t_gen,
            "verify/seconds": t_ver,
            "gen/weight_version_min": float(min(versions)) if versions else 0.0,
            "gen/staleness": float(step - min(versions)) if versions else 0.0,
        }
        return trajs, metrics

    def filter_groups(self, trajs: list[Trajectory]) -> tuple[list[Trajectory], list[Trajectory]]:
        """DAPO-style: groups whose rewards are all equal carry no signal; drop (and count) them."""
        if not self.cfg.trainer.filter_zero_advantage:
            return trajs, []
        by_group: dict[str, list[Trajectory]] = {}
        for t in trajs:
            by_group.setdefault(t.group_id, []).append(t)
        keep: list[Trajectory] = []
        drop: list[Trajectory] = []
        for members in by_group.values():
            (drop if len({m.reward for m in members}) == 1 else keep).extend(members)
        return keep, drop
