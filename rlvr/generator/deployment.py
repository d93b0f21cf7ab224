"""The generator as a Ray Serve application, and the client that calls it.

In: `GeneratorConfig` (replicas, CPUs/GPUs per replica, engine args), a model path and the name of a
`WeightStore`. Out: `GeneratorClient.generate(prompts, sampling) -> list[list[Sample]]`, each sample
tagged with the weight (epoch, version) that produced it. The client splits a request's prompts into
one slice per replica; each replica batches the slices it gets (`engine_loop`). Replicas *pull*:
before admitting new requests they compare their (epoch, version) with the store's and load other
weights, so new, restarted or autoscaled replicas catch up on their own. Start-up checks resources
first, a replica that fails in `__init__` fails the start at once with its own exception, and every
wait is bounded; nothing here hangs silently.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import ray
from ray import serve

from rlvr.config.schema import GeneratorConfig, RlvrConfig
from rlvr.errors import RlvrUserError
from rlvr.generator.base import SamplingConfig
from rlvr.heap import release_free_heap
from rlvr.types import Sample

log = logging.getLogger(__name__)
APP_NAME = "rlvr-generator"


@serve.deployment(max_ongoing_requests=16)
class GeneratorDeployment:
    def __init__(
        self, model_path: str, cfg: dict[str, Any], store_name: str, store_namespace: str | None
    ) -> None:
        from rlvr.generator.base import make_backend
        from rlvr.generator.engine_loop import EngineLoop

        gen = GeneratorConfig(**cfg)
        if gen.num_gpus == 0:  # this replica's process is its own: use only the CPUs it reserved
            from rlvr.cpu_threads import limit_cpu_threads

            # vLLM's CPU backend would bind one OpenMP thread to every core; unbound, it uses torch's count.
            os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
            limit_cpu_threads(gen.num_cpus, gen.num_threads)
        from rlvr.models.shipping import local_path

        # A folder only the driver has is fetched into this node's cache first (multi-node, no shared disk).
        self.backend = make_backend(local_path(model_path), gen)
        self.store = ray.get_actor(store_name, namespace=store_namespace)
        self._latest: tuple[int, int, list[Any]] | None = None
        self._lost: tuple[int, int] | None = None  # a version whose objects died with their publisher
        if self._needs_sync():
            self._sync()
        release_free_heap()  # loading's temporaries (an fp32 checkpoint cast to bf16, say)
        self.loop = EngineLoop(self.backend, self._needs_sync, self._sync)
        self.replica_id = serve.get_replica_context().replica_id.unique_id

    def _needs_sync(self) -> bool:
        latest: Any = ray.get(self.store.latest_tagged.remote(), timeout=60)
        tag = (self.backend.weight_epoch, self.backend.weight_version)
        # Hold the refs only until they are loaded: a held ref pins that version's copy in the object
        # store after the store itself has moved on (one extra full copy of the weights).
        new = latest is not None and (latest[0], latest[1]) not in (tag, self._lost)
        self._latest = latest if new else None
        return self._latest is not None

    def _sync(self) -> None:
        """Load the weights `_needs_sync` saw. Every chunk is fetched before the engine is touched: they are
        zero-copy views of the object store, and a version lost half-way must not leave half-loaded weights."""
        from rlvr.generator.weight_chunks import chunk_nbytes, decode_chunk

        assert self._latest is not None
        epoch, version, refs = self._latest
        self._latest = None  # once loaded the engine has its own copy: release this version's chunks
        try:
            chunks = [ray.get(ref, timeout=300) for ref in refs]
        except ray.exceptions.ObjectLostError as e:  # its publisher died before the store adopted it
            self._lost = (epoch, version)
            log.warning(
                "weights (epoch %d, version %d) are gone (%s); keeping (epoch %d, version %d) until a newer one",
                epoch, version, type(e).__name__, self.backend.weight_epoch, self.backend.weight_version,
            )  # fmt: skip
            return

        def items() -> Iterator[tuple[str, Any]]:
            for chunk in chunks:
                yield from decode_chunk(chunk)

        self.backend.load_weights(items(), version, epoch)
        release_free_heap(sum(chunk_nbytes(c) for c in chunks))

    async def generate_timed(
        self, prompts: list[str], sampling: SamplingConfig
    ) -> tuple[list[list[Sample]], float, str]:
        """The groups, the seconds this request spent in the engine (a weight load it waited for
        included, so callers that overlap requests with other work still measure the generator), and
        this replica's id."""
        groups, secs = await asyncio.wrap_future(self.loop.submit(prompts, sampling))
        return groups, secs, self.replica_id

    async def generate(self, prompts: list[str], sampling: SamplingConfig) -> list[list[Sample]]:
        return (await self.generate_timed(prompts, sampling))[0]

    def check_health(self) -> None:
        """Serve replaces a replica whose engine failed (its requests already got the error)."""
        if self.loop.error is not None:
            raise RuntimeError(f"generator engine failed: {self.loop.error!r}")

    def weight_version(self) -> int:
        return self.backend.weight_version

    def weight_epoch(self) -> int:
        return self.backend.weight_epoch

    def node_id(self) -> str:
        """The Ray node this replica runs on (placement checks)."""
        return ray.get_runtime_context().get_node_id()

    def pid(self) -> int:
        """The replica's process id (operators and fault tests)."""
        return os.getpid()

    def cpu_threads(self) -> int:
        """torch's thread count in this replica (the run's summary records it)."""
        import torch

        return int(torch.get_num_threads())


