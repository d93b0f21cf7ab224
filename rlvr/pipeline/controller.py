"""The rollout controller: prompts -> generator -> verifiers -> advantages -> trajectory buffer.

In: started components (generator client, verifier pool, buffer, weight store) and the config.
Out: one batch of trajectories per learner step in the buffer, plus per-step rollout metrics.
It never trains and never branches on the algorithm's name: advantages come from the registry.
The weight-version gate that paces it lives in `rlvr.pipeline.run`.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from rlvr.algorithms.base import Algorithm
from rlvr.config.schema import RlvrConfig
from rlvr.errors import RlvrUserError
from rlvr.rewards import RewardPlan
from rlvr.types import Prompt, Trajectory, VerifierResult


@dataclass
class PendingRollout:
    step: int
    prompts: list[Prompt]
    generation: Any  # the groups, or a request whose result() returns them (and sets .seconds)
    t_submit: float
    round: int = 0  # DAPO top-up round within the step (0 = the step's own prompts)


@dataclass
class RolloutStats:
    generated: int = 0  # filtered/trained/stale counts live in the buffer, the one place that sees them all


class Controller:
    def __init__(
        self,
        cfg: RlvrConfig,
        prompts: list[Prompt],
        generate: Callable[..., Any],  # (texts, step, prompt_ids=, round=) -> groups or a pending request
        verify: Callable[[list[tuple[str, str, str, dict[str, Any]]]], list[VerifierResult]],
        buffer: Any,
        weight_version: Callable[[], int],
        algorithm: Algorithm,
        wait_newer: Callable[[int, float], object] | None = None,
        weight_epoch: Callable[[], int] = lambda: 0,
    ) -> None:
        self.cfg = cfg
        self.prompts = prompts
        self.generate = generate
        self.verify = verify
        self.buffer = buffer
        self.weight_version = weight_version
        self.algorithm = algorithm
        self._wait_newer = wait_newer
        self.weight_epoch = weight_epoch
        self.params = algorithm.Params.model_validate(cfg.algorithm.params)
        self.reward_plan = RewardPlan.from_config(cfg.verifiers)
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

    def prompts_for_round(self, step: int, round_: int) -> list[Prompt]:
        """Round 0: the step's own prompts. Top-up rounds (DAPO dynamic sampling) draw prompts this step has
        not used yet, deterministically in (data seed, step, round), so they bring new signal."""
        if round_ == 0:
            return self.prompts_for_step(step)
        used = {p.prompt_id for r in range(round_) for p in self.prompts_for_round(step, r)}
        pool = [p for p in self.prompts if p.prompt_id not in used] or list(self.prompts)
        rng = random.Random(f"{self.cfg.data.seed}-{step}-{round_}")
        k = self.cfg.trainer.prompts_per_step
        return rng.sample(pool, k) if len(pool) >= k else [rng.choice(pool) for _ in range(k)]

    def submit(self, step: int, round_: int = 0) -> PendingRollout:
        """Start generating `step`'s batch; with a pending-request generator this returns at once. Every
        sample's randomness is its own: the generator seeds it from (run seed, step, prompt id, sample, round)."""
        prompts = self.prompts_for_round(step, round_)
        t0 = time.monotonic()
        gen = self.generate(
            [p.text for p in prompts], step, prompt_ids=[p.prompt_id for p in prompts], round=round_
        )
        return PendingRollout(step, prompts, gen, t0, round_)

    def rollout(self, step: int, round_: int = 0) -> tuple[list[Trajectory], dict[str, float]]:
        return self.complete(self.submit(step, round_))

    def complete(self, pending: PendingRollout) -> tuple[list[Trajectory], dict[str, float]]:
        """Wait for the generation, then verify, score and build the step's trajectories."""
        step, prompts, gen = pending.step, pending.prompts, pending.generation
        groups = gen.result() if hasattr(gen, "result") else gen
        # The generator's own time when it reports one: a request overlapped with other work has
        # waited longer than the generator worked on it.
        t_gen = float(getattr(gen, "seconds", 0.0)) or time.monotonic() - pending.t_submit
        tag = uuid.uuid4().hex[:8]  # one group id per prompt: group-relative advantages depend on it
        flat = [
            (p, s, f"{step}-{pending.round}-{i}-{tag}")
            for i, (p, g) in enumerate(zip(prompts, groups, strict=True))
            for s in g
        ]
        t1 = time.monotonic()
        # Every verifier that scores a row (its own, plus `applies_to: all` ones), weighted, plus group rewards.
        results, reward_parts = self.reward_plan.combine(flat, self.verify(self.reward_plan.items(flat)))
        t_ver = time.monotonic() - t1
        shaped = overlong_rewards(
            [r.reward for r in results],
            [s for _, s, _ in flat],
            self.cfg.trainer,
            self.cfg.generator.max_tokens,
        )
        rewards = torch.tensor(shaped, dtype=torch.float32)
        correct = torch.tensor([r.correct for r in results], dtype=torch.bool)
        gids = [gid for _, _, gid in flat]
        index = {g: i for i, g in enumerate(dict.fromkeys(gids))}
        group_index = torch.tensor([index[g] for g in gids], dtype=torch.long)
        adv = self.algorithm.advantages(rewards, correct, group_index, self.params)
        drop_overlong = self.cfg.trainer.overlong == "filter"
        trajs = [
            Trajectory(
                prompt=p,
                sample=s,
                group_id=gid,
                result=r,
                advantage=float(a),
                trainable=not (drop_overlong and s.truncated),
            )
            for (p, s, gid), r, a in zip(flat, results, adv.tolist(), strict=True)
        ]
        n_tokens = sum(len(s.response_ids) for _, s, _ in flat)
        versions = [s.weight_version for _, s, _ in flat]
        n = max(len(flat), 1)
        metrics = {
            "reward": float(rewards.mean()) if len(rewards) else 0.0,
            "verifier_reward": sum(r.reward for r in results) / n,
            "truncated_frac": sum(s.truncated for _, s, _ in flat) / n,
            "no_answer_frac": sum(r.status.value == "no_answer" for r in results) / n,
            **reward_parts,
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


def overlong_rewards(rewards: list[float], samples: list[Any], tc: Any, max_tokens: int) -> list[float]:
    """trainer.overlong=penalty: DAPO's soft overlong punishment. With L the response length, L_max =
    generator.max_tokens and B = trainer.overlong_buffer, the reward gets
    0 for L <= L_max - B, -p (L - (L_max - B)) / B inside the buffer, and -p for a response cut at L_max."""
    if tc.overlong != "penalty":
        return list(rewards)
    start = max(max_tokens - tc.overlong_buffer, 0)
    out = []
    for r, s in zip(rewards, samples, strict=True):
        length = len(s.response_ids)
        if s.truncated or length >= max_tokens:
            pen = tc.overlong_penalty
        elif length > start:
            pen = tc.overlong_penalty * (length - start) / max(tc.overlong_buffer, 1)
        else:
            pen = 0.0
        out.append(r - pen)
    return out
