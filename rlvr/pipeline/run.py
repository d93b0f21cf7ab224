"""`rlvr run`: start every component, drive the controller until the learners finish, account for
every trajectory, and leave a resumable checkpoint. Ctrl-C stops cleanly.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

from rlvr.algorithms import from_config as algorithm_from_config
from rlvr.config import RlvrConfig
from rlvr.data.loader import load_prompts
from rlvr.errors import RlvrRunError, RlvrUserError
from rlvr.generator.weight_store import get_or_create_store
from rlvr.learner.launcher import resolve_resume, start_learners
from rlvr.pipeline.boot import Early, prepare_while_connecting
from rlvr.pipeline.buffer import TrajectoryBuffer
from rlvr.pipeline.components import start_rollout
from rlvr.pipeline.controller import Controller, PendingRollout
from rlvr.pipeline.health import NoAnswerMonitor
from rlvr.pipeline.interrupt import wait_after_interrupt
from rlvr.pipeline.logger import MetricsLogger
from rlvr.pipeline.rundir import make_run_dir, remove_if_unused
from rlvr.pipeline.samples import SampleLog
from rlvr.pipeline.startup import Startup

log = logging.getLogger(__name__)
GATE_POLL_S = 0.5  # longest wait in the weight gate before re-checking learners and the buffer
STARVE_S = 10.0  # learners idle this long with too little queued: they need data we did not plan


def _say(msg: str) -> None:
    print(f"[rlvr] {msg}", file=sys.stderr, flush=True)


def _resume_state(path: str) -> tuple[int, dict[str, Any]] | None:
    """(weight version, HF state dict) saved in a learner checkpoint, so generators restart on it."""
    from safetensors.torch import load_file

    from rlvr.learner.checkpoint import read_meta

    meta = read_meta(Path(path)) or {}
    files = sorted(Path(path).rglob("*.safetensors"))
    if not files:
        return None
    state: dict[str, Any] = {}
    for f in files:
        state.update(load_file(str(f)))
    return int(meta.get("weight_version", meta.get("step", 0))), state


def check_config(cfg: RlvrConfig) -> tuple[Any, str | None]:
    """The algorithm and the checkpoint to resume from: problems in either fail before anything starts."""
    return algorithm_from_config(cfg.algorithm), resolve_resume(cfg)


def run_training(cfg: RlvrConfig, early: Early | None = None) -> dict[str, Any]:
    """Train with `cfg`. `early` (from `rlvr.pipeline.boot.run`): the cluster and the prepared model and
    prompts are already there; without it they are prepared here, the model and prompts while Ray starts."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    if early is None:
        startup = Startup()
        startup.mark("config")
        algo, resume = check_config(cfg)
        # Model, tokenizer and prompts are read while Ray starts (each alone leaves a core idle). Every
        # problem in them still fails the run before a run directory or any component exists.
        prepared, info = prepare_while_connecting(cfg, startup)
    else:
        startup, prepared, info = early.startup, early.prepared, early.cluster
        algo, resume = early.algo, early.resume
    _say(info["message"])
    run_dir = make_run_dir(cfg)
    buffer: Any = None
    learners: Any = None
    try:
        logger = MetricsLogger(cfg.logging, run_dir, cfg.trainer.max_steps)  # a missing wandb fails fast
        check_run_resources(cfg)
        initial = _resume_state(resume) if resume else None
        tag = run_dir.name.replace("_", "-")[-40:]
        t_start = time.time()
        # The learners (Ray Train + DeepSpeed, the slowest to start) come up while Serve and vLLM do.
        store_name = f"rlvr-weights-{tag}"
        get_or_create_store(store_name)
        buffer = TrajectoryBuffer.options(max_concurrency=64).remote()  # type: ignore[attr-defined]
        learners = start_learners(cfg, prepared.model_path, buffer, store_name, run_dir, resume_path=resume)
        rollout = start_rollout(cfg, prepared.model_path, tag=tag, initial=initial)
        startup.mark("rollout_ready")
    except BaseException:
        if learners is not None:  # they started beside the rollout: let them exit before the next run
            ray.get(buffer.close.remote(), timeout=30)
            learners.wait(60)
        remove_if_unused(run_dir)  # a failed start leaves no empty run directory behind
        raise
    tb = f"; TensorBoard: tensorboard --logdir {run_dir / 'tensorboard'}" if cfg.logging.tensorboard else ""
    _say(f"run directory {run_dir}{tb}")
    start_step = initial[0] if initial else 0
    controller: Controller | None = None
    summary: dict[str, Any] = {"run_dir": str(run_dir), "interrupted": False}
    watch = _Watch(cfg, run_dir)
    try:
        controller = Controller(
            cfg,
            prepared.prompts,
            rollout.submit,
            rollout.verify,
            buffer,
            lambda: max(rollout.weight_version(), start_step),
            algo,
            wait_newer=rollout.wait_newer,
            weight_epoch=lambda: int(ray.get(rollout.store.epoch.remote(), timeout=60)),
        )
        _drive(
            cfg,
            controller,
            buffer,
            learners,
            logger,
            start_step,
            _periodic_eval(cfg, rollout, logger, prepared.tokenizer),
            watch,
            startup,
        )
        if not learners.wait(cfg.trainer.step_timeout_s):
            raise TimeoutError("learners did not finish within trainer.step_timeout_s after the last batch")
        if learners.error is not None:
            raise RuntimeError(f"learners failed: {learners.error}") from learners.error
        _check_learners_finished(buffer, cfg)
    except KeyboardInterrupt:
        summary["interrupted"] = True
        _say("interrupted: learners save a checkpoint and stop (Ctrl-C again to quit without one)")
        ray.get(buffer.close.remote(), timeout=30)
        wait_after_interrupt(
            learners,
            lambda: ray.get(buffer.counters.remote(), timeout=30),
            cfg.learner.num_workers,
            cfg.trainer.step_timeout_s,
            _say,
        )
    finally:
        _flush_metrics(buffer, logger)
        counters = ray.get(buffer.counters.remote(), timeout=30)
        summary.update(_accounting(controller, counters))
        summary["verifier_stats"] = rollout.pool.stats()
        summary["placement"] = _placement(rollout, run_dir)
        summary["cpu_threads"] = _cpu_threads(rollout, run_dir)
        summary["checkpoint"] = learners.latest_checkpoint
        summary["wall_s"] = round(time.time() - t_start, 1)
        _learner_marks(startup, counters)
        summary["startup"] = startup.as_dict()
        summary["stops"] = counters.get("stops", {})
        summary["restarts"] = counters.get("restarts", [])
        logger.close()
        rollout.shutdown()
        ray.kill(buffer)
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    _say(startup.line())  # at the end: while the progress bar runs, a line would land inside it
    if summary["interrupted"] and summary["checkpoint"]:
        _say(f"stopped after {summary['wall_s']}s; continue with trainer.resume={summary['checkpoint']}")
    else:
        _say(f"done in {summary['wall_s']}s; checkpoint {summary['checkpoint']}")
    return summary


