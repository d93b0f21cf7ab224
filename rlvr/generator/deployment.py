"""The generator as a Ray Serve application, and the client that calls it.

In: `GeneratorConfig` (replicas, CPUs/GPUs per replica, engine args), a model path and the name of a
`WeightStore`. Out: `GeneratorClient.generate(prompts, sampling) -> list[list[Sample]]`, each sample
tagged with the weight version that produced it. Replicas *pull*: before each batch they compare their
version with the store's and load newer weights, so new, restarted or autoscaled replicas catch up on
their own. Start-up checks resources first and every wait is bounded; nothing here hangs silently.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import ray
from ray import serve

from rlvr.config.schema import GeneratorConfig, RlvrConfig
from rlvr.errors import RlvrUserError
from rlvr.generator.base import SamplingConfig
from rlvr.types import Sample

log = logging.getLogger(__name__)
APP_NAME = "rlvr-generator"


@serve.deployment(max_ongoing_requests=8)
class GeneratorDeployment:
    def __init__(
        self, model_path: str, cfg: dict[str, Any], store_name: str, store_namespace: str | None
    ) -> None:
        from rlvr.generator.base import make_backend

        gen = GeneratorConfig(**cfg)
        if gen.num_gpus == 0:  # this replica's process is its own: use only the CPUs it reserved
            from rlvr.cpu_threads import limit_cpu_threads

            # vLLM's CPU backend would bind one OpenMP thread to every core; unbound, it uses torch's count.
            os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
            limit_cpu_threads(gen.num_cpus)
        self.backend = make_backend(model_path, gen)
        self.store = ray.get_actor(store_name, namespace=store_namespace)
        self.lock = threading.Lock()  # one engine: batches and weight loads take turns
        with self.lock:
            self._sync()

    def _sync(self) -> None:
        stored: Any = ray.get(self.store.version.remote(), timeout=60)
        if int(stored) <= self.backend.weight_version:
            return
        latest = ray.get(self.store.latest.remote(), timeout=60)
        if latest is not None and latest[0] > self.backend.weight_version:
            version, (ref,) = latest
            self.backend.load_weights(ray.get(ref, timeout=300), version)

    def generate(self, prompts: list[str], sampling: SamplingConfig) -> list[list[Sample]]:
        with self.lock:
            self._sync()
            return self.backend.generate(prompts, sampling)

    def generate_timed(
        self, prompts: list[str], sampling: SamplingConfig
    ) -> tuple[list[list[Sample]], float]:
        """`generate` plus the seconds this replica spent on it (weight load included), so callers that
        overlap requests with other work still measure the generator's own busy time."""
        t0 = time.perf_counter()
        groups = self.generate(prompts, sampling)
        return groups, time.perf_counter() - t0

    def weight_version(self) -> int:
        return self.backend.weight_version

    def node_id(self) -> str:
        """The Ray node this replica runs on (placement checks)."""
        return ray.get_runtime_context().get_node_id()

    def pid(self) -> int:
        """The replica's process id (operators and fault tests)."""
        import os

        return os.getpid()


@dataclass
class GeneratorClient:
    """Calls the deployment with a timeout; a failed call (e.g. replica died) is retried once."""

    handle: Any
    request_timeout_s: float = 120.0
    app_name: str = APP_NAME

    def submit(self, prompts: list[str], sampling: SamplingConfig) -> PendingGeneration:
        """Start a request and return at once; `result()` on the answer waits for it."""
        return PendingGeneration(
            self, prompts, sampling, self.handle.generate_timed.remote(prompts, sampling)
        )

    def generate(self, prompts: list[str], sampling: SamplingConfig) -> list[list[Sample]]:
        return self.submit(prompts, sampling).result()

    def weight_version(self) -> int:
        return int(self.handle.weight_version.remote().result(timeout_s=self.request_timeout_s))


