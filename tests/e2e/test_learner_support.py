"""Helpers for the learner e2e tests (no tests here): a random tiny Qwen2, deterministic synthetic
trajectories keyed by step, a minimal WeightStore stand-in, and a run driver."""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path
from typing import Any

import ray
import torch

from rlvr.config.schema import RlvrConfig
from rlvr.types import Prompt, Sample, Trajectory, VerifierResult

VOCAB = 256


def build_random_qwen2(out: Path, seed: int = 0) -> str:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    conf = Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=128,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_hidden_layers=2,
        intermediate_size=256,
        max_position_embeddings=128,
        tie_word_embeddings=False,
    )
    Qwen2ForCausalLM(conf).save_pretrained(str(out))
    return str(out)


def step_trajs(step: int, n_groups: int, group_size: int, version: int, seed: int = 0) -> list[Trajectory]:
    """The same content for the same (step, seed); fresh ids every call (a real run never repeats ids)."""
    rng = random.Random(seed * 100_003 + step)
    out = []
    for g in range(n_groups):
        prompt_ids = [rng.randrange(1, VOCAB) for _ in range(rng.randint(3, 6))]
        gid = f"s{step}g{g}"
        for i in range(group_size):
            resp = [rng.randrange(1, VOCAB) for _ in range(rng.randint(2, 6))]
            good = i % 2 == 0
            out.append(
                Trajectory(
                    prompt=Prompt(text="p", ground_truth="1"),
                    sample=Sample(prompt_ids, resp, "r", [-5.5] * len(resp), "stop", version),
                    group_id=gid,
                    result=VerifierResult(reward=1.0 if good else 0.0, correct=good),
                    advantage=1.0 if good else -1.0,
                    traj_id=uuid.uuid4().hex,
                )
            )
    return out


@ray.remote(num_cpus=0)
class FakeWeightStore:
    """Stand-in with the WeightStore contract (publish / latest) plus a history for assertions."""

    def __init__(self) -> None:
        self.history: list[tuple[int, Any]] = []

    def publish(self, version: int, state_ref: Any) -> int:
        if self.history and version <= self.history[-1][0]:  # same rule as the real WeightStore
            raise ValueError(f"weight version {version} is not newer than the stored {self.history[-1][0]}")
        ref = state_ref[0]
        # Own a copy: the learner worker that put the state may exit before the test reads it.
        self.history.append((version, ray.put(ray.get(ref))))
        return version

    def latest(self) -> tuple[int, Any] | None:
        return self.history[-1] if self.history else None

    def versions(self) -> list[int]:
        return [v for v, _ in self.history]

    def get(self, version: int) -> Any:
        refs = [r for v, r in self.history if v == version]
        return refs[-1] if refs else None


def base_cfg(**learner: Any) -> RlvrConfig:
    cfg = RlvrConfig()
    cfg.trainer.prompts_per_step = 2
    cfg.generator.n_samples = 4
    cfg.trainer.max_steps = 3
    cfg.trainer.max_staleness = 1000
    cfg.trainer.step_timeout_s = 60
    cfg.trainer.seed = 0
    lc = cfg.learner
    lc.num_workers, lc.cpus_per_worker, lc.mini_batch_size, lc.micro_batch_size = 2, 0.25, 8, 2
    lc.lr, lc.logprob_source, lc.zero_stage = 1e-3, "recompute", 0
    for k, v in learner.items():
        setattr(lc, k, v)
    return cfg


class Run:
    """One learner run: its own buffer, weight store and run dir."""

    def __init__(self, cfg: RlvrConfig, model_path: str, run_dir: Path, resume: str | None = None) -> None:
        from rlvr.pipeline.buffer import TrajectoryBuffer

        self.cfg, self.run_dir = cfg, run_dir
        name = f"ws-{uuid.uuid4().hex[:8]}"
        self.store = FakeWeightStore.options(name=name).remote()
        self.buffer = TrajectoryBuffer.remote()
        self.metrics: list[dict[str, Any]] = []
        self.model_path, self.resume, self.store_name = model_path, resume, name
        self.group: Any = None

    def fill(self, steps: range, fixed: bool = False, seed: int = 0) -> None:
        pc, ns = self.cfg.trainer.prompts_per_step, self.cfg.generator.n_samples
        for s in steps:
            ray.get(self.buffer.put.remote(step_trajs(0 if fixed else s, pc, ns, s, seed)), timeout=30)

    def start(self) -> Run:
        from rlvr.learner.launcher import start_learners

        self.group = start_learners(
            self.cfg, self.model_path, self.buffer, self.store_name, self.run_dir, resume_path=self.resume
        )
        return self

    def finish(self, timeout: float = 300) -> Run:
        deadline = time.monotonic() + timeout
        while not self.group.wait(1.0):
            self.poll()
            assert time.monotonic() < deadline, "learner run did not finish in time"
        self.poll()
        assert self.group.error is None, f"learner run failed: {self.group.error!r}"
        return self

    def poll(self) -> list[dict[str, Any]]:
        self.metrics += ray.get(self.buffer.pop_metrics.remote(), timeout=30)
        return self.metrics

    def weights(self, version: int) -> dict[str, torch.Tensor]:
        ref = ray.get(self.store.get.remote(version), timeout=30)
        assert ref is not None, f"version {version} was never published"
        return {k: torch.as_tensor(v) for k, v in ray.get(ref, timeout=60).items()}

    def versions(self) -> list[int]:
        return ray.get(self.store.versions.remote(), timeout=30)


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)
