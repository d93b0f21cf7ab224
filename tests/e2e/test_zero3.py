"""ZeRO-3 learner e2e on CPU: real Ray Train (2 workers, gloo) + real DeepSpeed, against ZeRO-0.

The fused policy statistics read the LM head outside any module forward, where ZeRO-3 keeps it partitioned;
both a separate head and one tied to the embedding (a single Parameter) must train exactly as unpartitioned.
Two steps, each with gradient accumulation over two micro-batches per rank, at a sampling temperature != 1.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_learner_support import SAME_UPDATE_TOL, Run, base_cfg, build_random_qwen2, max_diff

pytestmark = pytest.mark.e2e


def test_zero3_matches_zero0_untied_and_tied_head(
    ray_cluster: dict, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    models = {
        "untied": build_random_qwen2(tmp_path_factory.mktemp("untied") / "model"),
        "tied": build_random_qwen2(tmp_path_factory.mktemp("tied") / "model", tied=True),
    }
    runs: dict[tuple[str, int], Run] = {}
    for name, path in models.items():
        for stage in (0, 3):
            cfg = base_cfg(zero_stage=stage)  # 2 workers, micro 2 of a per-worker mini-batch of 4
            cfg.trainer.max_steps = 2
            cfg.generator.temperature = 0.7
            run = Run(cfg, path, tmp_path / f"{name}-z{stage}")
            run.fill(range(2))
            runs[name, stage] = run.start()
    for run in runs.values():
        run.finish(timeout=600)

    from transformers import AutoModelForCausalLM

    for name, path in models.items():
        z0, z3 = runs[name, 0], runs[name, 3]
        assert z0.versions() == z3.versions() == [1, 2]
        w0, w3 = z0.weights(2), z3.weights(2)
        assert max_diff(w0, w3) < SAME_UPDATE_TOL, f"{name}: ZeRO-3 weights after 2 steps differ from ZeRO-0"
        # Same forward on the same weights: the first step's loss agrees too.
        loss0 = next(m["loss"] for m in z0.metrics if m["step"] == 0)
        loss3 = next(m["loss"] for m in z3.metrics if m["step"] == 0)
        assert abs(loss0 - loss3) < 1e-6, (name, loss0, loss3)
        # The steps changed the weights, the head included (a no-op would match trivially).
        init = {k: v.float() for k, v in AutoModelForCausalLM.from_pretrained(path).state_dict().items()}
        head = "lm_head.weight" if "lm_head.weight" in w0 else "model.embed_tokens.weight"
        assert float((w0[head] - init[head]).abs().max()) > 1e-4, name
        assert max_diff(w0, {k: init[k] for k in w0}) > 1e-4, name
