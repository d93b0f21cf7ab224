"""`rlvr run -m ...`: each combination in turn, then a comparison table and plot."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from rlvr.config import RlvrConfig
from rlvr.errors import RlvrUserError


def run_multirun(configs: list[tuple[list[str], RlvrConfig]]) -> Path:
    from rlvr.pipeline.report import read_metrics
    from rlvr.pipeline.run import run_training

    base = configs[0][1].trainer.output_dir
    if any(cfg.trainer.output_dir != base for _, cfg in configs):
        raise RlvrUserError(
            "trainer.output_dir: one for the whole multirun (its comparison goes there); not a sweep"
        )
    root = Path(base) / f"multirun-{time.strftime('%Y%m%d-%H%M%S')}"
    root.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for i, (overrides, cfg) in enumerate(configs):
        cfg.trainer.output_dir = str(root)
        cfg.trainer.run_name = f"{i:02d}-{cfg.trainer.run_name or cfg.algorithm.name}"  # yours, numbered
        summary = run_training(cfg)
        metrics = read_metrics(Path(summary["run_dir"]))
        last = metrics[max(metrics)] if metrics else {}
        rows.append(
            {"overrides": " ".join(overrides), "run_dir": summary["run_dir"], **_final(metrics, last)}
        )
    (root / "comparison.json").write_text(json.dumps(rows, indent=2))
    table = [
        "| overrides | reward (last 5 steps) | accuracy | lambda/rank1 | entropy |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        table.append(
            f"| {r['overrides']} | {r['reward']:.3f} | {r['accuracy']:.3f} | {r['lambda1']:.3f} | {r['entropy']:.3f} |"
        )
    (root / "comparison.md").write_text("\n".join(table) + "\n")
    _plot(rows, root)
    print("\n".join(table), file=sys.stderr)
    return root


def _final(metrics: dict[int, dict[str, float]], last: dict[str, float]) -> dict[str, float]:
    def tail_mean(key: str) -> float:
        vals = [m[key] for m in list(metrics.values())[-5:] if key in m]
        return sum(vals) / len(vals) if vals else float("nan")

    return {
        "reward": tail_mean("reward"),
        "accuracy": tail_mean("accuracy"),
        "lambda1": tail_mean("lambda/rank1"),
        "entropy": tail_mean("entropy"),
    }


def _plot(rows: list[dict[str, Any]], root: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rlvr.pipeline.report import read_metrics

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for r in rows:
        m = read_metrics(Path(r["run_dir"]))
        pts = [(s, v["reward"]) for s, v in m.items() if "reward" in v]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=r["overrides"] or "default")
    ax.set_xlabel("step")
    ax.set_ylabel("reward")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(root / "comparison.png", dpi=110)
    plt.close(fig)