@dataclass
class GeneratorClient:
    """Calls the deployment with a time-out that grows with the work. A step's prompts are split into
    one slice per replica, sent concurrently. A replica that died is retried once; an error raised by
    the engine reaches the caller at once (retrying into a broken engine would only hang)."""

    handle: Any
    request_timeout_s: float = 120.0
    app_name: str = APP_NAME
    num_replicas: int = 1
    request_timeout_per_token_s: float = 0.0

    def submit(self, prompts: list[str], sampling: SamplingConfig) -> PendingGeneration:
        """Start the request(s) and return at once; `result()` on the answer waits for them."""
        sampling = sampling.with_sample_seeds(len(prompts))  # seeds fixed before the split
        k = max(1, min(self.num_replicas, len(prompts)))
        bounds = [(len(prompts) * j // k, len(prompts) * (j + 1) // k) for j in range(k)]
        parts = [_Part(lo, hi, prompts[lo:hi], sampling.slice(lo, hi)) for lo, hi in bounds]
        for p in parts:
            p.response = self.handle.generate_timed.remote(p.prompts, p.sampling)
        return PendingGeneration(self, prompts, sampling, parts)

    def generate(self, prompts: list[str], sampling: SamplingConfig) -> list[list[Sample]]:
        return self.submit(prompts, sampling).result()

    def timeout_for(self, n_prompts: int, sampling: SamplingConfig) -> float:
        tokens = n_prompts * sampling.n * sampling.max_tokens
        return self.request_timeout_s + self.request_timeout_per_token_s * tokens

    def weight_version(self) -> int:
        return int(self.handle.weight_version.remote().result(timeout_s=self.request_timeout_s))


@dataclass
class _Part:
    lo: int
    hi: int
    prompts: list[str]
    sampling: SamplingConfig
    response: Any = None


@dataclass
class PendingGeneration:
    """A generate request in flight (one part per replica slice). `seconds` is the slowest part's
    replica time, set by `result()`."""

    client: GeneratorClient
    prompts: list[str]
    sampling: SamplingConfig
    parts: list[_Part]
    seconds: float = 0.0
    replicas: list[str] = field(default_factory=list)  # the replica that answered each part
    _groups: list[list[Sample]] | None = None

    def result(self) -> list[list[Sample]]:
        """Wait for the answer (once; later calls return the same groups)."""
        if self._groups is not None:
            return self._groups
        groups: list[list[Sample]] = []
        for part in self.parts:
            part_groups, secs, replica = self._wait(part)
            groups.extend(part_groups)
            self.seconds = max(self.seconds, secs)
            self.replicas.append(replica)
        self._groups = groups
        return groups

    def _wait(self, part: _Part) -> tuple[list[list[Sample]], float, str]:
        c = self.client
        timeout = c.timeout_for(len(part.prompts), part.sampling)
        for attempt in (1, 2):
            try:
                out = part.response.result(timeout_s=timeout)
                return out[0], float(out[1]), str(out[2]) if len(out) > 2 else ""
            except TimeoutError as e:
                raise TimeoutError(
                    f"generator '{c.app_name}' did not answer within {timeout:g}s (generator.request_timeout_s="
                    f"{c.request_timeout_s:g}s + generator.request_timeout_per_token_s="
                    f"{c.request_timeout_per_token_s:g}s x {len(part.prompts)} prompts x n={part.sampling.n} "
                    f"x max_tokens={part.sampling.max_tokens})"
                ) from e
            except ray.exceptions.RayTaskError as e:  # the replica answered with an error: no retry
                cause = e.cause if getattr(e, "cause", None) is not None else e
                raise RuntimeError(f"generator '{c.app_name}' failed: {type(cause).__name__}: {cause}") from e
            except Exception as e:  # replica died / unavailable: one retry, then a clear error
                if attempt == 2:
                    raise RuntimeError(
                        f"generator '{c.app_name}' failed twice: {type(e).__name__}: {e}"
                    ) from e
                log.warning("generator request failed (%s); retrying once", type(e).__name__)
                part.response = c.handle.generate_timed.remote(part.prompts, part.sampling)
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


def startup_error(app: Any) -> str | None:
    """The replica's own exception from Serve's status, or None while no replica has failed.

    Serve records a failed constructor in the deployment's message ("A replica failed to start with
    exception ... Error:\n<traceback>"); the last 'SomethingError: ...' line of it is the cause."""
    texts = [app.message or ""] + [d.message or "" for d in app.deployments.values()]
    for text in texts:
        if "failed to start" not in text:
            continue
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        causes = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception)\b.*:", ln)]
        return (causes[-1] if causes else lines[-1])[:2000]
    return None


def _wait_running(name: str, cfg: GeneratorConfig, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    status = "NOT_STARTED"
    while time.monotonic() < deadline:
        app = serve.status().applications.get(name)
        status = str(app.status.value if app else "NOT_STARTED")
        if status == "RUNNING":
            return
        cause = startup_error(app) if app else None
        if cause is not None or status == "DEPLOY_FAILED":
            serve.delete(name)
            raise RuntimeError(
                f"generator '{name}' replica failed to start: {cause or (app and app.message)}"
            )
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
    if gen.http:  # bound to cluster.host (loopback unless the user widens it)
        host = cfg.cluster.host if isinstance(cfg, RlvrConfig) else "127.0.0.1"
        serve.start(http_options={"host": host})
    else:
        serve.start(proxy_location="Disabled")
    actor_opts: dict[str, Any] = {"num_cpus": gen.num_cpus, "num_gpus": gen.num_gpus}
    if extra:
        actor_opts["resources"] = dict(extra)
    app = GeneratorDeployment.options(  # type: ignore[attr-defined]
        num_replicas=gen.num_replicas,
        ray_actor_options=actor_opts,
        max_constructor_retry_count=1,  # a replica that cannot start says why at once, not after 3 tries
    ).bind(model_path, gen.model_dump(), weight_store_name, store_namespace)
    handle = serve._run(app, _blocking=False, name=app_name, route_prefix="/generate" if gen.http else None)
    _wait_running(app_name, gen, gen.startup_timeout_s)
    return GeneratorClient(
        handle, gen.request_timeout_s, app_name, gen.num_replicas, gen.request_timeout_per_token_s
    )


def stop_generator(app_name: str = APP_NAME) -> None:
    """Delete the application (its replicas and engines); Serve itself keeps running."""
    try:
        serve.delete(app_name)
    except Exception as e:  # already gone or Serve not started
        log.debug("stop_generator(%s): %s", app_name, e)
