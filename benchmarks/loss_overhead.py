"""Loss overhead on CPU: fused GRPO vs fused SimKO vs naive full-logits GRPO vs official-style SimKO.

Each variant runs forward + loss + backward of the LM head and the loss (hidden states and the head weight
are leaves) in a fresh subprocess. Peak memory = kernel peak RSS (ru_maxrss) after the first run minus the
RSS just before it (inputs, weight and imports excluded; the weight gradient is included in every variant).
Time = best of --repeats runs. Ratios are measured side by side in one invocation and written to
benchmarks/results/loss_overhead.json.

  python benchmarks/loss_overhead.py            # 4,096 tokens (slow on 2 cores)
  python benchmarks/loss_overhead.py --tokens 1024 --official-tokens 1024
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "loss_overhead.json"
RESP = 8  # the tokens are split over this many responses


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_variant(variant: str, n: int, hidden: int, vocab: int, k: int, chunk: int, repeats: int) -> dict:
    import torch

    import rlvr.algorithms as algos
    from rlvr.algorithms import LossInput, TokenStats
    from rlvr.policy_stats import fused_token_stats

    torch.manual_seed(0)
    h = torch.randn(n, hidden).requires_grad_()
    w = torch.randn(vocab, hidden).mul_(0.05).requires_grad_()
    targets = torch.randint(0, vocab, (n,))
    adv = torch.randn(RESP)
    correct = adv > 0
    mask = torch.ones(RESP, n // RESP)
    name = "simko" if "simko" in variant else "grpo"
    algo = algos.get(name)
    params = algo.Params.model_validate({"top_k": k} if name == "simko" else {})

    def stats() -> TokenStats:
        if variant.endswith("fused"):
            lp, tlp, tid, ent, r1 = fused_token_stats(h, w, targets, k, chunk_size=chunk)
        else:
            logits = h @ w.t()  # [N, V]
            logp_all = torch.log_softmax(logits, -1)
            if variant == "simko_official":
                # Authors' style: K-expanded copies of the full log-softmax, gathered per rank, entropy with grad.
                tid = logits.detach().topk(k, -1).indices
                tlp = logp_all.unsqueeze(1).repeat(1, k, 1).gather(-1, tid[..., None]).squeeze(-1)
                ent = -(logp_all.exp() * logp_all).sum(-1)
            else:
                tid = logits.detach().topk(k, -1).indices
                tlp = logp_all.gather(-1, tid)
                with torch.no_grad():
                    ent = -(logp_all.exp() * logp_all).sum(-1)
            lp = logp_all.gather(-1, targets[:, None]).squeeze(-1)
            r1 = targets == tid[:, 0]
        view = (RESP, n // RESP)
        return TokenStats(
            lp.view(view), tlp.view(*view, k), tid.view(*view, k), ent.view(view), r1.view(view)
        )

    def step() -> None:
        st = stats()
        inp = LossInput(st, st.logprobs.detach() - 0.01, adv, adv, correct, mask)
        algo.loss(inp, params).loss.backward()
        h.grad = w.grad = None

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    base = rss_bytes()
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
        if i == 0:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # If setup already peaked above the pre-run RSS, the delta would be understated: report it.
    return {
        "time_s": min(times),
        "peak_mb": (peak - base) / 2**20,
        "setup_peak_above_base_mb": (rss0 - base) / 2**20,
    }


def spawn(variant: str, n: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--worker", variant, "--tokens", str(n), "--hidden", str(args.hidden)]
    cmd += [
        "--vocab",
        str(args.vocab),
        "--k",
        str(args.k),
        "--chunk",
        str(args.chunk),
        "--repeats",
        str(args.repeats),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    print(
        f"  {variant:15s} N={n:5d}  time {out['time_s']:8.2f} s  peak {out['peak_mb']:9.1f} MiB", flush=True
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument(
        "--official-tokens", type=int, default=None, help="N for the official-vs-fused SimKO pair"
    )
    ap.add_argument("--hidden", type=int, default=896)
    ap.add_argument("--vocab", type=int, default=151_936)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="512 tokens, vocab 32k")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.tokens, args.vocab = 512, 32_000
    if args.worker:
        print(
            json.dumps(
                run_variant(
                    args.worker, args.tokens, args.hidden, args.vocab, args.k, args.chunk, args.repeats
                )
            )
        )
        return
    n, n_off = args.tokens, args.official_tokens or args.tokens
    print(
        f"hidden {args.hidden}, vocab {args.vocab}, K {args.k}, chunk {args.chunk}, torch threads per worker"
    )
    res = {v: spawn(v, n, args) for v in ("grpo_fused", "simko_fused", "grpo_naive")}
    simko_same_n = res["simko_fused"] if n_off == n else spawn("simko_fused", n_off, args)
    res["simko_official"] = spawn("simko_official", n_off, args)
    ratios = {
        "simko_over_grpo_time": res["simko_fused"]["time_s"] / res["grpo_fused"]["time_s"],
        "simko_over_grpo_peak_mem": res["simko_fused"]["peak_mb"] / res["grpo_fused"]["peak_mb"],
        "fused_simko_over_official_peak_mem": simko_same_n["peak_mb"] / res["simko_official"]["peak_mb"],
        "fused_simko_over_official_time": simko_same_n["time_s"] / res["simko_official"]["time_s"],
        "fused_grpo_over_naive_grpo_peak_mem": res["grpo_fused"]["peak_mb"] / res["grpo_naive"]["peak_mb"],
        "fused_grpo_over_naive_grpo_time": res["grpo_fused"]["time_s"] / res["grpo_naive"]["time_s"],
    }
    targets = {
        "simko_over_grpo_time": ratios["simko_over_grpo_time"] <= 1.10,
        "simko_over_grpo_peak_mem": ratios["simko_over_grpo_peak_mem"] <= 1.10,
        "fused_simko_over_official_peak_mem": ratios["fused_simko_over_official_peak_mem"] <= 0.25,
    }
    for key, val in ratios.items():
        print(
            f"{key:40s} {val:6.3f}"
            + (f"  target {'met' if targets[key] else 'MISSED'}" if key in targets else "")
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "config": {
            **{k: v for k, v in vars(args).items() if k != "worker"},
            "official_tokens": n_off,
            "cpus": os.cpu_count(),
        },
        "memory_method": "fresh subprocess per variant; ru_maxrss after the first forward+backward minus RSS before it",
        "official_style": "full [N,V] log-softmax repeated K times ([N,K,V]) then gathered; entropy with grad",
        "variants": res,
        "simko_fused_at_official_tokens": simko_same_n,
        "ratios": ratios,
        "targets_met": targets,
    }
    OUT.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
