"""The `math` verifier: math_verify with configurable extraction, caching, a fast path and a hard timeout.

In: a model response, a gold answer (bare LaTeX or text), options (`extraction`, `match_types`, `precision`,
`strict`, `allow_set_relation_comp`, `require_evaluated`, `reject_hedged`, `timeout_s`) and any row metadata (ignored).
Out: a `VerifierResult`.
The slow path (math_verify parse + symbolic compare) runs in a persistent child process that is killed and
respawned when a check overruns `timeout_s`; the fast path (`math_fastpath`) decides common cases in-process
only where its label provably equals math_verify's. Model output is never eval'd, exec'd or sympified here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from rlvr.errors import RlvrUserError
from rlvr.types import VerifierResult, VerifyStatus
from rlvr.verifiers.base import register_verifier
from rlvr.verifiers.guard import CheckTimeout, GuardedWorker, WorkerCrashed
from rlvr.verifiers.math_fastpath import fast_label, forced_boxed
from rlvr.verifiers.math_ops import EXTRACTIONS, MATCH_TYPES, MathOptions

DEFAULT_TIMEOUT_S = 5.0


def make_options(
    extraction: str = "boxed_first",
    match_types: Any = ("latex", "expr"),
    precision: int = 6,
    strict: bool = True,
    allow_set_relation_comp: bool = False,
    require_evaluated: bool = True,
    reject_hedged: bool = True,
) -> MathOptions:
    if extraction not in EXTRACTIONS:
        raise RlvrUserError(
            f"verifiers.specs.math.extraction: '{extraction}' is not one of {', '.join(EXTRACTIONS)}"
        )
    kinds = (match_types,) if isinstance(match_types, str) else tuple(match_types)
    bad = [k for k in kinds if k not in MATCH_TYPES]
    if bad or not kinds:
        raise RlvrUserError(
            f"verifiers.specs.math.match_types: {kinds} must be a non-empty subset of {MATCH_TYPES}"
        )
    if not isinstance(precision, int) or precision < 0:
        raise RlvrUserError(f"verifiers.specs.math.precision: {precision!r} must be a non-negative integer")
    for key, flag in (("require_evaluated", require_evaluated), ("reject_hedged", reject_hedged)):
        if not isinstance(flag, bool):
            raise RlvrUserError(f"verifiers.specs.math.{key}: {flag!r} must be true or false")
    return MathOptions(
        extraction,
        kinds,
        precision,
        bool(strict),
        bool(allow_set_relation_comp),
        require_evaluated,
        reject_hedged,
    )


class _LRU:
    """A small thread-safe LRU map (verifier actors may call from several threads)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            if len(self._data) > self.size:
                self._data.popitem(last=False)


class MathVerifier:
    """Stateful (child process + caches) but cheap to copy: pickling drops the process and caches."""

    self_guarded = True  # enforces its own hard timeout; pool actors call it in-process

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S, gold_cache_size: int = 8192) -> None:
        self.timeout_s = timeout_s
        self.gold_cache_size = gold_cache_size
        self._init_state()

    def _init_state(self) -> None:
        self._worker = GuardedWorker(init_ops=[("math_warm", None)])
        self._gold = _LRU(self.gold_cache_size)
        # (forced boxed content, gold, options) -> (label, extracted): a GRPO group repeats final answers.
        self._answers = _LRU(4 * self.gold_cache_size)
        self.fast_hits = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"timeout_s": self.timeout_s, "gold_cache_size": self.gold_cache_size}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_state()

    def close(self) -> None:
        self._worker.close()

    def _gold_signature(self, gold: str, opts: MathOptions, timeout_s: float) -> tuple[int | None, bool]:
        key = (gold, opts)
        sig = self._gold.get(key)
        if sig is None:
            sig = self._worker.call("math_gold", (gold, opts), timeout_s)
            self._gold.put(key, sig)
        return sig

    def verify(
        self,
        response: str,
        ground_truth: str,
        *,
        extraction: str = "boxed_first",
        match_types: Any = ("latex", "expr"),
        precision: int = 6,
        strict: bool = True,
        allow_set_relation_comp: bool = False,
        require_evaluated: bool = True,
        reject_hedged: bool = True,
        timeout_s: float | None = None,
        fast_path: bool = True,
        **_metadata: Any,
    ) -> VerifierResult:
        opts = make_options(
            extraction,
            match_types,
            precision,
            strict,
            allow_set_relation_comp,
            require_evaluated,
            reject_hedged,
        )
        limit = self.timeout_s if timeout_s is None else float(timeout_s)
        if not isinstance(response, str) or not isinstance(ground_truth, str):
            return VerifierResult(
                0.0, False, status=VerifyStatus.ERROR, reason="response and gold must be strings"
            )
        try:
            boxed = forced_boxed(response, opts) if fast_path else None  # scanned once per response
            if boxed is not None:
                fast = fast_label(boxed, ground_truth, *self._gold_signature(ground_truth, opts, limit))
                if fast is not None:
                    self.fast_hits += 1
                    label, extracted = fast
                    return VerifierResult(float(label), label, extracted=extracted, reason="fast path")
            answer_key = (boxed, ground_truth, opts)
            cached = self._answers.get(answer_key) if boxed is not None else None
            if cached is not None:
                self.fast_hits += 1
                label, extracted, why = cached
                return VerifierResult(float(label), label, extracted=extracted, reason=why or "fast path")
            label_or_none, extracted, gold_ok, why = self._worker.call(
                "math_check", (response, ground_truth, opts), limit
            )
            if boxed is not None and label_or_none is not None and gold_ok:
                self._answers.put(answer_key, (bool(label_or_none), extracted, why))
        except CheckTimeout:
            return VerifierResult(
                0.0, False, status=VerifyStatus.TIMEOUT, reason=f"check exceeded {limit:g} s"
            )
        except WorkerCrashed as e:
            return VerifierResult(0.0, False, status=VerifyStatus.ERROR, reason=str(e)[:300])
        if label_or_none is None:
            reason = "no answer extracted" if gold_ok else "no answer extracted; gold did not parse either"
            return VerifierResult(0.0, False, status=VerifyStatus.NO_ANSWER, reason=reason)
        if not gold_ok:
            return VerifierResult(0.0, False, extracted, VerifyStatus.ERROR, "gold answer did not parse")
        return VerifierResult(
            float(label_or_none), bool(label_or_none), extracted=extracted, reason=why or ""
        )


register_verifier("math")(MathVerifier())
