"""Generation throughput (vLLM Serve deployment with 1 and 2 replicas vs the transformers backend) and
weight-sync latency.

Same prompts, same sampling (fixed-length: ignore_eos, per-sample seeds), same run. Weight sync is
measured end to end: `publish_weights`, then the first generate call that pulls and loads the new
version, minus a plain generate call of the same size; for the 0.5B bf16 model both publish paths side by
side: the store's own copy (ray.put + WeightStore.stage/commit per chunk) and lent chunks (ray.put +
commit_refs, what the learner does). `--only-sync` runs just that comparison and merges it in.
Models: the tiny arith model and a random-init 0.5B-parameter Qwen2 (Qwen2.5-0.5B shapes, built from
config, nothing downloaded), synced in bfloat16 (into a bf16 engine) and in float32.
Writes benchmarks/results/generation_throughput.json.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import ray  # noqa: E402
import torch  # noqa: E402

from rlvr.config.schema import GeneratorConfig, TinyModelConfig  # noqa: E402
from rlvr.data.arith import generate as arith  # noqa: E402
from rlvr.generator.base import SamplingConfig  # noqa: E402
from rlvr.generator.deployment import start_generator, stop_generator  # noqa: E402
from rlvr.generator.hf_backend import HfBackend  # noqa: E402
from rlvr.generator.weight_store import get_or_create_store, publish_weights  # noqa: E402
from rlvr.models.tiny import build_tiny_model, build_tokenizer  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "generation_throughput.json"
PROMPTS = [p.text for p in arith(32, seed=11)]
SAMPLING = SamplingConfig(n=8, temperature=1.0, max_tokens=32, seed=0, ignore_eos=True)


def tokens(out) -> int:
    return sum(len(s.response_ids) for g in out for s in g)


def throughput(fn, reps: int = 3) -> dict:
    fn()  # warm-up
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        n = tokens(fn())
        rates.append(n / (time.perf_counter() - t0))
    return {"tokens_per_s_median": statistics.median(rates), "runs": rates, "tokens_per_call": n}


def sync_latency(client, store, state: dict, first_version: int, reps: int = 3, lend: bool = False) -> dict:
    one = SamplingConfig(n=1, temperature=0.0, max_tokens=4)
    client.generate(PROMPTS[:1], one)
    plain, publish, total = [], [], []
    for k in range(reps):
        t0 = time.perf_counter()
        client.generate(PROMPTS[:1], one)
        plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        publish_weights(store, first_version + k, state, timeout_s=600, lend=lend)
        t1 = time.perf_counter()
        out = client.generate(PROMPTS[:1], one)
        t2 = time.perf_counter()
        assert out[0][0].weight_version == first_version + k
        publish.append(t1 - t0)
        total.append(t2 - t0)
    base = statistics.median(plain)
    return {
        "publish_s_median": statistics.median(publish),
        "push_to_first_sample_s_median": statistics.median(total),
        "plain_generate_s_median": base,
        "sync_latency_s_median": statistics.median(total) - base,
    }


def random_qwen2_05b(folder: Path, dtype: torch.dtype) -> tuple[str, int, dict]:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    conf = Qwen2Config(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=512,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(conf).to(dtype)
    model.save_pretrained(folder, safe_serialization=True)
    build_tokenizer(512).save_pretrained(folder)
    return str(folder), sum(p.numel() for p in model.parameters()), model.state_dict()


def sync_05b(cfg: GeneratorConfig, dtype: torch.dtype, name: str) -> dict:
    with tempfile.TemporaryDirectory() as d:
        path, n_params, state = random_qwen2_05b(Path(d), dtype)
        store = get_or_create_store(f"bench-store-{name}")
        big_cfg = cfg.model_copy(
            update={
                "kv_cache_space_gib": 1.0,
                "max_model_len": 512,
                "dtype": str(dtype).removeprefix("torch."),
            }
        )
        big = start_generator(big_cfg, path, f"bench-store-{name}", app_name=f"bench-gen-{name}")
        try:
            # Tied tensors are sent once (weight_chunks dedupes by storage): count each storage once too.
            unique = {t.untyped_storage().data_ptr(): t for t in state.values()}
            nbytes = sum(t.numel() * t.element_size() for t in unique.values())
            # Side by side: the store's own copy per chunk (lend=False) vs chunks lent by the publisher. vLLM's
            # CPU reload gets faster over its first few loads (the allocator starts reusing freed pages), so
            # warm up first, then alternate the two paths.
            res: dict = {"params": n_params, "dtype": str(dtype), "bytes_sent": nbytes, "warmup_loads": 3}
            sync_latency(big, store, state, 1, reps=3, lend=True)  # warm-up: versions 1-3, not reported
            version = 4
            runs: dict[str, list[dict]] = {"store_copy": [], "lent": []}
            for _ in range(3):
                for mode in runs:
                    runs[mode].append(sync_latency(big, store, state, version, reps=1, lend=mode == "lent"))
                    version += 1
            for mode, rs in runs.items():
                res[mode] = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
                res[mode]["sync_latency_s_runs"] = [r["sync_latency_s_median"] for r in rs]
            res["lent_over_copy_publish_s"] = (
                res["lent"]["publish_s_median"] / res["store_copy"]["publish_s_median"]
            )
            res["lent_over_copy_sync_s"] = (
                res["lent"]["sync_latency_s_median"] / res["store_copy"]["sync_latency_s_median"]
            )
            return res
        finally:
            stop_generator(f"bench-gen-{name}")
            ray.kill(store)


def main(only_sync: bool = False) -> None:
    from rlvr.generator.object_store import FREE_OBJECTS_ENV

    os.environ.update(FREE_OBJECTS_ENV)  # as a cluster rlvr starts: released objects are freed within 50 ms
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=4 * 2**30,
    )
    result: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()}}
    if only_sync:  # only the 0.5B bf16 sync rows, merged into the last full results
        result = json.loads(OUT.read_text()) if OUT.exists() else result
        try:
            cfg = GeneratorConfig(backend="vllm", num_cpus=2.0, startup_timeout_s=300, request_timeout_s=600)
            result["weight_sync_05b"] = sync_05b(cfg, torch.bfloat16, "05b-bf16")
            print("0.5B bf16 sync:", result["weight_sync_05b"])
        finally:
            ray.shutdown()
        OUT.write_text(json.dumps(result, indent=2))
        return
    try:
        tiny = str(build_tiny_model(TinyModelConfig()))
        # Both engines get the 2 cores: the replica runs floor(num_cpus) threads, HF in-process uses torch's 2.
        cfg = GeneratorConfig(backend="vllm", num_cpus=2.0, startup_timeout_s=300, request_timeout_s=600)
        store = get_or_create_store("bench-store")
        client = start_generator(cfg, tiny, "bench-store", app_name="bench-gen")
        hf = HfBackend(tiny, GeneratorConfig(backend="hf"))
        vllm_tp = throughput(lambda: client.generate(PROMPTS, SAMPLING))
        hf_tp = throughput(lambda: hf.generate(PROMPTS, SAMPLING))
        ratio = vllm_tp["tokens_per_s_median"] / hf_tp["tokens_per_s_median"]
        print(
            f"tiny: vLLM deployment {vllm_tp['tokens_per_s_median']:.0f} tok/s, HF {hf_tp['tokens_per_s_median']:.0f} tok/s, ratio {ratio:.2f}x"
        )
        result["throughput_tiny"] = {"prompts": len(PROMPTS), "sampling": {**vars(SAMPLING), "seeds": "per sample"},
                                     "vllm_serve": vllm_tp, "hf_in_process": hf_tp, "vllm_over_hf": ratio}  # fmt: skip
        result["weight_sync_tiny"] = sync_latency(client, store, hf.model.state_dict(), 1)
        print("tiny sync:", result["weight_sync_tiny"])
        stop_generator("bench-gen")
        # 1 vs 2 replicas on the same 2 cores (one thread each): a step's prompts split in two slices
        half = cfg.model_copy(update={"num_cpus": 1.0})
        replicas = {}
        for k in (1, 2):
            c = start_generator(
                half.model_copy(update={"num_replicas": k}), tiny, "bench-store", app_name=f"bench-r{k}"
            )
            replicas[f"replicas_{k}"] = throughput(lambda c=c: c.generate(PROMPTS, SAMPLING))
            stop_generator(f"bench-r{k}")
        replicas["two_over_one"] = (
            replicas["replicas_2"]["tokens_per_s_median"] / replicas["replicas_1"]["tokens_per_s_median"]
        )
        result["throughput_tiny_replicas"] = {"num_cpus_per_replica": 1.0, **replicas}
        print(
            "replicas:",
            {k: v if isinstance(v, float) else v["tokens_per_s_median"] for k, v in replicas.items()},
        )
        result["weight_sync_05b"] = sync_05b(cfg, torch.bfloat16, "05b-bf16")
        print("0.5B bf16 sync:", result["weight_sync_05b"])
        result["weight_sync_05b_fp32"] = sync_05b(cfg, torch.float32, "05b-fp32")
        print("0.5B fp32 sync:", result["weight_sync_05b_fp32"])
    finally:
        ray.shutdown()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(only_sync="--only-sync" in sys.argv)
