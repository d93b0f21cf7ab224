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


def build_random_qwen2(out: Path, seed: int = 0, tied: bool = False) -> str:
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
        tie_word_embeddings=tied,
    )
    model = Qwen2ForCausalLM(conf)
    if tied:  # one Parameter for the embedding and the LM head
        assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    model.save_pretrained(str(out))
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
    """The WeightStore protocol (check / make_room / stage / commit / commit_refs / adopt, epochs) plus every version's
    weights kept for assertions (the real store keeps only the newest)."""

    def __init__(self) -> None:
        self.history: list[tuple[int, list[Any]]] = []
        self.epochs = 0
        self.staged: dict[str, list[Any]] = {}

    def version(self) -> int:
        return self.history[-1][0] if self.history else -1

    def epoch(self) -> int:
        return self.epochs

    def check(self, version: int, new_epoch: bool = False) -> None:
        if not new_epoch and self.history and version <= self.history[-1][0]:  # the real store's rule
            raise ValueError(f"weight version {version} is not newer than the stored {self.history[-1][0]}")

    def make_room(self, version: int, new_epoch: bool = False) -> bool:
        self.check(version, new_epoch)
        return False  # every version is kept (copied) for the assertions: nothing to drop

    def stage(self, token: str, chunk_ref: list[Any]) -> int:
        # Own a copy: the learner worker that put the chunk frees it (and may exit) before the test reads it.
        self.staged.setdefault(token, []).append(ray.put(ray.get(chunk_ref[0])))
        return len(self.staged[token])

    def commit(self, token: str, version: int, new_epoch: bool = False) -> int:
        self.check(version, new_epoch)
        self.epochs += int(new_epoch)
        self.history.append((version, self.staged.pop(token)))
        return version

    def commit_refs(self, version: int, refs: list[Any], new_epoch: bool = False) -> int:
        # Lent chunks: copy them at once (the real store borrows them until `adopt`), for the same reason.
        self.check(version, new_epoch)
        self.epochs += int(new_epoch)
        self.history.append((version, [ray.put(ray.get(r)) for r in refs]))
        return version

    def adopt(self) -> int:
        self.adopted = getattr(self, "adopted", 0) + 1
        return self.version()

    def adopt_calls(self) -> int:
        return getattr(self, "adopted", 0)

    def abort(self, token: str) -> None:
        self.staged.pop(token, None)

    def versions(self) -> list[int]:
        return [v for v, _ in self.history]

    def get(self, version: int) -> list[Any] | None:
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

    def fill(self, steps: range, fixed: bool = False, seed: int = 0, version: int | None = None) -> None:
        """Step-keyed trajectories, tagged as sampled by weight version `version` (default: the step)."""
        pc, ns = self.cfg.trainer.prompts_per_step, self.cfg.generator.n_samples
        for s in steps:
            v = s if version is None else version
            ray.get(self.buffer.put.remote(step_trajs(0 if fixed else s, pc, ns, v, seed)), timeout=30)

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
        from rlvr.generator.weight_chunks import decode_chunk

        refs = ray.get(self.store.get.remote(version), timeout=30)
        assert refs is not None, f"version {version} was never published"
        return {
            k: torch.as_tensor(v).float() for ref in refs for k, v in decode_chunk(ray.get(ref, timeout=60))
        }

    def versions(self) -> list[int]:
        return ray.get(self.store.versions.remote(), timeout=30)


def run_side_by_side(
    cfgs: dict[Any, RlvrConfig], model_path: str, tmp_path: Path, steps: int
) -> dict[Any, Run]:
    """One run per config, started together on the same step-keyed data, all finished."""
    runs = {}
    for key, cfg in cfgs.items():
        cfg.trainer.max_steps = steps
        runs[key] = Run(cfg, model_path, tmp_path / str(key))
        runs[key].fill(range(steps))
        runs[key].start()
    for r in runs.values():
        r.finish()
    return runs


def initial_weights(model_path: str) -> dict[str, torch.Tensor]:
    """The saved model's parameters in fp32 (to show a run moved them)."""
    from transformers import AutoModelForCausalLM

    return {k: v.float() for k, v in AutoModelForCausalLM.from_pretrained(model_path).state_dict().items()}


# Runs that should train the same parameters differ only by float summation order. Adam divides by sqrt(v):
# where a gradient is ~eps that noise moves an element by a visible fraction of lr (CI once saw 2.1e-5). A
# real mismatch (wrong normalising, wrong shard) changes gradient directions and moves elements by ~lr=1e-3.
SAME_UPDATE_TOL = 1e-4


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)
