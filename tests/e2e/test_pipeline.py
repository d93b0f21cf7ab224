"""The whole pipeline on real components: Serve + vLLM generators, verifier actors, Ray Train + DeepSpeed
learners. Short runs on the tiny model; one shared Ray cluster."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rlvr.config import load_config
from rlvr.pipeline.run import run_training

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SMALL = [
    "trainer.max_steps=3",
    "trainer.prompts_per_step=4",
    "generator.n_samples=4",
    "learner.micro_batch_size=8",
    "learner.mini_batch_size=16",
    "logging.progress=false",
    "generator.backend=vllm",  # auto picks the transformers loop for the tiny model; these runs test vLLM
]


def _run(tmp: Path, *extra: str) -> dict:
    cfg = load_config([*SMALL, f"trainer.output_dir={tmp}", *extra])
    return run_training(cfg)


def _assert_accounting(summary: dict) -> None:
    acc = summary["accounting"]
    assert acc["balanced"], acc
    assert acc["double_trained"] == 0, acc
    assert acc["trained"] > 0


@pytest.fixture(scope="module")
def sync_run(ray_cluster, tmp_path_factory) -> dict:
    return _run(
        tmp_path_factory.mktemp("sync"),
        "algorithms=simko",
        "trainer.mode=sync",
        "generator.num_cpus=1",  # sync mode: generator and learner take turns on both CPUs (2 threads each)
        "learner.cpus_per_worker=1",
        "trainer.save_every=2",
        "trainer.eval_every=2",
        "eval.n=4",
        "eval.max_prompts=4",
    )


def test_sync_run_end_to_end(sync_run):
    _assert_accounting(sync_run)
    run_dir = Path(sync_run["run_dir"])
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = {r["step"] for r in rows}
    assert steps == {0, 1, 2}
    learner_rows = [r for r in rows if "loss" in r]
    assert len(learner_rows) == 3
    assert all("lambda/rank1" in r and "entropy" in r and "rank1_frac" in r for r in learner_rows)
    assert all(r["staleness_max"] == 0 for r in learner_rows)  # sync: generated on the newest weights
    # The shared count reached the real replica and worker (Ray's own OMP_NUM_THREADS=1 did not win).
    # Local cluster: every core of the machine (as Ray counts them), at least the 2 the two reserved.
    from ray._private.utils import get_num_cpus

    shared = int(os.environ.get("OMP_NUM_THREADS") or max(2, int(get_num_cpus())))
    assert sync_run["cpu_threads"] == {"generator": shared, "learner": [shared]}, sync_run["cpu_threads"]
    assert (run_dir / "config.yaml").exists() and (run_dir / "tensorboard").is_dir()
    assert sync_run["checkpoint"] and Path(sync_run["checkpoint"]).exists()
    assert sync_run["accounting"]["trained"] == 3 * 16
    evals = [r for r in rows if "eval/pass@1" in r]
    assert [r["step"] for r in evals] == [1]  # trainer.eval_every=2 over 3 steps
    assert evals[0]["eval/pass@4"] >= evals[0]["eval/pass@1"]


def test_async_run_and_accounting(ray_cluster, tmp_path):
    summary = _run(tmp_path, "algorithms=grpo", "trainer.mode=async", "trainer.max_staleness=1")
    _assert_accounting(summary)
    rows = [json.loads(x) for x in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    stale = [r["staleness_max"] for r in rows if "staleness_max" in r]
    assert stale and max(stale) <= 1
    own = int(os.environ.get("OMP_NUM_THREADS") or 1)  # async: floor of each one's 0.5 CPUs, at least 1
    assert summary["cpu_threads"] == {"generator": own, "learner": [own]}, summary["cpu_threads"]


def test_filter_zero_advantage_counts(ray_cluster, tmp_path):
    summary = _run(tmp_path, "trainer.filter_zero_advantage=true", "trainer.max_steps=2")
    _assert_accounting(summary)


def test_resume_continues_from_checkpoint(sync_run, tmp_path):
    ckpt = sync_run["checkpoint"]
    summary = _run(
        tmp_path, "algorithms=simko", "trainer.mode=sync", "trainer.max_steps=5", f"trainer.resume={ckpt}"
    )
    _assert_accounting(summary)
    rows = [json.loads(x) for x in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    trained_steps = sorted({r["step"] for r in rows if "loss" in r})
    assert trained_steps == [3, 4]  # the remaining steps, not zero and not from scratch
    assert summary["accounting"]["trained"] == 2 * 16


def test_eval_on_checkpoint(sync_run, tmp_path):
    from rlvr.pipeline.evaluate import run_eval

    out = tmp_path / "eval.json"
    cfg = load_config(
        [f"model={sync_run['checkpoint']}", "eval.n=8", "eval.max_prompts=4", f"eval.output={out}"]
    )
    result = run_eval(cfg)
    assert set(result["pass_at_k"]) == {"1", "2", "4", "8"}
    curve = [result["pass_at_k"][k] for k in ("1", "2", "4", "8")]
    assert curve == sorted(curve)  # pass@K is non-decreasing in K
    assert abs(result["pass_at_k"]["1"] - result["mean_at_n"]) < 1e-9
    assert out.exists() and Path(result["png"]).exists()


def test_multirun_two_algorithms(ray_cluster, tmp_path):
    from rlvr.config import expand_sweep
    from rlvr.pipeline.multirun import run_multirun

    combos = expand_sweep(
        ["algorithms=grpo,nsr", *SMALL, "trainer.max_steps=2", f"trainer.output_dir={tmp_path}"]
    )
    root = run_multirun([(c, load_config(c)) for c in combos])
    rows = json.loads((root / "comparison.json").read_text())
    assert [r["overrides"].split()[0] for r in rows] == ["algorithms=grpo", "algorithms=nsr"]
    assert (root / "comparison.md").exists() and (root / "comparison.png").exists()


def test_lora_bf16_run_publishes_merged_weights_and_saves_both_folders(ray_cluster, tmp_path):
    """learner.lora + bf16 on CPU through the whole pipeline: the generator loads the merged weights every
    step (samples carry the new versions), the checkpoint holds the adapter and a merged HF model."""
    from transformers import AutoModelForCausalLM

    summary = _run(
        tmp_path,
        "trainer.mode=sync",
        "trainer.max_steps=2",
        "learner.lora.enabled=true",
        "learner.lora.r=4",
        "learner.bf16=true",
        "learner.lr=1e-3",
    )
    _assert_accounting(summary)
    ckpt = Path(summary["checkpoint"])
    assert (ckpt / "adapter" / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(str(ckpt / "hf"))
    assert not any("lora" in k for k in merged.state_dict())
    rows = [json.loads(x) for x in (Path(summary["run_dir"]) / "samples.jsonl").read_text().splitlines()]
    assert {r["weight_version"] for r in rows if r["step"] == 1} == {1}  # step 1 sampled merged weights v1
