"""A pool of Ray actors that score responses.

In: `specs` {verifier name: options incl. timeout_s}, batches of (verifier, response, ground_truth, metadata).
Out: one `VerifierResult` per item, in order, always: a check that overruns or crashes becomes status
timeout/error with reward 0. Each actor enforces the per-check hard timeout by killing a worker process
(math runs in its own child; custom verifiers run in a generic guarded child). A dead actor is replaced and
its requests retried once; every ray.get is bounded. Verifier objects travel to the actors cloudpickled by
value, so verifiers registered in the driver (scripts, notebooks) work without being importable there.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from typing import Any

import cloudpickle
import ray

from rlvr.rewards import verifier_options
from rlvr.types import VerifierResult, VerifyStatus
from rlvr.verifier_kwargs import option_names, verify_kwargs

Item = tuple[str, str, str, dict[str, Any]]


def _pickle_verifiers(names: list[str]) -> bytes:
    from rlvr.verifiers import get

    objs = {name: get(name) for name in names}
    modules = set()
    for obj in objs.values():
        for part in (obj, getattr(obj, "fn", None)):
            mod = getattr(part, "__module__", None) or getattr(type(part), "__module__", "")
            if part is not None and mod and not mod.startswith("rlvr.") and mod != "__main__":
                modules.add(mod)
    registered = []
    for mod in modules:
        if mod in sys.modules:
            cloudpickle.register_pickle_by_value(sys.modules[mod])
            registered.append(sys.modules[mod])
    try:
        return cloudpickle.dumps(objs)
    finally:
        for module in registered:
            cloudpickle.unregister_pickle_by_value(module)


@ray.remote
class VerifierActor:
    def __init__(self, pickled: bytes, specs: dict[str, dict[str, Any]]) -> None:
        from rlvr.verifiers.guard import GuardedWorker

        self.verifiers = cloudpickle.loads(pickled)
        self.specs = specs
        self._options: dict[str, frozenset[str]] = {}
        custom = {n: v for n, v in self.verifiers.items() if not getattr(v, "self_guarded", False)}
        self.generic = (
            GuardedWorker(init_ops=[("set_verifiers", cloudpickle.dumps(custom))]) if custom else None
        )

    def _one(self, name: str, response: str, gold: str, metadata: dict[str, Any]) -> VerifierResult:
        from rlvr.verifiers.guard import CheckTimeout, WorkerCrashed

        if name not in self.verifiers:
            return VerifierResult(
                0.0, False, status=VerifyStatus.ERROR, reason=f"verifier '{name}' is not in this pool"
            )
        spec = dict(self.specs.get(name, {}))
        timeout_s = float(spec.pop("timeout_s", 5.0))
        verifier = self.verifiers[name]
        if name not in self._options:
            self._options[name] = option_names(verifier)
        kwargs = verify_kwargs(spec, metadata, self._options[name])  # row columns never set options
        try:
            if getattr(verifier, "self_guarded", False):
                if hasattr(verifier, "timeout_s"):
                    kwargs["timeout_s"] = timeout_s
                return verifier.verify(response, gold, **kwargs)
            assert self.generic is not None
            return self.generic.call("verify", (name, response, gold, kwargs), timeout_s)
        except CheckTimeout:
            return VerifierResult(
                0.0, False, status=VerifyStatus.TIMEOUT, reason=f"check exceeded {timeout_s:g} s"
            )
        except (WorkerCrashed, Exception) as e:  # noqa: BLE001 - a verifier bug is a per-item error
            return VerifierResult(
                0.0, False, status=VerifyStatus.ERROR, reason=f"{type(e).__name__}: {e}"[:300]
            )

    def verify_many(self, items: list[Item]) -> list[tuple[VerifierResult, float]]:
        out = []
        for name, response, gold, metadata in items:
            start = time.perf_counter()
            result = self._one(name, response, gold, metadata)
            out.append((result, time.perf_counter() - start))
        return out

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def pid(self) -> int:
        import os

        return os.getpid()


class VerifierPool:
    def __init__(
        self,
        specs: dict[str, dict[str, Any]],
        pool_size: int = 2,
        num_cpus: float = 0.25,
        request_timeout_s: float = 60.0,
        resources: dict[str, float] | None = None,
    ) -> None:
        # weight/applies_to are the reward planner's (rlvr.rewards), not options of the verifier.
        self.specs = {name: verifier_options(spec or {}) for name, spec in specs.items()}
        self.request_timeout_s = request_timeout_s
        self._options: dict[str, Any] = {"num_cpus": num_cpus, "max_concurrency": 1}
        if resources:
            self._options["resources"] = dict(resources)
        self._pickled = _pickle_verifiers(list(self.specs))
        self.actors = [self._new_actor() for _ in range(pool_size)]
        self.replaced = 0
        self._counts: dict[str, dict[str, float]] = defaultdict(
            lambda: {"ok": 0, "no_answer": 0, "timeouts": 0, "errors": 0, "count": 0, "latency_s": 0.0}
        )

    def _new_actor(self) -> Any:
        return VerifierActor.options(**self._options).remote(self._pickled, self.specs)  # type: ignore[attr-defined]

    def _replace(self, idx: int) -> None:
        try:
            ray.kill(self.actors[idx], no_restart=True)
        except Exception:  # noqa: BLE001 - it may already be dead
            pass
        self.actors[idx] = self._new_actor()
        self.replaced += 1

    def verify_batch(self, items: list[Item]) -> list[VerifierResult]:
        if not items:
            return []
        n = len(self.actors)
        chunks = [list(range(i, len(items), n)) for i in range(n)]
        results: list[VerifierResult | None] = [None] * len(items)
        pending = {i: chunk for i, chunk in enumerate(chunks) if chunk}
        for attempt in range(2):
            refs = {
                i: self.actors[i].verify_many.remote([items[j] for j in chunk])
                for i, chunk in pending.items()
            }
            failed: dict[int, list[int]] = {}
            deadline = time.monotonic() + self.request_timeout_s
            for i, ref in refs.items():
                try:
                    answers = ray.get(ref, timeout=max(0.1, deadline - time.monotonic()))
                except (
                    ray.exceptions.RayActorError,
                    ray.exceptions.GetTimeoutError,
                    ray.exceptions.RayTaskError,
                ) as e:
                    self._replace(i)
                    if attempt == 0 and not isinstance(e, ray.exceptions.GetTimeoutError):
                        failed[i] = pending[i]  # actor died: retry once on its replacement
                    else:
                        status = (
                            VerifyStatus.TIMEOUT
                            if isinstance(e, ray.exceptions.GetTimeoutError)
                            else VerifyStatus.ERROR
                        )
                        for j in pending[i]:
                            failed_result = VerifierResult(
                                0.0, False, status=status, reason=f"request failed: {type(e).__name__}"
                            )
                            results[j] = failed_result
                            self._count(items[j][0], failed_result, 0.0)
                    continue
                for j, (result, latency) in zip(pending[i], answers, strict=False):
                    results[j] = result
                    self._count(items[j][0], result, latency)
            if not failed:
                break
            pending = failed
        final = [
            r or VerifierResult(0.0, False, status=VerifyStatus.ERROR, reason="unanswered") for r in results
        ]
        return final

    def _count(self, name: str, result: VerifierResult, latency: float) -> None:
        c = self._counts[name]
        key = {"ok": "ok", "no_answer": "no_answer", "timeout": "timeouts", "error": "errors"}[
            result.status.value
        ]
        c[key] += 1
        c["count"] += 1
        c["latency_s"] += latency

    def stats(self) -> dict[str, dict[str, float]]:
        out = {}
        for name, c in self._counts.items():
            row = {k: v for k, v in c.items() if k != "latency_s"}
            row["mean_latency_s"] = c["latency_s"] / c["count"] if c["count"] else 0.0
            out[name] = row
        return out

    def shutdown(self) -> None:
        for actor in self.actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
        self.actors = []
