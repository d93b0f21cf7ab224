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
from rlvr.errors import RlvrUserError
from rlvr.metrics.passk import pass_at_k_curve
from rlvr.pipeline.components import Rollout, start_rollout
from rlvr.pipeline.report import plot_passk


def _checkpoint_step(hf: Path, root: Path) -> int:
    """The step of the checkpoint holding `hf` (its meta.json, else the checkpoint_<n> name); -1 if none."""
    for d in (hf, *hf.parents):
        if d == root.parent:
            break
        if d.name.startswith("checkpoint_"):
            try:
                return int(json.loads((d / "meta.json").read_text())["step"])
            except (OSError, ValueError, KeyError, TypeError):
                digits = d.name.removeprefix("checkpoint_")
                return int(digits) if digits.isdigit() else -1
    return -1


def hf_folder(path: str) -> str:
    """A model folder, or a run/checkpoint folder: then the HF model of its newest (highest step) checkpoint."""
    p = Path(path).expanduser()
    if (p / "config.json").exists() or not p.exists():
        return path
    found = [c.parent for c in p.rglob("config.json")]
    if not found:
        raise RlvrUserError(f"model.path: no HF model (config.json) under {p}")
    return str(max(found, key=lambda d: (_checkpoint_step(d, p), d.stat().st_mtime_ns, str(d))))


def evaluate_prompts(rollout: Rollout, cfg: RlvrConfig, prompts: list[Any]) -> dict[str, Any]:
    # round=-1: evaluation draws its own random streams, never a training sample's (same per prompt across
    # evaluations, so pass@K moves with the weights, not with the dice).
    groups = rollout.generate(
        [p.text for p in prompts],
        0,
        prompt_ids=[p.prompt_id for p in prompts],
        round=-1,
        n=cfg.eval.n,
        temperature=cfg.eval.temperature,
    )
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
    from rlvr.pipeline.prepare import prepare

    prepared = prepare(cfg, evaluation=True)  # chat template, length filter, tokenizer check
    model_path, prompts = prepared.model_path, prepared.prompts[: cfg.eval.max_prompts]
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
