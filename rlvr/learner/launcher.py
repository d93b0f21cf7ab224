"""Start the learner group: a Ray Train TorchTrainer running `train_loop_per_worker` in the background.

In: `RlvrConfig`, a model path, the TrajectoryBuffer handle, the WeightStore actor name, the run dir.
Out: a `LearnerGroup` (wait / result / error / latest_checkpoint). It checks the request against
the cluster before starting (fail fast with a one-line `RlvrUserError`) and never trains itself.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import ray

from rlvr.config.schema import RlvrConfig
from rlvr.errors import RlvrUserError
from rlvr.learner.ds_config import plan_batches
from rlvr.learner.storage import Storage, for_run, newest_checkpoint, resolve_resume_spec, run_config_kwargs


def _check_resources(cfg: RlvrConfig) -> None:
    lc = cfg.learner
    want: dict[str, float] = {"CPU": lc.num_workers * lc.cpus_per_worker}
    if lc.use_gpu:
        want["GPU"] = float(lc.num_workers)
    for name, amount in cfg.cluster.learner_resources.items():
        want[name] = want.get(name, 0.0) + lc.num_workers * amount
    have = ray.cluster_resources()
    free = ray.available_resources()
    short = {k: v for k, v in want.items() if v > 0 and free.get(k, 0.0) + 1e-9 < v}
    if short:
        asked = ", ".join(f"{k}={v:g}" for k, v in want.items() if v > 0)
        has = ", ".join(f"{k}={free.get(k, 0.0):g} free of {have.get(k, 0.0):g}" for k in short)
        raise RlvrUserError(
            f"learner requests {asked} (learner.num_workers={lc.num_workers}, learner.cpus_per_worker="
            f"{lc.cpus_per_worker}, learner.use_gpu={lc.use_gpu}, cluster.learner_resources) "
            f"but the cluster has {has}"
        )


def resolve_resume(cfg: RlvrConfig, search_dir: Path | None = None) -> str | None:
    """trainer.resume: None -> None; 'latest' -> newest checkpoint under trainer.storage (or the output
    dir); a path or URI -> itself. Always a local folder (a remote checkpoint is downloaded)."""
    spec = cfg.trainer.resume
    if not spec:
        return None
    storage = None if search_dir else cfg.trainer.storage
    return resolve_resume_spec(spec, storage, str(search_dir or cfg.trainer.output_dir))


class LearnerGroup:
    def __init__(self, trainer: Any, run_dir: Path, storage: Storage | None = None) -> None:
        self.trainer = trainer
        self.run_dir = run_dir
        self.storage = storage or for_run(None, run_dir)
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._fit, name="rlvr-learners", daemon=True)
        self._thread.start()

    def _fit(self) -> None:
        try:
            self.result = self.trainer.fit()
            if getattr(self.result, "error", None) is not None:
                self.error = self.result.error
        except BaseException as e:  # noqa: BLE001 - surfaced to the controller through `error`
            self.error = e

    def wait(self, timeout: float | None = None) -> bool:
        """True when fit() has returned (successfully or not)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    @property
    def latest_checkpoint(self) -> str | None:
        if self.result is not None and self.result.checkpoint is not None:
            return self.storage.uri(str(self.result.checkpoint.path))
        found = newest_checkpoint(self.storage.child("learner"))
        return self.storage.uri(found) if found else None


def start_learners(
    cfg: RlvrConfig,
    model_path: str,
    buffer: Any,
    weight_store_name: str,
    run_dir: Path,
    resume_path: str | None = None,
    namespace: str | None = None,
) -> LearnerGroup:
    from ray.train import FailureConfig, RunConfig, ScalingConfig

    from rlvr.cluster import started_here
    from rlvr.learner.process_group import BoundStoreTorchConfig
    from rlvr.learner.trainer import LeanTorchTrainer
    from rlvr.learner.worker import train_loop_per_worker

    lc = cfg.learner
    plan_batches(lc, lc.num_workers, cfg.trainer.prompts_per_step * cfg.generator.n_samples)
    _check_resources(cfg)
    resources: dict[str, float] = {"CPU": lc.cpus_per_worker, **cfg.cluster.learner_resources}
    if lc.use_gpu:
        resources["GPU"] = 1.0
    run_dir = Path(run_dir).resolve()
    storage = for_run(cfg.trainer.storage, run_dir)
    loop_config = {
        "cfg": cfg.model_dump(mode="json"),
        "model_path": model_path,
        "buffer": buffer,
        "weight_store_name": weight_store_name,
        "namespace": namespace or ray.get_runtime_context().namespace,
        "resume_path": resume_path,
        "pid_dir": str(run_dir / "learner" / "pids"),
        "run_dir": str(run_dir),
    }
    trainer = LeanTorchTrainer(
        train_loop_per_worker,
        train_loop_config=loop_config,
        # GPU: one group serving both devices; the learner's scalar collectives stay on gloo (CPU tensors),
        # DeepSpeed's gradient/parameter collectives run on NCCL. Ray Train passes the string through.
        torch_config=BoundStoreTorchConfig(backend="cpu:gloo,cuda:nccl" if lc.use_gpu else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=lc.num_workers, use_gpu=lc.use_gpu, resources_per_worker=resources
        ),
        run_config=RunConfig(
            name="learner",
            **run_config_kwargs(storage),
            failure_config=FailureConfig(max_failures=2),
        ),
        autoscaling=not started_here(),  # a local cluster rlvr started has no autoscaler to ask
    )
    return LearnerGroup(trainer, run_dir, storage)
