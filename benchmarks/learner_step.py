"""Learner step time and peak memory: tiny vs 0.5B random Qwen2, ZeRO-0 vs ZeRO-2, GRPO vs SimKO.

Each case runs in a fresh process (so peak RSS is that case's alone) with a one-process gloo group and
the learner's own pieces: `collate`/`micro_batches`, DeepSpeed from `deepspeed_config`, the fused
`policy_token_stats` and the strategy's loss. Prints ZeRO-2/ZeRO-0 and SimKO/GRPO step-time ratios.
With one worker ZeRO-2 partitions nothing; the ratio shows its bookkeeping cost, not its memory saving.

    python benchmarks/learner_step.py [--quick] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "results" / "learner_step.json"
MODELS = {
    "tiny": dict(vocab_size=256, hidden_size=128, num_attention_heads=2, num_key_value_heads=1,
                 num_hidden_layers=2, intermediate_size=256),
    # Qwen2.5-0.5B shapes (random weights: no download).
    "qwen2-0.5b": dict(vocab_size=151936, hidden_size=896, num_attention_heads=14, num_key_value_heads=2,
                       num_hidden_layers=24, intermediate_size=4864, tie_word_embeddings=True),
}  # fmt: skip


def _batch(vocab: int, n: int, seed: int) -> Any:
    import random

    from rlvr.learner.batching import collate
    from rlvr.types import Prompt, Sample, Trajectory, VerifierResult

    rng = random.Random(seed)
    trajs = []
    for i in range(n):
        p = [rng.randrange(1, vocab) for _ in range(32)]
        r = [rng.randrange(1, vocab) for _ in range(rng.randint(16, 32))]
        good = i % 2 == 0
        trajs.append(Trajectory(Prompt("q", "a"), Sample(p, r, "", [-3.0] * len(r), "stop", 0), f"g{i // 4}",
                                VerifierResult(float(good), good), advantage=1.0 if good else -1.0))  # fmt: skip
    return collate(trajs)


def _case(model: str, zero: int, algo_name: str, steps: int, batch: int, q: Any) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(29500 + os.getpid() % 1000), RANK="0",
                      WORLD_SIZE="1", LOCAL_RANK="0")  # fmt: skip
    import deepspeed
    import torch
    import torch.distributed as dist
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from rlvr import algorithms
    from rlvr.algorithms.base import LossInput
    from rlvr.config.schema import LearnerConfig
    from rlvr.learner.batching import micro_batches
    from rlvr.learner.ds_config import build_optimizer, deepspeed_config, plan_batches
    from rlvr.policy_stats import policy_token_stats

    dist.init_process_group("gloo")
    torch.manual_seed(0)
    net = Qwen2ForCausalLM(Qwen2Config(max_position_embeddings=256, **MODELS[model]))
    lc = LearnerConfig(zero_stage=zero, mini_batch_size=batch, micro_batch_size=4, lr=1e-5)
    plan = plan_batches(lc, 1, batch)
    opt, sched = build_optimizer(net, lc)
    engine, *_ = deepspeed.initialize(model=net, optimizer=opt, lr_scheduler=sched,
                                      config=deepspeed_config(lc, plan, 1, on_gpu=False))  # fmt: skip
    algo = algorithms.get(algo_name)
    params = algo.Params()
    times = []
    for s in range(steps + 1):  # step 0 is warm-up
        data = _batch(MODELS[model]["vocab_size"], batch, s)
        t0 = time.perf_counter()
        for mb in micro_batches(data, plan.micro):
            st = policy_token_stats(engine.module, mb.input_ids, mb.attention_mask, mb.loss_mask,
                                    algo.top_k(params), chunk_size=1024)  # fmt: skip
            inp = LossInput(
                st, mb.old_logprobs, mb.advantages, mb.rewards, mb.correct, mb.loss_mask[:, 1:].float()
            )
            engine.backward(algo.loss(inp, params).loss)
            engine.step()
        if s:
            times.append(time.perf_counter() - t0)
    dist.destroy_process_group()
    q.put({
        "model": model, "params_m": round(sum(p.numel() for p in net.parameters()) / 1e6, 1),
        "zero_stage": zero, "algorithm": algo_name, "batch": batch, "micro": plan.micro, "steps": steps,
        "step_time_s": statistics.median(times),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    })  # fmt: skip


def run_case(*args: Any) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_case, args=(*args, q))
    p.start()
    p.join(1800)
    if p.exitcode != 0:
        return {"case": list(args), "error": f"exit code {p.exitcode}"}
    return q.get(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="1 timed step for the 0.5B model, GRPO only there")
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()
    rows = []
    for model in MODELS:
        big = model != "tiny"
        steps = 1 if (big and a.quick) else a.steps
        algos = ["grpo"] if (big and a.quick) else ["grpo", "simko"]
        batch = 8 if big else 16
        for zero in (0, 2):
            for algo in algos:
                r = run_case(model, zero, algo, steps, batch)
                print(json.dumps(r), flush=True)
                rows.append(r)
    ok = {(r["model"], r["zero_stage"], r["algorithm"]): r["step_time_s"] for r in rows if "error" not in r}
    ratios = {}
    for model in MODELS:
        if (model, 2, "grpo") in ok and (model, 0, "grpo") in ok:
            ratios[f"{model}_zero2_over_zero0"] = ok[(model, 2, "grpo")] / ok[(model, 0, "grpo")]
        if (model, 0, "simko") in ok and (model, 0, "grpo") in ok:
            ratios[f"{model}_simko_over_grpo"] = ok[(model, 0, "simko")] / ok[(model, 0, "grpo")]
    print(json.dumps(ratios, indent=2))
    env = {"python": sys.version.split()[0], "cpu_count": os.cpu_count(), "machine": platform.machine(),
           "device": "cpu", "workers": 1, "quick": a.quick}  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"env": env, "cases": rows, "ratios": ratios}, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
