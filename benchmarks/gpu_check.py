"""GPU self-check of the fused policy statistics and the learner's collectives; needs only torch.

Checks, each recorded with its numbers and a pass flag in benchmarks/results/gpu_check.json:
  1. `fused_token_stats` against a naive full softmax, fp32 and bf16, T = 1 and T = 0.7: log-prob, top-K
     log-probs, entropy, rank-1 flag and the gradients w.r.t. hidden and weight. The reference is float64 on
     the same (bf16-rounded) inputs; in bf16 the fused error must stay within a small multiple of the naive
     bf16 path's own error.
  2. Peak CUDA memory of fused vs naive forward+backward at Qwen2.5-0.5B's head (V = 151,936, H = 896).
  3. The learner's collective pattern (agree, all_mean, all_sum, all_max) on a one-rank NCCL group and on
     the mixed `cpu:gloo,cuda:nccl` group the GPU learner uses.
Without CUDA it runs the CPU parts at a small size (checks 1 and 3 on gloo), writes `"cuda": false` with
the reason, and exits 0. With CUDA it exits 1 if any check fails.

It loads rlvr/policy_stats.py and rlvr/learner/collectives.py by file path, so neither rlvr's package
imports (pydantic, Ray) nor DeepSpeed, vLLM or transformers need to be installed:

  python benchmarks/gpu_check.py [--tokens 4096] [--out benchmarks/results/gpu_check.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import socket
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.distributed as dist

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "gpu_check.json"


def load(rel: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / rel)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses and `from __future__ import annotations` look the module up
    spec.loader.exec_module(mod)
    return mod


def naive(
    h: torch.Tensor, w: torch.Tensor, tgt: torch.Tensor, k: int, t: float, ids: torch.Tensor | None = None
) -> tuple[torch.Tensor, ...]:
    """Full [N, V] logits, the textbook way; logits in the inputs' dtype, softmax in fp32 (or fp64).
    `ids` fixes the top-K ids (a reference scores the same ids as the path it checks: in bf16, near-ties
    make the top-K order differ from fp64's, and the top-K gradient would flow to other vocabulary rows)."""
    z = (h @ w.t()).to(torch.promote_types(h.dtype, torch.float32)) / t
    lp_all = torch.log_softmax(z, -1)
    ids = z.topk(k, -1).indices if ids is None else ids
    lp = lp_all.gather(1, tgt[:, None]).squeeze(1)
    rank1 = lp >= lp_all.max(-1).values
    return lp, lp_all.gather(1, ids), ids, -(lp_all.exp() * lp_all).sum(-1), rank1


def _loss(out: tuple[torch.Tensor, ...], coef: list[torch.Tensor]) -> torch.Tensor:
    # Upstream grads on every differentiable output: log-prob, top-K log-probs, entropy.
    return (out[0] * coef[0]).sum() + (out[1] * coef[1]).sum() + (out[3] * coef[2]).sum()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30))


