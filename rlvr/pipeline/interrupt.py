"""After Ctrl-C: wait for the learners' final checkpoint, bounded, saying what is still outstanding.

The buffer is already closed, so every rank's next `take` returns None, it reports a stop, saves and exits.
A silent unbounded wait here looked like a hung run; this one prints a line every `every_s` (which ranks
have stopped, what the wait is on) and gives up after `limit_s` without a final checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def outstanding(counters: dict[str, Any], world: int) -> str:
    """What the learners are still doing, from the buffer's counters."""
    stopped = sorted(int(r) for r in counters.get("stops", {}))
    if len(stopped) < world:
        busy = [r for r in range(world) if r not in stopped]
        return f"{len(stopped)} of {world} learner ranks stopped; ranks {busy} are still in a step"
    return f"all {world} learner ranks stopped; waiting for the final checkpoint and Ray Train's shutdown"


def wait_after_interrupt(
    learners: Any,
    counters: Callable[[], dict[str, Any]],
    world: int,
    limit_s: float,
    say: Callable[[str], None],
    every_s: float = 30.0,
) -> bool:
    """True when the learners finished within `limit_s` (trainer.step_timeout_s). `counters` reads the
    buffer's counters (`ray.get(buffer.counters.remote())`)."""
    t0 = time.monotonic()
    while True:
        waited = time.monotonic() - t0
        if learners.wait(max(0.0, min(every_s, limit_s - waited))):
            return True
        waited = time.monotonic() - t0
        try:
            state = outstanding(counters(), world)
        except Exception as e:  # noqa: BLE001 - the buffer is only asked for a progress line
            state = f"the buffer did not answer ({type(e).__name__})"
        if waited >= limit_s:
            say(
                f"learners did not stop within trainer.step_timeout_s={limit_s:g}s after Ctrl-C ({state}); "
                "quitting without a final checkpoint"
            )
            return False
        say(f"still waiting for the learners after {waited:.0f}s: {state} (Ctrl-C again to quit without one)")
