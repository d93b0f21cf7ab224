"""The run directory: where config, metrics, checkpoints and plots of one run live."""

from __future__ import annotations

import time
from pathlib import Path

from rlvr.config import RlvrConfig, to_yaml


def make_run_dir(cfg: RlvrConfig) -> Path:
    name = (
        cfg.trainer.run_name or f"{time.strftime('%Y%m%d-%H%M%S')}-{cfg.algorithm.name}-s{cfg.trainer.seed}"
    )
    run_dir = Path(cfg.trainer.output_dir).expanduser().resolve() / name
    run_dir.mkdir(parents=True, exist_ok=True)
    # The resolved config never holds secrets: tokens live only in the environment.
    (run_dir / "config.yaml").write_text(to_yaml(cfg))
    return run_dir


def remove_if_unused(run_dir: Path) -> None:
    """Delete a run directory that holds nothing but what `make_run_dir` and the logger wrote at start."""
    import shutil

    leftovers = {p.name for p in run_dir.iterdir()} - {
        "config.yaml",
        "metrics.jsonl",
        "tensorboard",
        "wandb",
        "learner",
    }
    metrics = run_dir / "metrics.jsonl"
    trained = any(run_dir.glob("learner/**/meta.json"))
    if not leftovers and not trained and (not metrics.exists() or metrics.stat().st_size == 0):
        shutil.rmtree(run_dir, ignore_errors=True)