def check_run_resources(cfg: RlvrConfig) -> None:
    """Everything the run will ask for, against what the cluster has free, before anything starts (the
    components start side by side, so their own checks alone could each pass while together they cannot)."""
    g, lc, v = cfg.generator, cfg.learner, cfg.verifiers
    want = {
        "CPU": g.num_cpus * g.num_replicas + lc.cpus_per_worker * lc.num_workers + v.num_cpus * v.pool_size,
        "GPU": g.num_gpus * g.num_replicas + (lc.num_workers if lc.use_gpu else 0),
    }
    free = ray.available_resources()
    short = {k: n for k, n in want.items() if n > 0 and free.get(k, 0.0) + 1e-9 < n}
    if short:
        parts = ", ".join(f"{k}={n:g} (free {free.get(k, 0.0):g})" for k, n in short.items())
        raise RlvrUserError(
            f"the run needs {parts}: generator.num_replicas x generator.num_cpus/num_gpus + learner.num_workers "
            f"x learner.cpus_per_worker (learner.use_gpu) + verifiers.pool_size x verifiers.num_cpus; lower them "
            f"or give the cluster more (cluster.num_cpus)"
        )


def _periodic_eval(
    cfg: RlvrConfig, rollout: Any, logger: MetricsLogger, tokenizer: Any
) -> Callable[[int], None]:
    """Every `trainer.eval_every` steps: pass@K on held-out prompts through the same generator and verifiers."""
    if not cfg.trainer.eval_every:
        return lambda step: None
    from rlvr.pipeline.evaluate import evaluate_prompts

    budget = cfg.generator.max_model_len - cfg.generator.max_tokens
    prompts = load_prompts(
        cfg.data,
        evaluation=True,
        tokenizer=tokenizer,
        max_prompt_tokens=budget,
        special_tokens=cfg.generator.add_special_tokens,
    )
    prompts = prompts[: cfg.eval.max_prompts]

    def run(step: int) -> None:
        if (step + 1) % cfg.trainer.eval_every == 0:
            res = evaluate_prompts(rollout, cfg, prompts)
            row = {f"eval/pass@{k}": v for k, v in res["pass_at_k"].items()}
            logger.log(step, {**row, "eval/mean_at_n": res["mean_at_n"]}, progress=False)

    return run


