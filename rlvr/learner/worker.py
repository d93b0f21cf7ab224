"""The per-worker learner loop (runs inside a Ray Train TorchTrainer worker).

In: a config dict (validated `RlvrConfig` dump, model path, buffer handle, weight-store name,
optional resume path). Out: parameter updates published to the WeightStore after every step,
per-step metrics sent to the buffer, checkpoints reported to Ray Train. It never computes
advantages and never branches on the algorithm name: the loss comes from the strategy registry.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray
import ray.train
import torch
import torch.distributed as dist

from rlvr.config.schema import RlvrConfig
from rlvr.learner import checkpoint as ckpt
from rlvr.learner.batching import TrainBatch, collate, micro_batches
from rlvr.learner.ds_config import build_optimizer, deepspeed_config, plan_batches
from rlvr.learner.publish import gather_full_state, publish


def _load_model(path: str, cfg: RlvrConfig, device: torch.device) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=torch.float32, trust_remote_code=cfg.model.trust_remote_code
    )
    return model.to(device)  # type: ignore[arg-type]  # HF's typed .to wrapper


def _skip_cpu_shm_allreduce() -> None:
    """DeepSpeed compiles a C++ shared-memory all-reduce (about 30 s, and it needs g++) when a CPU process
    group first starts. Only its inference all-reduce uses it; training goes through torch.distributed."""
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class _Learner:
    def __init__(self, config: dict[str, Any]) -> None:
        import deepspeed

        from rlvr import algorithms

        self.cfg = RlvrConfig.model_validate(config["cfg"])
        self.lc = self.cfg.learner
        ctx = ray.train.get_context()
        self.rank, self.world = ctx.get_world_rank(), ctx.get_world_size()
        self.model_path: str = config["model_path"]
        self.buffer = config["buffer"]
        self.store = ray.get_actor(config["weight_store_name"], namespace=config.get("namespace"))
        self.device = torch.device(f"cuda:{torch.cuda.current_device()}" if self.lc.use_gpu else "cpu")
        if not self.lc.use_gpu:
            from rlvr.cpu_threads import limit_cpu_threads

            limit_cpu_threads(self.lc.cpus_per_worker)
        _seed(self.cfg.trainer.seed + self.rank)
        if config.get("pid_dir"):  # lets operators (and the fault test) find worker processes
            Path(config["pid_dir"]).mkdir(parents=True, exist_ok=True)
            (Path(config["pid_dir"]) / f"rank{self.rank}.pid").write_text(str(os.getpid()))
            (Path(config["pid_dir"]) / f"rank{self.rank}.node").write_text(
                ray.get_runtime_context().get_node_id()
            )

        self.algo = algorithms.get(self.cfg.algorithm.name)
        self.params = self.algo.Params.model_validate(self.cfg.algorithm.params)
        self.k = self.algo.top_k(self.params)
        step_batch = self.cfg.trainer.prompts_per_step * self.cfg.generator.n_samples
        self.plan = plan_batches(self.lc, self.world, step_batch)

        model = _load_model(self.model_path, self.cfg, self.device)
        opt, sched = build_optimizer(model, self.lc)
        ds_cfg = deepspeed_config(self.lc, self.plan, self.world, self.lc.use_gpu)
        if not self.lc.use_gpu:
            _skip_cpu_shm_allreduce()
        self.engine, _, _, _ = deepspeed.initialize(
            model=model, optimizer=opt, lr_scheduler=sched, config=ds_cfg, dist_init_required=False
        )
        self.ref = None
        if self.lc.reference_model:
            self.ref = _load_model(self.model_path, self.cfg, self.device).eval().requires_grad_(False)
            if self.lc.bf16 and self.lc.use_gpu:
                self.ref = self.ref.to(torch.bfloat16)

        self.step, self.version, self.consumed = 0, 0, 0
        self._restore(config.get("resume_path"))

    def _restore(self, explicit: str | None) -> None:
        # A worker restart (FailureConfig) wins over the user's resume path: it is newer.
        found = ray.train.get_checkpoint()
        if found is not None:
            with found.as_directory() as d:
                meta = ckpt.load(Path(d), self.engine, self.rank)
        elif explicit:
            meta = ckpt.load(Path(explicit), self.engine, self.rank)
        else:
            return
        self.step, self.version = int(meta["step"]), int(meta["weight_version"])
        self.consumed = int(meta.get("samples_consumed", 0))

    def _stats(self, mb: TrainBatch) -> Any:
        from rlvr.policy_stats import policy_token_stats

        return policy_token_stats(
            self.engine.module,
            mb.input_ids,
            mb.attention_mask,
            mb.loss_mask,
            self.k,
            chunk_size=self.lc.chunk_size,
            ref_model=self.ref,
        )

    def _take(self) -> TrainBatch | None:
        tc = self.cfg.trainer
        ref = self.buffer.take.remote(
            self.step,
            self.rank,
            self.world,
            self.plan.step_batch,
            self.version,
            tc.max_staleness,
            tc.step_timeout_s,
        )
        trajs = ray.get(ref, timeout=tc.step_timeout_s + 60)
        # Every rank must agree to go on, or the collectives below would hang on the ranks that did.
        ok = torch.tensor([0.0 if trajs is None else 1.0])
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        return collate(trajs) if ok.item() > 0 and trajs is not None else None

    def train_step(self, batch: TrainBatch) -> dict[str, float]:
        from rlvr.algorithms.base import LossInput

        mbs = [mb.to(self.device) for mb in micro_batches(batch, self.plan.micro)]
        if self.lc.logprob_source == "recompute":
            self.engine.eval()
            with torch.no_grad():
                for mb in mbs:
                    mb.old_logprobs = self._stats(mb).logprobs.detach().float()
        self.engine.train()
        sums: dict[str, float] = {}
        count = 0
        for _ in range(self.lc.ppo_epochs):
            for mb in mbs:
                stats = self._stats(mb)
                inp = LossInput(
                    stats=stats,
                    old_logprobs=mb.old_logprobs,
                    advantages=mb.advantages,
                    rewards=mb.rewards,
                    correct=mb.correct,
                    mask=mb.loss_mask[:, 1:].float(),
                )
                out = self.algo.loss(inp, self.params)
                self.engine.backward(out.loss)
                self.engine.step()
                for key, val in {"loss": float(out.loss.detach()), **out.metrics}.items():
                    sums[key] = sums.get(key, 0.0) + float(val)
                count += 1
        return {k: v / count for k, v in sums.items()}

    def _all_mean(self, metrics: dict[str, float]) -> dict[str, float]:
        keys = sorted(metrics)
        vec = torch.tensor([metrics[k] for k in keys], dtype=torch.float64)
        dist.all_reduce(vec)
        return {k: float(v) / self.world for k, v in zip(keys, vec.tolist(), strict=True)}

    def _save(self, metrics: dict[str, float], full_state: dict[str, torch.Tensor] | None) -> None:
        d = Path(tempfile.mkdtemp(prefix=f"rlvr-ckpt-r{self.rank}-"))
        meta = {"step": self.step, "weight_version": self.version, "samples_consumed": self.consumed}
        ckpt.save(d, self.engine, self.rank, meta, full_state, self.model_path)
        ray.train.report(
            {**metrics, "step": self.step},
            checkpoint=ray.train.Checkpoint.from_directory(str(d)),
            checkpoint_dir_name=f"checkpoint_{self.step:06d}",
        )
        shutil.rmtree(d, ignore_errors=True)

    def run(self) -> None:
        tc = self.cfg.trainer
        last_saved = self.step
        metrics: dict[str, float] = {}
        while self.step < tc.max_steps:
            t0 = time.perf_counter()
            batch = self._take()
            t_data = time.perf_counter()  # the rest of the step is the learner's own work
            if batch is None:
                break  # buffer closed or timed out: stop cleanly with a final checkpoint
            stale = (self.version - batch.weight_versions).float()
            metrics = self._all_mean(self.train_step(batch))
            self.step += 1
            self.version = self.step
            self.consumed += self.plan.step_batch
            full = gather_full_state(self.engine, self.lc.zero_stage, self.rank)
            if self.rank == 0:
                publish(self.store, self.version, full)
            dt = time.perf_counter() - t0
            metrics |= {
                "staleness_mean": float(stale.mean()),
                "staleness_max": float(stale.max()),
                "step_time_s": dt,
                "train_time_s": time.perf_counter() - t_data,
                "samples_per_s": self.plan.step_batch / dt,
                "lr": float(self.engine.get_lr()[0]),
                "weight_version": float(self.version),
            }
            if self.rank == 0:
                ray.get(self.buffer.report_metrics.remote(self.step - 1, metrics), timeout=60)
            if (tc.save_every and self.step % tc.save_every == 0) or self.step == tc.max_steps:
                self._save(metrics, full)
                last_saved = self.step
        if self.step != last_saved:
            self._save(metrics, gather_full_state(self.engine, self.lc.zero_stage, self.rank))


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train entry point: build, (resume,) train `trainer.max_steps` steps, checkpoint, exit cleanly."""
    _Learner(config).run()
    # Only on success: after an error the other ranks may never reach the barrier.
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
