"""How long a replaced weight version takes to leave the object store: Ray's default free period against
the 50 ms rlvr's clusters set (`FREE_OBJECTS_ENV`, rlvr/generator/object_store.py).

Each setting runs in a fresh process with its own local Ray cluster (the period is read when the raylet
starts): a Serve generator replica (vLLM or the HF loop) on the tiny model, then 7 versions published as
the learner does (`make_room`, `ray.put` per chunk, `commit_refs`), each followed by a generate call that
loads it. Before each put it times `wait_for_release` for the version just replaced. Prints the median wait
per setting and their ratio; writes benchmarks/results/release_latency.json.

    python benchmarks/release_latency.py [--backends vllm hf]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "release_latency.json"
SETTINGS = {"ray-default": None, "rlvr-50ms": "50"}


def child(backend: str) -> None:
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    import ray

    from rlvr.config.schema import GeneratorConfig, TinyModelConfig
    from rlvr.generator import weight_store as ws
    from rlvr.generator.base import SamplingConfig
    from rlvr.generator.deployment import start_generator, stop_generator
    from rlvr.generator.object_store import bytes_used, wait_for_release
    from rlvr.models.loading import load_model_and_tokenizer
    from rlvr.models.tiny import build_tiny_model

    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
    path = str(build_tiny_model(TinyModelConfig()))
    store = ws.get_or_create_store("release-latency")
    client = start_generator(
        GeneratorConfig(backend=backend, num_cpus=0.5), path, "release-latency", app_name="rl"
    )
    model, _ = load_model_and_tokenizer(path)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    nbytes = ws.state_bytes(state)
    one = SamplingConfig(n=1, max_tokens=4, seed=0)
    waits, freed = [], []
    for version in range(1, 8):
        before = bytes_used()
        if ray.get(store.make_room.remote(version)):
            t = time.monotonic()
            freed.append(wait_for_release(before, nbytes))
            waits.append(time.monotonic() - t)
        refs = [ray.put(c) for c in ws.encode_chunks(state)]
        ray.get(store.commit_refs.remote(version, refs))
        del refs
        assert client.generate(["1+2="], one)[0][0].weight_version == version
    stop_generator("rl")
    print(json.dumps({"state_bytes": nbytes, "waits_s": waits, "freed": freed}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", nargs="+", default=["vllm", "hf"], choices=["vllm", "hf"])
    args = ap.parse_args()
    rows = []
    for backend in args.backends:
        for name, period in SETTINGS.items():
            env = {k: v for k, v in os.environ.items() if k != "RAY_free_objects_period_milliseconds"}
            if period:
                env["RAY_free_objects_period_milliseconds"] = period
            out = subprocess.run(
                [sys.executable, __file__, "--child", backend],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            res = json.loads(out.stdout.strip().splitlines()[-1])
            res |= {"backend": backend, "setting": name, "median_wait_s": statistics.median(res["waits_s"])}
            rows.append(res)
            print(f"{backend:5s} {name:12s} median wait {res['median_wait_s']:.3f} s, freed {res['freed']}")
    ratios = {
        b: next(r["median_wait_s"] for r in rows if r["backend"] == b and r["setting"] == "rlvr-50ms")
        / next(r["median_wait_s"] for r in rows if r["backend"] == b and r["setting"] == "ray-default")
        for b in args.backends
    }
    print("50 ms / Ray's default, median wait:", {b: round(v, 3) for b, v in ratios.items()})
    OUT.write_text(
        json.dumps({"cpus": os.cpu_count(), "runs": rows, "ratio_50ms_over_default": ratios}, indent=2)
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
