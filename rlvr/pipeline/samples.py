"""`samples.jsonl`: a few (prompt, response, gold, reward, status) rows per step, so a user can read what the
model wrote. In: a step's trajectories. Out: appended JSON lines in the run directory, capped in size.
"""

from __future__ import annotations

import json
from pathlib import Path

from rlvr.types import Trajectory


class SampleLog:
    def __init__(self, run_dir: Path, per_step: int, max_mb: float) -> None:
        self.path = run_dir / "samples.jsonl"
        self.per_step = per_step
        self.max_bytes = int(max_mb * 2**20)
        self.full = False

    def write(self, step: int, trajs: list[Trajectory]) -> None:
        if self.full or self.per_step == 0 or not trajs:
            return
        # One row from each of the first groups, so different prompts show up.
        seen: dict[str, Trajectory] = {}
        for t in trajs:
            seen.setdefault(t.group_id, t)
        picked = list(seen.values())[: self.per_step]
        picked += [t for t in trajs if t not in picked][: self.per_step - len(picked)]
        lines = [
            json.dumps(
                {
                    "step": step,
                    "prompt": t.prompt.text,
                    "response": t.sample.response_text,
                    "gold": t.prompt.ground_truth,
                    "reward": t.reward,
                    "correct": t.result.correct,
                    "status": t.result.status.value,
                    "extracted": t.result.extracted,
                    "truncated": t.sample.truncated,
                    "weight_version": t.weight_version,
                }
            )
            for t in picked
        ]
        size = self.path.stat().st_size if self.path.exists() else 0
        text = "\n".join(lines) + "\n"
        if size + len(text) > self.max_bytes:
            self.full = True  # stop rather than rotate: the first steps are the ones users read
            return
        with self.path.open("a") as f:
            f.write(text)
