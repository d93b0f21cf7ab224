"""Helpers shared by the pipeline e2e tests."""

from __future__ import annotations

import json
from pathlib import Path


def learner_steps(run_dir: Path) -> list[int]:
    """The learner steps logged so far in a run directory (rows carrying a loss), sorted."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return sorted({json.loads(x)["step"] for x in path.read_text().splitlines() if '"loss"' in x})