@dataclass
class PendingGeneration:
    """A generate request in flight. `seconds` is the replica's own time, set by `result()`."""

    client: GeneratorClient
    prompts: list[str]
    sampling: SamplingConfig
    response: Any
    seconds: float = 0.0
    _groups: list[list[Sample]] | None = None

    def result(self) -> list[list[Sample]]:
        """Wait for the answer (once; later calls return the same groups)."""
        if self._groups is not None:
            return self._groups
        c = self.client
        for attempt in (1, 2):
            try:
                self._groups, self.seconds = self.response.result(timeout_s=c.request_timeout_s)
                return self._groups
            except TimeoutError as e:
                raise TimeoutError(
                    f"generator '{c.app_name}' did not answer within generator.request_timeout_s="
                    f"{c.request_timeout_s:g}s ({len(self.prompts)} prompts, n={self.sampling.n})"
                ) from e
            except Exception as e:  # replica died / unavailable: one retry, then a clear error
                if attempt == 2:
                    raise RuntimeError(
                        f"generator '{c.app_name}' failed twice: {type(e).__name__}: {e}"
                    ) from e
                log.warning("generator request failed (%s); retrying once", type(e).__name__)
                self.response = c.handle.generate_timed.remote(self.prompts, self.sampling)
        raise AssertionError("unreachable")


def check_resources(cfg: GeneratorConfig, extra: dict[str, float] | None = None) -> None:
    """Raise before deploying when the cluster cannot place every replica (Serve would wait forever)."""
    want = {"CPU": cfg.num_cpus * cfg.num_replicas, "GPU": cfg.num_gpus * cfg.num_replicas}
    for k, v in (extra or {}).items():
        want[k] = want.get(k, 0.0) + v * cfg.num_replicas
    have = ray.available_resources()
    short = {k: v for k, v in want.items() if v > 0 and have.get(k, 0.0) + 1e-9 < v}
    if short:
        asked = ", ".join(f"{k}={v:g}" for k, v in short.items())
        avail = ", ".join(f"{k}={have.get(k, 0.0):g}" for k in short)
        raise RlvrUserError(
            f"generator: {cfg.num_replicas} replica(s) need {asked} (generator.num_replicas x "
            f"generator.num_cpus/num_gpus) but the cluster has only {avail} available"
        )


def _wait_running(name: str, cfg: GeneratorConfig, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    status = "NOT_STARTED"
    while time.monotonic() < deadline:
        app = serve.status().applications.get(name)
        status = str(app.status.value if app else "NOT_STARTED")
        if status == "RUNNING":
            return
        if status == "DEPLOY_FAILED":
            msg = (app.message or "").strip().splitlines()[-1:] if app else []
            serve.delete(name)
            raise RuntimeError(f"generator '{name}' failed to deploy: {' '.join(msg)}")
        time.sleep(0.5)
    serve.delete(name)
    raise RlvrUserError(
        f"generator '{name}' not healthy after generator.startup_timeout_s={timeout_s:g}s (last status "
        f"{status}); requested {cfg.num_replicas} replica(s) x num_cpus={cfg.num_cpus:g} num_gpus="
        f"{cfg.num_gpus:g}, cluster has {ray.available_resources()} available"
    )


def start_generator(
    cfg: RlvrConfig | GeneratorConfig,
    model_path: str,
    weight_store_name: str,
    app_name: str = APP_NAME,
    store_namespace: str | None = None,
) -> GeneratorClient:
    """Deploy the generator application and return a client once every replica is healthy."""
    gen = cfg.generator if isinstance(cfg, RlvrConfig) else cfg
    extra = cfg.cluster.generator_resources if isinstance(cfg, RlvrConfig) else {}
    if store_namespace is None:
        store_namespace = ray.get_runtime_context().namespace
    ray.get_actor(weight_store_name, namespace=store_namespace)  # fails now, not inside a replica
    check_resources(gen, extra)
    if gen.http:
        serve.start(http_options={"host": "127.0.0.1"})
    else:
        serve.start(proxy_location="Disabled")
    actor_opts: dict[str, Any] = {"num_cpus": gen.num_cpus, "num_gpus": gen.num_gpus}
    if extra:
        actor_opts["resources"] = dict(extra)
    app = GeneratorDeployment.options(  # type: ignore[attr-defined]
        num_replicas=gen.num_replicas, ray_actor_options=actor_opts
    ).bind(model_path, gen.model_dump(), weight_store_name, store_namespace)
    handle = serve._run(app, _blocking=False, name=app_name, route_prefix="/generate" if gen.http else None)
    _wait_running(app_name, gen, gen.startup_timeout_s)
    return GeneratorClient(handle, gen.request_timeout_s, app_name)


def stop_generator(app_name: str = APP_NAME) -> None:
    """Delete the application (its replicas and engines); Serve itself keeps running."""
    try:
        serve.delete(app_name)
    except Exception as e:  # already gone or Serve not started
        log.debug("stop_generator(%s): %s", app_name, e)