def _drive(
    cfg: RlvrConfig,
    ctl: Controller,
    buffer: Any,
    learners: Any,
    logger: MetricsLogger,
    start: int,
    after_step: Callable[[int], None],
    watch: _Watch,
    startup: Startup,
) -> None:
    """Produce one batch per learner step behind the weight gate; top up when learners starve
    (stale drops or a replayed step after a worker restart) so nothing waits for data never coming.
    When the gate already admits the next step, its generation starts before this step is verified
    and queued, so the generator never idles on the driver's bookkeeping."""
    n = cfg.trainer.prompts_per_step * cfg.generator.n_samples
    bound = ctl.staleness_bound()
    # Until a learner first asks for data it is still loading the model and DeepSpeed: its own allowance,
    # when that is the longer one.
    before_start = ("trainer.step_timeout_s", cfg.trainer.step_timeout_s)
    if cfg.learner.start_timeout_s > cfg.trainer.step_timeout_s:
        before_start = ("learner.start_timeout_s", cfg.learner.start_timeout_s)
    step, surplus = start, 0
    ahead: PendingRollout | None = None  # the generation already running for `step`
    learned = start - 1  # the last step the learners reported
    last_v, last_change = -1, time.monotonic()
    last_epoch = ctl.weight_epoch()
    while not learners.done:
        c = ray.get(buffer.counters.remote(), timeout=30)
        _learner_marks(startup, c)
        v = ctl.weight_version()
        epoch = ctl.weight_epoch()
        if epoch != last_epoch:
            # A learner restarted from a checkpoint and republished its weights: plan again from there.
            _say(f"learners restarted from weight version {v} (weight epoch {epoch}); generating from there")
            last_epoch, step, ahead = epoch, max(v, start), None
        now = time.monotonic()
        if v != last_v:
            last_v, last_change = v, now
        planned_until = cfg.trainer.max_steps + int(c["replayed_steps"])
        finishing = learned >= cfg.trainer.max_steps - 1  # all steps trained: learners are saving
        # Only a learner blocked in `take` starves; one busy training must not trigger a stale top-up.
        starving = not finishing and c["waiting"] > 0 and c["queued"] < n and now - last_change > STARVE_S
        if ahead is None and step < planned_until and v >= step - bound:
            ahead = ctl.submit(step)
        if ahead is not None:
            current, ahead = ahead, None
            pending_gen = current.generation
            if hasattr(pending_gen, "result"):
                pending_gen.result()  # wait here, so the next request goes out the moment this one is done
            startup.mark("first_generation")
            if step + 1 < planned_until and ctl.weight_version() >= step + 1 - bound:
                ahead = ctl.submit(step + 1)
            surplus = _produce(cfg, ctl, buffer, logger, step, n, surplus, watch, first=current)
            after_step(step)
            step += 1
            last_change = time.monotonic()
        elif starving:
            _say(f"learners are waiting for data at weight version {v}; generating a top-up batch")
            surplus = _produce(cfg, ctl, buffer, logger, step, n, surplus, watch)
            last_change = time.monotonic()
        else:
            started = bool(c.get("first_ask_at"))
            key, deadline_s = (
                ("trainer.step_timeout_s", cfg.trainer.step_timeout_s) if started else before_start
            )
            if not finishing and now - last_change > deadline_s:
                raise TimeoutError(f"no progress for {key}={deadline_s:g}s (weights at {v})")
            # Woken by the next publish; the timeout re-checks starvation and the learners' exit.
            ctl.wait_for_weights(v, GATE_POLL_S)
        learned = max(learned, _flush_metrics(buffer, logger))


def _learner_marks(startup: Startup, counters: dict[str, Any]) -> None:
    for mark, key in (("learners_ready", "first_ask_at"), ("first_step", "first_take_at")):
        if counters.get(key):
            startup.mark(mark, counters[key])


