"""A real model on CPU: SmolLM2-135M-Instruct (imported from GGUF) generation and learner step.

Generation: the vLLM backend vs the transformers (HF) backend, both in-process with the same threads, on
the same chat-templated GSM8K prompts (8 prompts x 4 samples, 128 new tokens, fixed length: ignore_eos,
per-sample seeds). Learner: one forward+backward+AdamW step of the float32 policy through
`rlvr.policy_stats.policy_token_stats` (top-3 statistics, as SimKO needs), with and without gradient
checkpointing, at a stated batch. Each measurement runs in its own process, so every peak RSS is that
measurement's alone. Whole run: the README's "Train a real model" command (SimKO, GSM8K format, chat
template, `model=hf`: bf16 learner and generator) for 2 steps, with the summed proportional set size
(PSS: shared pages counted once, Ray's object store included) of its whole process tree sampled every
second (`proc_tree.py`), the process count, the largest processes at the peak and the start-up timeline. Writes
benchmarks/results/real_model.json.

  python benchmarks/real_model.py              # everything (about 20 min on 2 cores)
  python benchmarks/real_model.py --only run   # only the whole-run memory (--runs 3: three runs, their spread)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # tests/real_model.py: download + import once per machine
OUT = REPO / "benchmarks" / "results" / "real_model.json"
GSM8K = REPO.parent / "shared" / "datasets" / "math" / "test_gsm8k.jsonl"
THREADS = int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1))
GEN = {"prompts": 8, "n": 4, "max_tokens": 128, "temperature": 1.0, "reps": 2}
LEARN = {"batch": 8, "prompt_tokens": 128, "response_tokens": 128, "top_k": 3, "reps": 3}


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def prompts(tok) -> list[str]:
    if GSM8K.exists():
        rows = [json.loads(line)["question"] for line in GSM8K.read_text().splitlines()[: GEN["prompts"]]]
    else:  # outside this repository's layout: procedural word problems of the same flavour
        rows = [f"A farmer has {12 + i} cows and buys {3 * i + 1} more. How many cows now?" for i in range(8)]
    return [
        tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
        for q in rows
    ]


def bench_generation(backend: str, model_path: str) -> dict:
    from rlvr.config.schema import GeneratorConfig
    from rlvr.cpu_threads import limit_cpu_threads
    from rlvr.generator.base import SamplingConfig
    from rlvr.models.loading import load_model_and_tokenizer

    limit_cpu_threads(THREADS)
    cfg = GeneratorConfig(
        backend=backend, dtype="float32", max_model_len=512, kv_cache_space_gib=1.0, add_special_tokens=False
    )
    if backend == "vllm":
        from rlvr.generator.vllm_backend import VllmBackend

        engine = VllmBackend(model_path, cfg)
        tok = engine.tok
    else:
        from rlvr.generator.hf_backend import HfBackend

        engine = HfBackend(model_path, cfg)
        tok = load_model_and_tokenizer(model_path)[1]
    texts = prompts(tok)
    sampling = SamplingConfig(
        n=GEN["n"], temperature=GEN["temperature"], max_tokens=GEN["max_tokens"], seed=0, ignore_eos=True
    ).with_sample_seeds(len(texts))
    engine.generate(texts[:2], sampling.slice(0, 2))  # warm-up
    rates, seconds = [], []
    for _ in range(GEN["reps"]):
        t0 = time.perf_counter()
        groups = engine.generate(texts, sampling)
        dt = time.perf_counter() - t0
        n_tok = sum(len(s.response_ids) for g in groups for s in g)
        rates.append(n_tok / dt)
        seconds.append(dt)
    return {
        "tokens_per_s_median": statistics.median(rates),
        "runs_tokens_per_s": rates,
        "seconds": seconds,
        "tokens_per_call": n_tok,
        "peak_rss_gib": peak_rss_gib(),
    }


def bench_learner(model_path: str, gradient_checkpointing: bool) -> dict:
    import torch

    from rlvr.config.schema import ModelConfig
    from rlvr.cpu_threads import limit_cpu_threads
    from rlvr.models.loading import load_train_model
    from rlvr.policy_stats import policy_token_stats

    limit_cpu_threads(THREADS)
    torch.manual_seed(0)
    model = load_train_model(
        model_path, ModelConfig(path=model_path), gradient_checkpointing=gradient_checkpointing
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    b, p, r = LEARN["batch"], LEARN["prompt_tokens"], LEARN["response_tokens"]
    ids = torch.randint(0, model.config.vocab_size, (b, p + r))
    mask = torch.ones_like(ids)
    loss_mask = torch.zeros_like(ids)
    loss_mask[:, p:] = 1
    adv = torch.randn(b, 1)

    def step() -> float:
        t0 = time.perf_counter()
        stats = policy_token_stats(model, ids, mask, loss_mask, k=LEARN["top_k"])
        sel = loss_mask[:, 1:].float()
        loss = -(stats.logprobs * adv * sel).sum() / sel.sum()  # a REINFORCE-shaped loss over the response
        opt.zero_grad()
        loss.backward()
        opt.step()
        return time.perf_counter() - t0

    step()  # warm-up (also allocates AdamW's state)
    times = [step() for _ in range(LEARN["reps"])]
    return {
        "step_s_median": statistics.median(times),
        "step_s": times,
        "tokens_per_step": b * (p + r),
        "peak_rss_gib": peak_rss_gib(),
        "params": sum(t.numel() for t in model.parameters()),
    }


RUN = [
    "algorithms=simko", "verifiers=math", "model=hf", "data=gsm8k", "trainer.max_steps=2",
    "trainer.prompts_per_step=2", "generator.n_samples=4", "generator.max_tokens=128",
    "logging.progress=false", "logging.tensorboard=false",
]  # fmt: skip
MINI = [
    {"question": "Tom has 3 apples and buys 4 more. How many apples does he have now?", "answer": "3 + 4 = 7\n#### 7"},
    {"question": "A box holds 6 pens. How many pens are in 2 boxes?", "answer": "6 * 2 = 12\n#### 12"},
]  # fmt: skip


def bench_run(model_path: str) -> dict:
    """The README's real-model run, its whole process tree's memory sampled while it runs."""
    import tempfile

    from proc_tree import become_subreaper, last_json_line, measured

    become_subreaper()
    work = Path(tempfile.mkdtemp(prefix="rlvr-real-run-"))
    data = work / "gsm8k_mini.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in MINI))
    cmd = [sys.executable, "-m", "rlvr.cli", "run", *RUN, f"model.path={model_path}", f"data.source={data}",
           f"trainer.output_dir={work / 'runs'}"]  # fmt: skip
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    res = measured(cmd, env, work / "run.log", timeout_s=3000)
    summary = last_json_line(work / "run.log", "run_dir")
    if res["rc"] != 0 or summary is None:
        tail = (work / "run.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the real-model run failed (exit {res['rc']}, files kept in {work}):\n{tail}")
    shutil.rmtree(work, ignore_errors=True)  # its checkpoint is 2 GB; a measured run needs none of it
    return {
        "command": "rlvr run " + " ".join(RUN) + " model.path=<smollm2> data.source=<2 GSM8K rows>",
        **{k: res[k] for k in ("process_wall_s", "peak_rss_gib", "peak_pss_gib", "peak_processes")},
        **{k: res[k] for k in ("largest_at_pss_peak", "pss_peak_at_s", "own_peak_pss_gib", "pss_timeline")},
        "startup": summary.get("startup"),
        "trained": summary["accounting"]["trained"],
    }


def child(part: str, model_path: str) -> dict:
    """Run one measurement in a fresh process and return its JSON."""
    cmd = [sys.executable, __file__, "--part", part, "--model", model_path]
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{part} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def runs(model_path: str, n: int) -> dict:
    """The whole-run measurement `n` times: the first run's details, every run's peak and wall."""
    got = [child("run", model_path) for _ in range(n)]
    first = dict(got[0])
    if n > 1:
        first["repeats"] = {
            k: [r[k] for r in got]
            for k in ("peak_pss_gib", "peak_rss_gib", "process_wall_s", "peak_processes")
        }
    return first


def main(only: str | None, n_runs: int = 1) -> None:
    from real_model import smollm2_dir

    model_path = str(smollm2_dir())
    result: dict = {
        "model": "SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised to float32)",
        "machine": {"cpus": os.cpu_count(), "threads": THREADS, "platform": platform.platform()},
        "generation": {"setup": GEN, "prompts": "GSM8K test, chat template"},
        "learner": {"setup": LEARN, "optimizer": "AdamW, float32 master weights"},
    }
    if only == "run":
        old = json.loads(OUT.read_text()) if OUT.exists() else {}
        old["run"] = runs(model_path, n_runs)
        OUT.write_text(json.dumps(old, indent=2))
        print(json.dumps(old["run"], indent=2))
        return
    result["run"] = runs(model_path, n_runs)
    print("run", result["run"], flush=True)
    for backend in ("vllm", "hf"):
        result["generation"][backend] = child(f"gen-{backend}", model_path)
        print(backend, result["generation"][backend], flush=True)
    gen = result["generation"]
    gen["vllm_over_hf"] = gen["vllm"]["tokens_per_s_median"] / gen["hf"]["tokens_per_s_median"]
    for name, part in (("plain", "learn"), ("gradient_checkpointing", "learn-ckpt")):
        result["learner"][name] = child(part, model_path)
        print(name, result["learner"][name], flush=True)
    learn = result["learner"]
    learn["checkpointing_time_ratio"] = (
        learn["gradient_checkpointing"]["step_s_median"] / learn["plain"]["step_s_median"]
    )
    learn["checkpointing_rss_ratio"] = (
        learn["gradient_checkpointing"]["peak_rss_gib"] / learn["plain"]["peak_rss_gib"]
    )
    print(
        f"generation: vLLM {gen['vllm']['tokens_per_s_median']:.1f} tok/s, HF {gen['hf']['tokens_per_s_median']:.1f} "
        f"tok/s, ratio {gen['vllm_over_hf']:.2f}x; learner step {learn['plain']['step_s_median']:.1f} s "
        f"({learn['plain']['peak_rss_gib']:.1f} GiB), with checkpointing {learn['gradient_checkpointing']['step_s_median']:.1f} s "
        f"({learn['gradient_checkpointing']['peak_rss_gib']:.1f} GiB); whole run peak "
        f"{result['run']['peak_pss_gib']:.1f} GiB PSS, {result['run']['peak_processes']} processes"
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["gen-vllm", "gen-hf", "learn", "learn-ckpt", "run"])
    ap.add_argument("--only", choices=["run"])
    ap.add_argument("--model")
    ap.add_argument("--runs", type=int, default=1, help="whole runs to measure (their spread: run.repeats)")
    args = ap.parse_args()
    if args.part is None:
        main(args.only, args.runs)
    elif args.part == "run":
        print(json.dumps(bench_run(args.model)))
    elif args.part.startswith("gen-"):
        print(json.dumps(bench_generation(args.part.removeprefix("gen-"), args.model)))
    else:
        print(json.dumps(bench_learner(args.model, gradient_checkpointing=args.part == "learn-ckpt")))
