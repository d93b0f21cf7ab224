"""AdamW step on CPU: torch's default (foreach) form against the fused one the learner now uses.

Each case is a fresh process holding fp32 parameters of a model's shapes (random values, gradients set:
SmolLM2-135M, and the 4-layer model of vs_trl.py), which is what DeepSpeed's bf16 optimizer at ZeRO-0 hands AdamW: one fp32 master copy per parameter.
Measured side by side, alternating, in one run: step seconds (median of the steps after the first, which
allocates the two moments) and the process's peak RSS above the parameters, gradients and moments
(the step's own temporaries). Writes benchmarks/results/optimizer_step.json.

    python benchmarks/optimizer_step.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).parent / "results" / "optimizer_step.json"
CASES = ["smollm2-135m", "vs_trl tiny (hidden 256, 4 layers)"]


def param_shapes(case: str) -> list[tuple[int, ...]]:
    """The trainable parameters' shapes, from the architecture itself built on the meta device."""
    import torch

    with torch.device("meta"):
        if case.startswith("smollm2"):
            from transformers import LlamaConfig, LlamaForCausalLM

            conf = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                               num_attention_heads=9, num_key_value_heads=3, head_dim=64, tie_word_embeddings=True)  # fmt: skip
            model = LlamaForCausalLM(conf)
        else:
            from rlvr.config.schema import TinyModelConfig
            from rlvr.models.tiny import build_model

            tiny = TinyModelConfig(hidden_size=256, num_layers=4, num_heads=4, intermediate_size=512)
            model = build_model(tiny, 64)
    return [tuple(p.shape) for p in model.parameters()]  # a tied weight is one Parameter, listed once


def child(model: str, impl: str, steps: int) -> dict:
    import resource
    import time

    import torch

    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s) * 0.02) for s in param_shapes(model)]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    kw = {"fused": True} if impl == "fused" else {"foreach": True}
    opt = torch.optim.AdamW(params, lr=1e-6, weight_decay=0.0, **kw)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t0)
    n = sum(p.numel() for p in params)
    held = 4 * n * 4  # parameters, gradients and the two moments, fp32
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"params": n, "step_s_median": statistics.median(times[1:]), "first_step_s": times[0],
            "peak_rss_gib": peak / 2**30, "held_gib": held / 2**30}  # fmt: skip


def main(rounds: int, steps: int) -> None:
    threads = os.environ.get("OMP_NUM_THREADS") or str(min(2, os.cpu_count() or 1))
    env = {**os.environ, "OMP_NUM_THREADS": threads}
    result: dict = {"machine": {"cpus": os.cpu_count(), "threads": int(threads), "platform": platform.platform()},
                    "rounds": rounds, "steps": steps, "cases": {}}  # fmt: skip
    for model in CASES:
        runs: dict[str, list[dict]] = {"foreach": [], "fused": []}
        for _ in range(rounds):
            for impl in runs:  # interleaved: machine noise hits both
                cmd = [sys.executable, __file__, "--child", model, impl, str(steps)]
                out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
                runs[impl].append(json.loads(out.strip().splitlines()[-1]))
        case = {impl: {"step_s_median": statistics.median(r["step_s_median"] for r in rs),
                       "peak_rss_gib_max": max(r["peak_rss_gib"] for r in rs),
                       "held_gib": rs[0]["held_gib"], "params": rs[0]["params"]}
                for impl, rs in runs.items()}  # fmt: skip
        case["foreach_over_fused_step_s"] = case["foreach"]["step_s_median"] / case["fused"]["step_s_median"]
        case["foreach_minus_fused_peak_gib"] = (
            case["foreach"]["peak_rss_gib_max"] - case["fused"]["peak_rss_gib_max"]
        )
        result["cases"][model] = case
        print(f"{model}: foreach {case['foreach']['step_s_median']:.3f} s, fused {case['fused']['step_s_median']:.3f} s "
              f"({case['foreach_over_fused_step_s']:.1f}x); peak RSS {case['foreach']['peak_rss_gib_max']:.2f} vs "
              f"{case['fused']['peak_rss_gib_max']:.2f} GiB (held {case['fused']['held_gib']:.2f})")  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    else:
        ap = argparse.ArgumentParser()
        ap.add_argument("--rounds", type=int, default=3)
        ap.add_argument("--steps", type=int, default=5)
        args = ap.parse_args()
        main(args.rounds, args.steps)
