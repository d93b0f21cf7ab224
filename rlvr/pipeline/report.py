"""Plots from a run directory: reward/accuracy, Lambda^(k) dynamics, entropy, and pass@K if evaluated.

In: `metrics.jsonl` (and `eval*.json`) in a run directory. Out: PNG files beside them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlvr.errors import RlvrUserError

SMOOTH = 4


def read_metrics(run_dir: Path) -> dict[int, dict[str, float]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        raise RlvrUserError(f"run_dir: no metrics.jsonl in {run_dir}")
    by_step: dict[int, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            by_step.setdefault(int(row["step"]), {}).update(row)
    return dict(sorted(by_step.items()))


def _series(rows: dict[int, dict[str, float]], key: str) -> tuple[list[int], list[float]]:
    pts = [(s, r[key]) for s, r in rows.items() if key in r]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_passk(curves: dict[str, dict[int, float]], out: Path, title: str = "pass@K") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, curve in curves.items():
        ks = sorted(int(k) for k in curve)
        ax.plot(ks, [curve[k] if k in curve else curve[str(k)] for k in ks], marker="o", label=label)  # type: ignore[index]
    ax.set_xscale("log", base=2)
    ax.set_xlabel("K")
    ax.set_ylabel("pass@K")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def make_report(run_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    rows = read_metrics(run_dir)
    out: list[Path] = []
    panels: list[tuple[str, list[str]]] = [
        ("reward", ["reward", "accuracy"]),
        (
            "concentration",
            [k for k in sorted({k for r in rows.values() for k in r}) if k.startswith("lambda/rank")],
        ),
        ("entropy", ["entropy", "rank1_frac", "high_entropy_frac"]),
        ("loss", ["loss", "clip_frac", "approx_kl"]),
    ]
    for name, keys in panels:
        keys = [k for k in keys if any(k in r for r in rows.values())]
        if not keys:
            continue
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for k in keys:
            xs, ys = _series(rows, k)
            ax.plot(xs, ys, label=k, alpha=0.45 if name == "reward" else 1.0)
            if name == "reward" and len(ys) >= SMOOTH:
                # Steps see different prompts: a moving average shows the trend through their difficulty.
                avg = [sum(ys[i - SMOOTH + 1 : i + 1]) / SMOOTH for i in range(SMOOTH - 1, len(ys))]
                ax.plot(xs[SMOOTH - 1 :], avg, lw=2.2, label=f"{k} ({SMOOTH}-step mean)")
        ax.set_xlabel("step")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = run_dir / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        out.append(path)
    for ev in sorted(run_dir.glob("eval*.json")):
        data: dict[str, Any] = json.loads(ev.read_text())
        if "pass_at_k" in data:
            out.append(plot_passk({ev.stem: data["pass_at_k"]}, ev.with_suffix(".png")))
    return out
