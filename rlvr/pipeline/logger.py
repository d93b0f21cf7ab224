"""Per-step metrics -> JSONL, TensorBoard, optional Weights & Biases, and a live progress line.

In: flat dicts of floats. Out: files in the run directory. Must never log secrets: values pass
through `redact` before they are written.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from rlvr.config.schema import LoggingConfig
from rlvr.deploy.auth import redact
from rlvr.errors import RlvrUserError


class MetricsLogger:
    def __init__(self, cfg: LoggingConfig, run_dir: Path, total_steps: int) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.total = total_steps
        self.t0 = time.time()
        self._latest: dict[str, float] = {}
        self._jsonl = open(run_dir / "metrics.jsonl", "a") if cfg.jsonl else None  # noqa: SIM115
        self._tb = None
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        self._wandb = None
        if cfg.wandb:
            try:
                import wandb  # optional dependency
            except ImportError as e:
                raise RlvrUserError(
                    "logging.wandb=true needs the wandb package: pip install 'rlvr[wandb]'"
                ) from e
            # Offline mode writes the run under the run directory; `wandb sync` uploads it later.
            self._wandb = wandb.init(project=cfg.wandb_project, mode=cfg.wandb_mode, dir=str(run_dir))

    def log(self, step: int, metrics: dict[str, Any], *, progress: bool = True) -> None:
        """`progress=False` for rows that arrive late (learner metrics): they update the bar's numbers only."""
        clean = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
        self._latest.update(clean)
        if self._jsonl:
            self._jsonl.write(
                redact(json.dumps({"step": step, "time": time.time() - self.t0, **clean})) + "\n"
            )
            self._jsonl.flush()
        if self._tb:
            for k, v in clean.items():
                self._tb.add_scalar(k, v, step)
            self._tb.flush()
        if self._wandb:
            self._wandb.log(clean, step=step)
        if self.cfg.progress and progress:
            self._progress(step, self._latest)

    def _progress(self, step: int, m: dict[str, float]) -> None:
        done = step + 1
        width = 24
        filled = int(width * done / max(self.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        keys = [
            ("reward", "reward"),
            ("acc", "accuracy"),
            ("lam1", "lambda/rank1"),
            ("H", "entropy"),
            ("stale", "staleness_mean"),
        ]
        parts = [f"{short}={m[k]:.3f}" for short, k in keys if k in m]
        line = f"\r[{bar}] step {done}/{self.total} " + " ".join(parts) + f" {time.time() - self.t0:.0f}s"
        sys.stderr.write(line + ("\n" if done >= self.total else ""))
        sys.stderr.flush()

    def close(self) -> None:
        if self._jsonl:
            self._jsonl.close()
        if self._tb:
            self._tb.close()
        if self._wandb:
            import wandb

            self._wandb.finish()
            # finish() only tells wandb's service the run ended; the service writes and closes the run
            # file later. teardown() waits for it, so the file is complete when close() returns.
            wandb.teardown()
            self._wandb = None
