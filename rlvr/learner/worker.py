"""The per-worker learner loop (runs inside a Ray Train TorchTrainer worker).

In: a config dict (validated `RlvrConfig` dump, model path, buffer handle, weight-store name,
optional resume path). Out: parameter updates published to the WeightStore after every step,
per-step metrics sent to the buffer, checkpoints reported to Ray Train. It never computes
advantages and never branches on the algorithm name: the loss comes from the strategy registry.
"""

from __future__ import annotations

import gc
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
from rlvr.heap import release_free_heap
from rlvr.learner import checkpoint as ckpt
from rlvr.learner.attention import AttentionSwitch
from rlvr.learner.batching import TrainBatch, collate, micro_batches
from rlvr.learner.collectives import agree, all_max, all_mean, all_sum
from rlvr.learner.ds_config import build_optimizer, deepspeed_config, plan_batches
from rlvr.learner.lean_step import use_lean_step
from rlvr.learner.lora import apply_lora
from rlvr.learner.off_policy import importance_weights
from rlvr.learner.publish import gather_full_state, keep_after_exit, publish
from rlvr.models.loading import load_reference_model, load_train_model
from rlvr.models.shipping import local_path


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
        self.model_path: str = local_path(config["model_path"])  # fetched here when only the driver has it
        self.run_dir: str = config["run_dir"]
        self.buffer = config["buffer"]
        self.store = ray.get_actor(config["weight_store_name"], namespace=config.get("namespace"))
        self.device = torch.device(f"cuda:{torch.cuda.current_device()}" if self.lc.use_gpu else "cpu")
        if not self.lc.use_gpu:
            from rlvr.cpu_threads import limit_cpu_threads

            limit_cpu_threads(self.lc.cpus_per_worker, self.lc.num_threads)
        _seed(self.cfg.trainer.seed + self.rank)
        if config.get("pid_dir"):  # lets operators (and the fault test) find worker processes
            Path(config["pid_dir"]).mkdir(parents=True, exist_ok=True)
            (Path(config["pid_dir"]) / f"rank{self.rank}.pid").write_text(str(os.getpid()))
            (Path(config["pid_dir"]) / f"rank{self.rank}.node").write_text(
                ray.get_runtime_context().get_node_id()
            )
            (Path(config["pid_dir"]) / f"rank{self.rank}.threads").write_text(str(torch.get_num_threads()))

        self.algo = algorithms.from_config(self.cfg.algorithm)
        self.params = self.algo.Params.model_validate(self.cfg.algorithm.params)
        self.k = self.algo.top_k(self.params)
        step_batch = self.cfg.trainer.prompts_per_step * self.cfg.generator.n_samples
        self.plan = plan_batches(self.lc, self.world, step_batch)
        # The sampler drew from softmax(z / T); the learner scores the same distribution (as verl, SimKO).
        self.temperature = self.cfg.generator.temperature if self.cfg.generator.temperature > 0 else 1.0
        self.bf16 = self.lc.bf16 or self.cfg.model.dtype == "bfloat16"

        model = load_train_model(
            self.model_path, self.cfg.model, gradient_checkpointing=self.lc.gradient_checkpointing
        )
        model = apply_lora(model, self.lc.lora).to(self.device)  # the model itself when LoRA is off
        self.model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        updates = self.cfg.trainer.max_steps * self.plan.optimizer_steps * self.lc.ppo_epochs
        opt, sched = build_optimizer(model, self.lc, updates)
        ds_cfg = deepspeed_config(self.lc, self.plan, self.world, self.lc.use_gpu, bf16=self.bf16)
        if not self.lc.use_gpu:
            _skip_cpu_shm_allreduce()
        self.engine, _, _, _ = deepspeed.initialize(
            model=model, optimizer=opt, lr_scheduler=sched, config=ds_cfg, dist_init_required=False
        )
        use_lean_step(self.engine)  # bf16 at ZeRO-0: fp32 gradients one parameter at a time
        del model, opt
        self.ref = None
        if self.lc.reference_model:
            self.ref = load_reference_model(self.model_path, self.cfg.model).to(self.device)
        self.attn: AttentionSwitch | None = AttentionSwitch(
            self.engine.module, self.lc.attn_implementation, self.lc.use_gpu
        )
        self.ref_attn: AttentionSwitch | None = (
            AttentionSwitch(self.ref, self.lc.attn_implementation, self.lc.use_gpu)
            if self.ref is not None
            else None
        )
        release_free_heap()  # the fp32 model DeepSpeed cast to bf16, and loading's temporaries

        self.step, self.version, self.epoch, self.consumed = 0, 0, 0, 0
        self.restarted = False
        self._restore(config.get("resume_path") and local_path(config["resume_path"], "trainer.resume"))
        self._follow_restored_weights()

    def _restore(self, explicit: str | None) -> None:
        """A worker restart (FailureConfig) wins over the user's resume path: it is newer. Ray Train hands
        the restarted group the last checkpoint its controller registered; a report still queued when the
        worker died is missing there, so this run's own newest checkpoint in storage is checked too."""
        found = ray.train.get_checkpoint()
        own = self._own_newest_checkpoint()
        self.restarted = found is not None or own is not None
        if own is not None and (found is None or own[0] > self._step_of(found)):
            meta = ckpt.load(Path(own[1]), self.engine, self.rank)
        elif found is not None:
            with found.as_directory() as d:
                meta = ckpt.load(Path(d), self.engine, self.rank)
        elif explicit:
            meta = ckpt.load(Path(explicit), self.engine, self.rank)
        else:
            return
        self.step, self.version = int(meta["step"]), int(meta["weight_version"])
        self.consumed = int(meta.get("samples_consumed", 0))

    def _own_newest_checkpoint(self) -> tuple[int, str] | None:
        from rlvr.learner.storage import download, for_run, newest_checkpoint, read_meta

        st = for_run(self.cfg.trainer.storage, Path(self.run_dir)).child("learner")
        path = newest_checkpoint(st)
        if path is None:
            return None
        step = int((read_meta(st, path) or {}).get("step", 0))
        return step, (download(st, path) if st.fs is not None else path)

    @staticmethod
    def _step_of(checkpoint: Any) -> int:
        with checkpoint.as_directory() as d:
            return int((ckpt.read_meta(Path(d)) or {}).get("step", 0))

    def _follow_restored_weights(self) -> None:
        """A restarted learner may be behind the versions it published before it died (a lost branch). It
        republishes its restored weights under a new weight epoch, so generators sample from them at once
        and the buffer drops what the lost branch sampled. Every restart starts an epoch, lost branch or not
        (a restart before the first checkpoint shows as a store ahead of version 0)."""
        stored: Any = ray.get(self.store.version.remote(), timeout=60) if self.rank == 0 else 0
        if self.restarted or all_max([float(stored)])[0] > self.version:
            full = gather_full_state(self.engine, self.lc.zero_stage, self.rank, self._weight_dtype())
            if self.rank == 0:
                publish(self.store, self.version, full, new_epoch=True)
            agree(True)  # every rank reads the epoch after rank 0 bumped it
        epoch: Any = ray.get(self.store.epoch.remote(), timeout=60)
        self.epoch = int(epoch)

    def _weight_dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.bf16 else torch.float32

    def _stats(self, mb: TrainBatch, model: Any = None) -> Any:
        from rlvr.learner.engine_forward import begin_forward
        from rlvr.policy_stats import policy_token_stats

        if model is None:  # what engine.forward() does first: ZeRO-3 counts micro-steps there
            begin_forward(self.engine)
        switch = self.attn if model is None else self.ref_attn
        if switch is not None:
            switch.before(*mb.input_ids.shape)
        return policy_token_stats(
            model if model is not None else self.engine.module,
            mb.input_ids,
            mb.attention_mask,
            mb.loss_mask,
            self.k if model is None else 1,
            chunk_size=self.lc.chunk_size,
            temperature=self.temperature,
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
            self.epoch,
        )
        trajs = ray.get(ref, timeout=tc.step_timeout_s + 60)
        # Every rank must agree to go on, or the collectives below would hang on the ranks that did.
        return collate(trajs) if agree(trajs is not None) and trajs is not None else None

    def _needs_recompute(self) -> bool:
        """pi_old is the policy before this step's first update. With one optimizer update per step it equals
        the current weights, so the forward pass is skipped and the current log-probs (detached) stand in."""
        multi = self.plan.optimizer_steps > 1 or self.lc.ppo_epochs > 1
        return self.lc.logprob_source == "recompute" and multi

    def _score_once(self, batch: TrainBatch) -> None:
        """The no-grad passes, once per step (not per epoch): pi_old when it can differ from the current
        weights, and the reference policy."""
        if not (self._needs_recompute() or self.ref is not None):
            return
        self.engine.eval()
        with torch.no_grad():
            for start in range(0, batch.size, self.plan.micro):
                rows = slice(start, start + self.plan.micro)
                mb = micro_batches(batch.select(rows), self.plan.micro)[0]
                width = mb.old_logprobs.shape[1]
                if self._needs_recompute():
                    batch.old_logprobs[rows, :width] = self._stats(mb).logprobs.float()
                if self.ref is not None:
                    batch.ref_logprobs[rows, :width] = self._stats(mb, self.ref).logprobs.float()
        self.engine.train()

    def _epoch_order(self, n: int, epoch: int) -> torch.Tensor:
        """Rows in mini-batch order: shuffled anew every epoch, deterministically (seed, step, epoch, rank),
        so a resumed run sees the same mini-batches."""
        if not self.lc.shuffle or (self.plan.optimizer_steps == 1 and self.lc.ppo_epochs == 1):
            return torch.arange(n)
        g = torch.Generator().manual_seed(
            hash((self.cfg.trainer.seed, self.step, epoch, self.rank)) & 0x7FFF_FFFF_FFFF
        )
        return torch.randperm(n, generator=g)

    def train_step(self, batch: TrainBatch) -> dict[str, float]:
        from rlvr.algorithms.base import LossInput

        batch = batch.to(self.device)
        self._score_once(batch)
        mini = self.plan.mini_rank
        orders = [self._epoch_order(batch.size, e) for e in range(self.lc.ppo_epochs)]
        valid = batch.loss_mask[:, 1:].float().sum(1)
        # token_mean over a mini-batch divides by ALL its tokens, on every micro-batch and rank: one
        # collective per step gives every mini-batch's total.
        local = [float(valid[o[j : j + mini]].sum()) for o in orders for j in range(0, batch.size, mini)]
        global_tokens = all_sum(local)
        global_seqs = float(mini * self.world)
        contrib_keys = ("loss", "pg_loss")
        sums: dict[str, float] = {}
        count, updates = 0, 0
        for order in orders:
            shuffled = batch.select(order)
            for j in range(0, batch.size, mini):
                gt = global_tokens[updates]
                updates += 1
                for mb in micro_batches(shuffled.select(slice(j, j + mini)), self.plan.micro):
                    stats = self._stats(mb)
                    mask = mb.loss_mask[:, 1:].float()
                    if self.ref is not None:
                        stats.ref_logprobs = mb.ref_logprobs
                    if self.lc.logprob_source == "behaviour":
                        old = mb.behaviour_logprobs
                    elif self._needs_recompute():
                        old = mb.old_logprobs
                    else:
                        old = stats.logprobs.detach().float()
                    is_w, off_metrics = importance_weights(
                        old, mb.behaviour_logprobs, mask, self.lc.off_policy, self.lc.is_cap
                    )
                    inp = LossInput(
                        stats=stats,
                        old_logprobs=old,
                        advantages=mb.advantages,
                        rewards=mb.rewards,
                        correct=mb.correct,
                        mask=mask,
                        behaviour_logprobs=mb.behaviour_logprobs,
                        is_weight=is_w,
                        global_tokens=gt,
                        global_seqs=global_seqs,
                        max_response_len=self.cfg.generator.max_tokens,
                    )
                    out = self.algo.loss(inp, self.params)
                    # The loss is this micro-batch's share of the mini-batch mean; DeepSpeed averages
                    # gradients over ranks, so undo that and skip its division by accumulation steps.
                    self.engine.backward(out.loss * self.world, scale_wrt_gas=False)
                    self.engine.step()
                    row = {**out.metrics, **off_metrics, "loss": float(out.loss.detach())}
                    for key, val in row.items():
                        sums[key] = sums.get(key, 0.0) + float(val)
                    count += 1
        per_micro = {k: v / count for k, v in sums.items() if k not in contrib_keys}
        # Contributions add up to the mini-batch loss over micro-batches and ranks (all_mean divides by world).
        per_micro |= {k: sums[k] * self.world / updates for k in contrib_keys if k in sums}
        return per_micro

    def _save(self, metrics: dict[str, float], full_state: dict[str, torch.Tensor] | None) -> None:
        d = Path(tempfile.mkdtemp(prefix=f"rlvr-ckpt-r{self.rank}-"))
        meta = {"step": self.step, "weight_version": self.version, "samples_consumed": self.consumed}
        try:  # a failed save (a full disk) must not leave a model-sized staging folder behind
            ckpt.save(d, self.engine, self.rank, meta, full_state, self.model_path)
            ray.train.report(
                {**metrics, "step": self.step},
                checkpoint=ray.train.Checkpoint.from_directory(str(d)),
                checkpoint_dir_name=f"checkpoint_{self.step:06d}",
            )
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def _stop_reason(self) -> str:
        closed = bool(ray.get(self.buffer.is_closed.remote(), timeout=60))
        if closed:
            return "interrupted: the buffer was closed (Ctrl-C)"
        return (
            f"no batch for step {self.step} within trainer.step_timeout_s="
            f"{self.cfg.trainer.step_timeout_s:g}s (weights at version {self.version})"
        )

    def run(self) -> None:
        tc = self.cfg.trainer
        last_saved = self.step
        metrics: dict[str, float] = {}
        t0 = time.perf_counter()
        while self.step < tc.max_steps:
            batch = self._take()
            t_data = time.perf_counter()  # the rest of the step is the learner's own work
            if batch is None:
                # Stop with a final checkpoint; the driver turns the reason into the run's outcome.
                reason = self._stop_reason()
                ray.get(self.buffer.report_stop.remote(self.rank, self.step, reason), timeout=60)
                break
            stale = (self.version - batch.weight_versions).float()
            metrics = all_mean(self.train_step(batch))
            self.step += 1
            self.version = self.step
            self.consumed += self.plan.step_batch
            full = gather_full_state(self.engine, self.lc.zero_stage, self.rank, self._weight_dtype())
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
                "weight_epoch": float(self.epoch),
            }
            if self.rank == 0:
                ray.get(self.buffer.report_metrics.remote(self.step - 1, metrics), timeout=60)
            if (tc.save_every and self.step % tc.save_every == 0) or self.step == tc.max_steps:
                self._save(metrics, full)
                last_saved = self.step
            del full  # a full copy of the weights: not held through the next step's training
            release_free_heap(self.model_bytes)  # a step's temporaries scale with the model
            # The next step's clock starts here: step_time_s also counts this step's report, checkpoint
            # and trim, so summed step times are the loop's wall time.
            t0 = time.perf_counter()
        if self.step != last_saved:
            dtype = self._weight_dtype()
            self._save(metrics, gather_full_state(self.engine, self.lc.zero_stage, self.rank, dtype))
        # Trained and saved: free the weights and optimizer state before the store copies the published
        # weights (below), so the two are never held at once.
        self.engine = self.ref = self.attn = self.ref_attn = None  # the switches hold the models too
        gc.collect()
        release_free_heap()
        if self.rank == 0:
            keep_after_exit(self.store)  # the published weights are this process's objects


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train entry point: build, (resume,) train `trainer.max_steps` steps, checkpoint, exit cleanly."""
    _Learner(config).run()
    # Only on success: after an error the other ranks may never reach the barrier.
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
