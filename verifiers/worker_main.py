"""Child-process entry point for `GuardedWorker` (run as `python -m rlvr.verifiers.worker_main`).

In: length-prefixed pickled `(op, payload)` frames on stdin, from the parent only. Out: `("ok", value)` or
`("err", message)` frames on stdout. Ops: ping, math_warm, math_gold, math_check, set_verifiers, verify. It never
evaluates model output as code; custom verifiers arrive as cloudpickled objects from the trusted driver.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
from typing import Any

_HEADER = struct.Struct("!Q")
_VERIFIERS: dict[str, Any] = {}


def _read(stream: Any, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _handle(op: str, payload: Any) -> Any:
    if op == "ping":
        return os.getpid()
    if op == "math_warm":  # imports and first-parse costs belong to start-up, not to any check's clock
        from rlvr.verifiers.math_ops import MathOptions, check

        return check("\\boxed{1}", "1", MathOptions())
    if op == "math_gold":
        from rlvr.verifiers.math_ops import gold_signature

        return gold_signature(*payload)
    if op == "math_check":
        from rlvr.verifiers.math_ops import check

        return check(*payload)
    if op == "set_verifiers":
        import cloudpickle

        _VERIFIERS.update(cloudpickle.loads(payload))
        return sorted(_VERIFIERS)
    if op == "verify":
        name, response, gold, kwargs = payload
        return _VERIFIERS[name].verify(response, gold, **kwargs)
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # Anything a verifier prints must not corrupt the frame stream.
    sys.stdout = sys.stderr
    while True:
        head = _read(stdin, _HEADER.size)
        if head is None:
            return
        body = _read(stdin, _HEADER.unpack(head)[0])
        if body is None:
            return
        op, payload = pickle.loads(body)
        try:
            reply = ("ok", _handle(op, payload))
        except Exception as e:  # noqa: BLE001 - reported to the parent as a check error
            reply = ("err", f"{type(e).__name__}: {str(e)[:300]}")
        try:
            data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # noqa: BLE001 - unpicklable result
            data = pickle.dumps(("err", f"unpicklable result: {e}"))
        stdout.write(_HEADER.pack(len(data)) + data)
        stdout.flush()


if __name__ == "__main__":
    main()
