"""`rlvr eval`: n samples per held-out problem through the same generator deployment and verifiers.

In: config (model.path = checkpoint or HF folder, data source, eval.n). Out: pass@K for
K = 1, 2, 4, ... n (unbiased estimator), mean@n, written as JSON plus a PNG curve.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from rlvr.cluster import connect
from rlvr.config import RlvrConfig
from rlvr.data.loader import load_prompts
from rlvr.errors import RlvrUserError
from rlvr.metrics.passk import pass_at_k_curve
from rlvr.models.loading import resolve_model_path
from rlvr.pipeline.components import Rollout, start_rollout
from rlvr.pipeline.report import plot_passk


def hf_folder(path: str) -> str:
    """A learner checkpoint keeps its HF model in a subfolder; accept either."""
    p = Path(path).expanduser()
    if (p / "config.json").exists() or not p.exists():
        return path
    found = sorted(c.parent for c in p.rglob("config.json"))
    if not found:
        raise RlvrUserError(f"model.path: no HF model (config.json) under {p}")
    return str(found[0])


def evaluate_prompts(rollout: Rollout, cfg: RlvrConfig, prompts: list[Any]) -> dict[str, Any]:
    groups = rollout.generate([p.text for p in prompts], 0, n=cfg.eval.n, temperature=cfg.eval.temperature)
    items = [
        (p.data_source, s.response_text, p.ground_truth, p.metadata)
        for p, g in zip(prompts, groups, strict=True)
        for s in g
    ]
    results = rollout.verify(items)
    per_problem, i = [], 0
    for g in groups:
        c = sum(r.correct for r in results[i : i + len(g)])
        per_problem.append((len(g), c))
        i += len(g)
    curve = pass_at_k_curve(per_problem)
    return {
        "n": cfg.eval.n,
        "problems": len(prompts),
        "pass_at_k": {str(k): v for k, v in curve.items()},
        "mean_at_n": sum(c for _, c in per_problem) / max(sum(n for n, _ in per_problem), 1),
        "per_problem_correct": [c for _, c in per_problem],
    }


def run_eval(cfg: RlvrConfig) -> dict[str, Any]:
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    if cfg.model.path != "tiny":
        cfg.model.path = hf_folder(cfg.model.path)
    model_path = resolve_model_path(cfg.model)
    prompts = load_prompts(cfg.data, evaluation=True)[: cfg.eval.max_prompts]
    connect(cfg.cluster)
    rollout = start_rollout(cfg, model_path, tag=f"eval-{os.getpid()}")
    try:
        t0 = time.time()
        result = evaluate_prompts(rollout, cfg, prompts)
        result["seconds"] = round(time.time() - t0, 2)
    finally:
        rollout.shutdown()
    result["model"] = model_path
    result["data"] = cfg.data.eval_source or cfg.data.source
    out = Path(
        cfg.eval.output
        or Path(cfg.trainer.output_dir) / "eval" / f"eval-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    result["json"] = str(out)
    result["png"] = str(plot_passk({Path(model_path).name: result["pass_at_k"]}, out.with_suffix(".png")))
    return result