def _produce(
    cfg: RlvrConfig,
    ctl: Controller,
    buffer: Any,
    logger: MetricsLogger,
    step: int,
    n: int,
    surplus: int,
    watch: _Watch,
    first: PendingRollout | None = None,
) -> int:
    """Generate (or finish `first`), verify, filter and queue at least one step's worth; returns the
    new surplus. With trainer.filter_zero_advantage, top-up rounds draw new prompts with new randomness
    (DAPO dynamic sampling) until the step is full or trainer.max_filter_rounds is reached."""
    kept_total, metrics = 0, dict[str, float]()
    rounds = cfg.trainer.max_filter_rounds if cfg.trainer.filter_zero_advantage else 1
    for round_ in range(rounds):
        if first is not None and round_ == 0:
            trajs, metrics = ctl.complete(first)
        else:
            trajs, metrics = ctl.rollout(step, round_)
        ctl.stats.generated += len(trajs)
        watch.observe(step, trajs)
        keep, drop = ctl.filter_groups(trajs)
        if drop and round_ == rounds - 1 and kept_total + len(keep) + surplus < n:
            keep, drop = trajs, []  # out of rounds: train on the zero-advantage groups too
        if drop:
            ray.get(buffer.count_filtered.remote([t.traj_id for t in drop]), timeout=30)
        ray.get(buffer.put.remote(keep), timeout=60)
        kept_total += len(keep)
        if kept_total + surplus >= n:
            break
    logger.log(step, {**metrics, **_counter_metrics(ctl, buffer), "filter/rounds": float(round_ + 1)})
    return max(kept_total + surplus - n, 0)


class _Watch:
    """What the driver keeps an eye on per step: samples.jsonl and the no-answer warning."""

    def __init__(self, cfg: RlvrConfig, run_dir: Path) -> None:
        tc = cfg.trainer
        self.samples = SampleLog(run_dir, tc.samples_per_step, tc.samples_max_mb)
        self.no_answer = NoAnswerMonitor(tc.no_answer_warn, tc.fail_on_no_answer)

    def observe(self, step: int, trajs: list[Any]) -> None:
        self.samples.write(step, trajs)
        warning = self.no_answer.observe(trajs)
        if warning:
            _say(f"warning: {warning}")


def _check_learners_finished(buffer: Any, cfg: RlvrConfig) -> None:
    """A learner that stopped before trainer.max_steps without a Ctrl-C is a failed run, not a success."""
    stops = ray.get(buffer.counters.remote(), timeout=30).get("stops", {})
    early = {r: s for r, s in stops.items() if s["step"] < cfg.trainer.max_steps}
    if early:
        rank, stop = sorted(early.items())[0]
        raise RlvrRunError(
            f"learners stopped at step {stop['step']} of trainer.max_steps={cfg.trainer.max_steps}: "
            f"{stop['reason']} (rank {rank}; the last checkpoint is kept)"
        )


def _counter_metrics(ctl: Controller, buffer: Any) -> dict[str, float]:
    c = ray.get(buffer.counters.remote(), timeout=30)
    return {
        "traj/generated": ctl.stats.generated,
        "traj/trained": c["trained"],
        "traj/dropped_stale": c["dropped_stale"],
        "traj/filtered": c["filtered"],
    }


def _flush_metrics(buffer: Any, logger: MetricsLogger) -> int:
    """Log the learners' queued metrics; returns the newest learner step seen (-1 if none)."""
    try:
        rows = ray.get(buffer.pop_metrics.remote(), timeout=30)
    except Exception as e:  # buffer gone: nothing more to log
        log.debug("metrics: %s", e)
        return -1
    newest = -1
    for row in rows:
        step = int(row.pop("step"))
        newest = max(newest, step)
        logger.log(step, row, progress=False)
    return newest


def _placement(rollout: Any, run_dir: Path) -> dict[str, list[str]]:
    """Which Ray node each component ran on, for multi-node runs (best effort: a dead replica has none)."""
    try:
        out = rollout.placement()
    except Exception as e:  # a component already gone must not hide the run's result
        log.warning("placement: %s", e)
        out = {}
    out["learner"] = sorted({p.read_text() for p in (run_dir / "learner" / "pids").glob("rank*.node")})
    return out


def _cpu_threads(rollout: Any, run_dir: Path) -> dict[str, Any]:
    """torch threads of the generator replica and of each learner rank (best effort, as `_placement`)."""
    try:
        gen: int | None = rollout.cpu_threads()
    except Exception as e:  # a component already gone must not hide the run's result
        log.warning("cpu_threads: %s", e)
        gen = None
    ranks = sorted((run_dir / "learner" / "pids").glob("rank*.threads"))
    return {"generator": gen, "learner": [int(p.read_text()) for p in ranks]}


def _accounting(controller: Controller | None, counters: dict[str, Any]) -> dict[str, Any]:
    generated = controller.stats.generated if controller is not None else 0
    acc = {
        "generated": generated,
        "trained": counters["trained"],
        "dropped_stale": counters["dropped_stale"],
        "filtered": counters["filtered"],
        "queued_at_stop": counters["queued"],
        "double_trained": counters["double_trained"],
    }
    acc["balanced"] = (
        generated == acc["trained"] + acc["dropped_stale"] + acc["filtered"] + acc["queued_at_stop"]
    )
    return {"accounting": acc}
