"""The learner's forward+backward with torch's sdpa attention against eager, on CPU, one thread.

What `learner.attn_implementation=auto` rests on (rlvr/learner/attention.py): on short sequences torch's CPU
flash-attention backward is slow, and eager attention (whose [rows, heads, L, L] scores are then small)
is faster. Each case runs the fused policy statistics (top-3, as the learner does) and their backward on a
random Qwen2 of vs_trl.py's tiny shapes (hidden 256, 4 layers, 4 heads), in float32 and bfloat16 weights,
the two kernels alternating in one process. Prints eager/sdpa time per case and what `auto` picks; writes
benchmarks/results/attention_kernels.json.

    python benchmarks/attention_kernels.py [--rounds N] [--reps N]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "attention_kernels.json"
# (rows, tokens): vs_trl.py's tiny step (128 x 18); a longer micro-batch; one past auto's eager limit.
SHAPES = [(128, 18), (32, 64), (8, 200), (4, 512)]


def model(dtype: object) -> object:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    conf = Qwen2Config(vocab_size=320, hidden_size=256, num_attention_heads=4, num_key_value_heads=4,
                       num_hidden_layers=4, intermediate_size=512, attn_implementation="sdpa")  # fmt: skip
    return Qwen2ForCausalLM(conf).to(dtype).train()


def seconds(m: object, rows: int, tokens: int, reps: int) -> float:
    import torch

    from rlvr.policy_stats import policy_token_stats

    ids = torch.randint(1, 320, (rows, tokens))
    mask = torch.ones_like(ids)

    def once() -> None:
        st = policy_token_stats(m, ids, mask, mask, 3)
        (-(st.logprobs.sum())).backward()
        m.zero_grad()  # type: ignore[attr-defined]

    once()  # first call: allocations, kernel selection
    t = time.perf_counter()
    for _ in range(reps):
        once()
    return (time.perf_counter() - t) / reps


def main() -> None:
    import torch

    from rlvr.learner.attention import choose

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="alternations of the two kernels per case")
    ap.add_argument("--reps", type=int, default=3, help="timed passes per kernel and round")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cases = []
    for dtype in (torch.float32, torch.bfloat16):
        m = model(dtype)
        for rows, tokens in SHAPES:
            times: dict[str, list[float]] = {"sdpa": [], "eager": []}
            for _ in range(args.rounds):
                for kernel in ("sdpa", "eager"):
                    m.set_attn_implementation(kernel)  # type: ignore[attr-defined]
                    times[kernel].append(seconds(m, rows, tokens, args.reps))
            med = {k: statistics.median(v) for k, v in times.items()}
            case = {
                "dtype": str(dtype).removeprefix("torch."),
                "rows": rows,
                "tokens": tokens,
                "sdpa_s": med["sdpa"],
                "eager_s": med["eager"],
                "eager_over_sdpa": med["eager"] / med["sdpa"],
                "auto_picks": choose("auto", rows, tokens, 4, on_gpu=False, half=dtype == torch.bfloat16),
                "runs": times,
            }
            cases.append(case)
            print(
                f"{case['dtype']:8s} {rows:4d} x {tokens:4d}: sdpa {med['sdpa']:.3f} s, eager {med['eager']:.3f} s, "
                f"eager/sdpa {case['eager_over_sdpa']:.2f}; auto picks {case['auto_picks']}"
            )
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if "model name" in ln), "?")
    OUT.write_text(
        json.dumps(
            {
                "machine": {
                    "cpu": cpu,
                    "threads": 1,
                    "torch": torch.__version__,
                    "python": platform.python_version(),
                },
                "rounds": args.rounds,
                "reps": args.reps,
                "cases": cases,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
