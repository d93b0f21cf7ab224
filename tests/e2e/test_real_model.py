"""A real pretrained model end to end: SmolLM2-135M-Instruct imported from GGUF, on GSM8K, on CPU.

The first test needs no Ray: vLLM loads the imported folder and greedily answers a chat-templated GSM8K
question, token for token what transformers generates. The second is a 2-step SimKO run through every
real component (Serve + vLLM, verifier actors, Ray Train + DeepSpeed) and checks the HF checkpoint.
Sized for CI on 2 cores: 4 GSM8K rows, 2 prompts x 2 samples per step, 64 new tokens.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rlvr.config.schema import ModelConfig

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
MAX_TOKENS = 64


@pytest.fixture(scope="module")
def smollm2() -> Path:
    from real_model import smollm2_dir

    return smollm2_dir()


@pytest.fixture(scope="module")
def gsm8k_rows(shared_dir, tmp_path_factory) -> Path:
    rows = (shared_dir / "datasets" / "math" / "test_gsm8k.jsonl").read_text().splitlines()[:4]
    out = tmp_path_factory.mktemp("gsm8k") / "gsm8k4.jsonl"
    out.write_text("\n".join(rows) + "\n")
    return out


def test_vllm_greedy_with_chat_template_matches_transformers(smollm2, gsm8k_rows):
    import torch
    from vllm import LLM, SamplingParams

    from rlvr.models.loading import load_model_and_tokenizer

    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    model, tok = load_model_and_tokenizer(str(smollm2), model_cfg=ModelConfig(path=str(smollm2)))
    question = json.loads(gsm8k_rows.read_text().splitlines()[0])["question"]
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]

    llm = LLM(
        model=str(smollm2),
        dtype="float32",
        max_model_len=512,
        kv_cache_memory_bytes=2**28,
        seed=0,
        enforce_eager=True,
    )
    try:
        out = llm.generate(
            [{"prompt_token_ids": prompt_ids}],
            SamplingParams(temperature=0.0, max_tokens=MAX_TOKENS, logprobs=0),
            use_tqdm=False,
        )[0].outputs[0]
    finally:
        del llm
    text, ids = out.text, list(out.token_ids)
    assert len(ids) > 8 and text.strip()
    assert "<|im_start|>" not in text  # it answered as the assistant instead of continuing the template

    with torch.no_grad():
        hf = model.generate(
            input_ids=torch.tensor([prompt_ids]),
            attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
            do_sample=False,
            max_new_tokens=16,
            pad_token_id=tok.pad_token_id,
        )[0, len(prompt_ids) :].tolist()
    assert ids[: len(hf)] == hf, (tok.decode(ids[:16]), tok.decode(hf))


def test_simko_run_on_gsm8k(ray_cluster, smollm2, gsm8k_rows, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    import rlvr
    from rlvr.models.tokenizer import check_roundtrip, load_tokenizer

    summary = rlvr.run(
        [
            "algorithms=simko",
            "verifiers=math",
            f"model.path={smollm2}",
            "model.dtype=float32",
            "data=gsm8k",
            f"data.source={gsm8k_rows}",
            "data.chat_template=true",
            "trainer.max_steps=2",
            "trainer.mode=sync",  # step 1 must be sampled by the weights step 0 produced
            "trainer.prompts_per_step=2",
            "generator.n_samples=2",
            f"generator.max_tokens={MAX_TOKENS}",
            "generator.max_model_len=512",
            "learner.lr=1e-6",
            "learner.mini_batch_size=4",
            "learner.micro_batch_size=2",
            "verifiers.pool_size=1",
            "logging.progress=false",
            f"trainer.output_dir={tmp_path}",
        ]
    )
    acc = summary["accounting"]
    assert acc["balanced"] and acc["trained"] == 2 * 2 * 2, acc
    stats = summary["verifier_stats"]["math"]
    assert stats["ok"] + stats["no_answer"] == acc["generated"] and stats["errors"] == stats["timeouts"] == 0

    run_dir = Path(summary["run_dir"])
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert samples and all(s["prompt"].endswith("<|im_start|>assistant\n") for s in samples)
    golds = {
        json.loads(r)["answer"].rsplit("####", 1)[1].strip() for r in gsm8k_rows.read_text().splitlines()
    }
    assert {s["gold"] for s in samples} <= golds  # the verifier was given the "#### N" number
    assert {s["weight_version"] for s in samples if s["step"] == 1} == {1}  # new weights reached vLLM

    hf = Path(summary["checkpoint"]) / "hf"
    model = AutoModelForCausalLM.from_pretrained(hf)
    assert model.config.model_type == "llama" and "quantization_config" not in model.config.to_dict()
    tok = load_tokenizer(ModelConfig(path=str(hf)), str(hf))
    check_roundtrip(tok, [samples[0]["prompt"]])
    with torch.no_grad():
        logits = model(**tok(samples[0]["prompt"], return_tensors="pt", add_special_tokens=False)).logits
    assert torch.isfinite(logits).all()
