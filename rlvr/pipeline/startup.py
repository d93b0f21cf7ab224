"""Where a run's start-up goes: wall-clock seconds since the process began, at each milestone.

In: `mark(name)` from the driver as phases end; the learners' first `take` (any rank, from the buffer's
counters) as epoch seconds. Out: `as_dict()` for summary.json and one `line()` for the user. The clock
starts at the process's creation (/proc), so interpreter start-up and imports count too: that is what a
user waits for. Only the driver's view: phases that overlap (learners start beside Serve and vLLM) show
as overlapping milestones, not as a sum.
"""

from __future__ import annotations

import os
import time

LABELS = {  # milestone -> what the user sees, in the order a user waits for them
    "config": "imports+config",
    "prepared": "pipeline imports+model+prompts",  # `rlvr run` imports the pipeline while Ray starts
    "ray": "Ray",
    "rollout_ready": "Serve+generator+verifiers",
    "learners_ready": "Ray Train+DeepSpeed",
    "first_generation": "first generation",
    "first_step": "first learner step",
}
ORDER = tuple(LABELS)


def process_start() -> float:
    """This process's creation, epoch seconds. From /proc: the start tick and the uptime clock (10 ms), not
    psutil's `create_time`, whose boot time is whole seconds (measured 0.72 s late on one machine)."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime, after the comm field
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):  # not Linux
        try:
            import psutil

            return float(psutil.Process().create_time())
        except Exception:  # noqa: BLE001 - no psutil either: count from the first mark instead
            return time.time()


class Startup:
    def __init__(self, t0: float | None = None) -> None:
        self.t0 = process_start() if t0 is None else t0
        self.marks: dict[str, float] = {}

    def mark(self, name: str, at: float | None = None) -> None:
        """Record `name` once (the first time wins), at epoch seconds `at` or now."""
        if name not in self.marks:
            self.marks[name] = round((time.time() if at is None else at) - self.t0, 2)

    def as_dict(self) -> dict[str, float]:
        return {k: self.marks[k] for k in ORDER if k in self.marks}

    def line(self) -> str:
        parts = [f"{LABELS[k]} {v:.1f}s" for k, v in self.as_dict().items()]
        return "start-up, seconds since the process began: " + ", ".join(parts)
