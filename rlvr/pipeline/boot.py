"""The first seconds of `rlvr run`: the Ray cluster starts while this process imports and prepares.

In: a config whose schema is valid. Out: what `run_training` needs to start the components (`Early`: the
start-up clock, the prepared model and prompts, the cluster `connect` joined or started), then the run.
Why: importing the pipeline (torch, Serve: ~3 s) and reading the model and prompts (~2 s) keep one core
busy while the other waits; Ray's own processes (GCS, raylet, agents: ~4 s of a core) can start meanwhile.
This module imports neither, so the cluster starts a few seconds sooner. Every problem in the config still
fails the run before a run directory or any component exists, and a cluster started here is shut down;
the cost: a problem only the registries see (an algorithm's params, a verifier's options) is reported once
the cluster is up, a few seconds later than a schema error.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import ray

from rlvr.cluster import connect
from rlvr.config import RlvrConfig
from rlvr.heap import release_free_heap
from rlvr.pipeline.prepare import Prepared, prepare  # light: it imports transformers when called
from rlvr.pipeline.startup import Startup


@dataclass
class Early:
    startup: Startup
    prepared: Prepared
    cluster: dict[str, Any]
    algo: Any  # check_config's results: resolving a remote resume path downloads it, so only once
    resume: str | None


def prepare_while_connecting(
    cfg: RlvrConfig, startup: Startup, before: Callable[[], None] | None = None
) -> tuple[Prepared, dict[str, Any]]:
    """`before()` (imports, checks) then `prepare` in a thread while this one connects to (or starts) Ray.
    `derive` fills in only generator and learner values, which `connect` does not read. If either fails,
    a cluster started here is shut down again and the config's error is raised."""
    done_at: list[float] = []

    def _prepare() -> Prepared:
        if before is not None:
            before()
        out = prepare(cfg)
        release_free_heap()  # what reading and tokenizing the dataset freed
        done_at.append(time.time())
        return out

    with ThreadPoolExecutor(1, thread_name_prefix="rlvr-prepare") as pool:
        preparing = pool.submit(_prepare)
        try:
            info = connect(cfg.cluster)
        except BaseException:
            err = preparing.exception()  # waits: as before, a problem in the config is the one reported
            if err is not None:
                raise err from None
            raise
        startup.mark("ray")
        try:
            prepared = preparing.result()
        except BaseException:
            if info.get("started"):
                ray.shutdown()
            raise
    startup.mark("prepared", done_at[0])
    return prepared, info


def run(cfg: RlvrConfig, plugins_checked: bool = True) -> dict[str, Any]:
    """`run_training(cfg)`, with the pipeline's imports and the model and prompts overlapping Ray's start.
    `plugins_checked=False` (a config from `load_config(..., plugins=False)`): the registry checks, which
    import torch and the verifiers, run beside Ray's start too."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # before anything imports vLLM
    startup = Startup()
    startup.mark("config")

    checked: list[tuple[Any, str | None]] = []

    def imports_and_checks() -> None:
        if not plugins_checked:
            from rlvr.config.loader import validate_plugins

            validate_plugins(cfg)
        from rlvr.pipeline.run import check_config

        checked.append(check_config(cfg))

    prepared, info = prepare_while_connecting(cfg, startup, before=imports_and_checks)
    from rlvr.pipeline.run import run_training

    return run_training(cfg, early=Early(startup, prepared, info, *checked[0]))