def check_values_and_grads(
    ps: ModuleType, dev: str, n: int, h: int, v: int, dtype: torch.dtype, t: float
) -> dict:
    g = torch.Generator(device="cpu").manual_seed(0)
    hid0 = (torch.randn(n, h, generator=g) * 0.5).to(dtype)
    w0 = (torch.randn(v, h, generator=g) * 0.05).to(dtype)
    tgt = torch.randint(0, v, (n,), generator=g)
    tgt[: n // 4] = (hid0[: n // 4].double() @ w0.double().t()).argmax(-1)  # some rank-1 hits
    coef = [torch.randn(n, generator=g), torch.randn(n, 3, generator=g), torch.randn(n, generator=g) * 0.1]
    coef = [c.to(dev, torch.float64) for c in coef]
    tgt = tgt.to(dev)

    def run(fn: Any, cast: torch.dtype) -> dict[str, Any]:
        hid = hid0.to(dev, cast).requires_grad_(True)
        w = w0.to(dev, cast).requires_grad_(True)
        out = fn(hid, w)
        as64 = tuple(o.double() if o.is_floating_point() else o for o in out)
        gh, gw = torch.autograd.grad(_loss(as64, coef), [hid, w])
        return {"out": tuple(o.detach() for o in out), "hidden": gh, "weight": gw}

    fused = run(lambda a, b: ps.fused_token_stats(a, b, tgt, 3, chunk_size=256, temperature=t), dtype)
    plain = run(lambda a, b: naive(a, b, tgt, 3, t), dtype)
    ref_f = run(lambda a, b: naive(a, b, tgt, 3, t, fused["out"][2]), torch.float64)
    ref_n = run(lambda a, b: naive(a, b, tgt, 3, t, plain["out"][2]), torch.float64)
    ref = run(lambda a, b: naive(a, b, tgt, 3, t), torch.float64)
    res: dict[str, Any] = {
        "dtype": str(dtype).removeprefix("torch."),
        "temperature": t,
        "n": n,
        "h": h,
        "v": v,
    }
    names = ["logprob", "topk_logprob", "entropy"]
    for i, name in zip((0, 1, 3), names, strict=True):
        res[f"{name}_err_fused"] = float((fused["out"][i].double() - ref_f["out"][i]).abs().max())
        res[f"{name}_err_naive"] = float((plain["out"][i].double() - ref_n["out"][i]).abs().max())
    for p in ("hidden", "weight"):
        res[f"grad_{p}_rel_fused"] = _rel(fused[p], ref_f[p])
        res[f"grad_{p}_rel_naive"] = _rel(plain[p], ref_n[p])
    # Rank-1 flags and top-K ids may differ from fp64 only where two logits tie within rounding.
    res["rank1_agree_frac"] = float((fused["out"][4] == ref["out"][4]).double().mean())
    res["topk_ids_agree_frac"] = float((fused["out"][2] == ref["out"][2]).double().mean())
    if dtype == torch.float32:
        ok = all(res[f"{m}_err_fused"] < 1e-4 for m in names)
        ok &= res["grad_hidden_rel_fused"] < 1e-4 and res["grad_weight_rel_fused"] < 1e-4
        ok &= res["rank1_agree_frac"] > 0.99 and res["topk_ids_agree_frac"] > 0.99
    else:  # bf16: the fused path may not be much worse than the textbook bf16 path
        ok = all(res[f"{m}_err_fused"] <= 2 * res[f"{m}_err_naive"] + 1e-3 for m in names)
        for p in ("hidden", "weight"):
            ok &= res[f"grad_{p}_rel_fused"] <= 2 * res[f"grad_{p}_rel_naive"] + 1e-2
        ok &= res["rank1_agree_frac"] > 0.9
    res["ok"] = bool(ok)
    return res


def check_peak_memory(ps: ModuleType, n: int, h: int, v: int, chunk: int) -> dict:
    """Forward + backward of the head statistics in bf16 (hidden and weight are leaves)."""
    dev = "cuda"
    g = torch.Generator(device=dev).manual_seed(0)
    hid = (torch.randn(n, h, device=dev, generator=g) * 0.5).bfloat16().requires_grad_(True)
    w = (torch.randn(v, h, device=dev, generator=g) * 0.05).bfloat16().requires_grad_(True)
    tgt = torch.randint(0, v, (n,), device=dev, generator=g)
    res: dict[str, Any] = {"n": n, "h": h, "v": v, "chunk_size": chunk, "dtype": "bfloat16"}
    variants = {
        "fused": lambda: ps.fused_token_stats(hid, w, tgt, 3, chunk_size=chunk),
        "naive": lambda: naive(hid, w, tgt, 3, 1.0),
    }
    for name, fn in variants.items():
        for rep in range(2):  # the first run warms up kernels and the allocator
            hid.grad = w.grad = None
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            t0 = time.perf_counter()
            out = fn()
            (out[0].sum() + out[1].sum() + 0.01 * out[3].sum()).backward()
            torch.cuda.synchronize()
            if rep == 1:
                res[f"{name}_peak_mib"] = (torch.cuda.max_memory_allocated() - base) / 2**20
                res[f"{name}_ms"] = (time.perf_counter() - t0) * 1e3
            del out
    res["naive_over_fused_peak"] = res["naive_peak_mib"] / res["fused_peak_mib"]
    # One [chunk, V] fp32 block is ~0.6 GiB here; the naive path keeps several [N, V] ones.
    res["ok"] = bool(res["fused_peak_mib"] < res["naive_peak_mib"])
    return res


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check_collectives(col: ModuleType, backend: str) -> dict:
    res: dict[str, Any] = {"backend": backend}
    try:
        dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    except Exception as e:  # noqa: BLE001 - a backend this torch build lacks is a result, not a crash
        return {**res, "ok": False, "error": f"{type(e).__name__}: {e}"}
    try:
        res["backend_config"] = dist.get_backend_config()
        res["tensor_device"] = str(col.device_for_backend(res["backend_config"]))
        # World 1 short-cuts the reduction; run the learner's pattern through the real all_reduce too.
        dev = col.device_for_backend(res["backend_config"])
        probe = torch.tensor([1.0, 2.0], dtype=torch.float64, device=dev)
        dist.all_reduce(probe, op=dist.ReduceOp.MIN)
        res["all_reduce_min"] = probe.tolist()
        res["agree"] = [col.agree(True), col.agree(False)]
        res["all_mean"] = col.all_mean({"loss": 0.5, "entropy": 1.25})
        res["all_sum"] = col.all_sum([2.0**53, 1.0])
        res["all_max"] = col.all_max([3.0])
        res["ok"] = bool(
            res["agree"] == [True, False]
            and res["all_mean"] == {"entropy": 1.25, "loss": 0.5}
            and res["all_max"] == [3.0]
            and res["all_reduce_min"] == [1.0, 2.0]
        )
    except Exception as e:  # noqa: BLE001
        res |= {"ok": False, "error": f"{type(e).__name__}: {e}"}
    finally:
        dist.destroy_process_group()
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=4096, help="tokens for the peak-memory check")
    ap.add_argument("--chunk", type=int, default=1024, help="fused chunk size for the peak-memory check")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    ps = load("rlvr/policy_stats.py", "rlvr_policy_stats_standalone")
    col = load("rlvr/learner/collectives.py", "rlvr_collectives_standalone")
    cuda = torch.cuda.is_available()
    report: dict[str, Any] = {"torch": torch.__version__, "torch_cuda": torch.version.cuda, "cuda": cuda}
    if cuda:
        dev, n, h, v = "cuda", 512, 896, 151_936
        report["device"] = torch.cuda.get_device_name()
    else:
        dev, n, h, v = "cpu", 64, 64, 1000
        report["reason"] = (
            f"torch.cuda.is_available() is False (torch {torch.__version__}, built with CUDA "
            f"{torch.version.cuda}): ran the CPU parts only at a small size; no peak-memory or NCCL check"
        )
    report["values_and_grads"] = [
        check_values_and_grads(ps, dev, n, h, v, dt, t)
        for dt in (torch.float32, torch.bfloat16)
        for t in (1.0, 0.7)
    ]
    if cuda:
        report["peak_memory"] = check_peak_memory(ps, args.tokens, h, v, args.chunk)
        report["collectives"] = [check_collectives(col, b) for b in ("nccl", "cpu:gloo,cuda:nccl")]
    else:
        report["collectives"] = [check_collectives(col, "gloo")]
    checks = [*report["values_and_grads"], *report["collectives"]]
    checks += [report["peak_memory"]] if cuda else []
    report["ok"] = all(c["ok"] for c in checks)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] or not cuda else 1


if __name__ == "__main__":
    sys.exit(main())
