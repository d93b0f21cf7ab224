"""One TRL GRPOTrainer run for `benchmarks/vs_trl.py`, executed by the TRL virtual environment's python.

In: a JSON spec file (model folder, prompts JSONL, batch shape, TRL settings, `chat`: the prompts as user
turns) given as argv[1]. Out: a JSON result file (argv[2]) with the wall-clock time of every optimizer step,
TRL's per-step log history and the model's parameter count. Must never import rlvr: TRL lives in its own venv (other transformers pins), so the
reward and the tokenizer are rebuilt here from plain files.
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any

T_START = time.time()  # before the heavy imports: the parent's wall time includes them too

import torch  # noqa: E402
from datasets import load_dataset  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    TrainerCallback,
)
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def boxed_int_reward(completions: list[Any], answer: list[str], **_: object) -> list[float]:
    """1.0 when the first `\\boxed{...}` holds the gold integer (rlvr's math verifier agrees on integer
    answers), else 0.0. A conversational prompt's completion is a list of messages."""
    out = []
    for completion, gold in zip(completions, answer, strict=True):
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        m = BOXED.search(text)
        try:
            ok = m is not None and int(m.group(1).strip()) == int(gold)
        except ValueError:
            ok = False
        out.append(float(ok))
    return out


class StepClock(TrainerCallback):
    """Wall-clock time at the end of every optimizer step (TRL's log history carries no timestamps)."""

    def __init__(self) -> None:
        self.train_begin = 0.0
        self.step_end: list[float] = []

    def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.train_begin = time.time()

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.step_end.append(time.time())


def load_tokenizer(model_dir: str) -> PreTrainedTokenizerFast:
    """The byte tokenizer from its tokenizer.json: transformers' Auto* may substitute Qwen2Tokenizer for a
    qwen2 model, which would change the ids. A round-trip check proves the file was read as written."""
    tok = PreTrainedTokenizerFast(
        tokenizer_file=f"{model_dir}/tokenizer.json",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        padding_side="left",
    )
    probe = "37+58=\\boxed{95}"
    ids = tok(probe)["input_ids"]
    if ids[0] != tok.bos_token_id or tok.decode(ids, skip_special_tokens=True) != probe:
        raise SystemExit(f"tokenizer round-trip failed: {ids} -> {tok.decode(ids)!r}")
    return tok


def load_chat_tokenizer(model_dir: str) -> PreTrainedTokenizerBase:
    """A real model's own tokenizer (a llama-family BPE, which Auto* keeps), checked to round-trip and to
    carry the chat template TRL renders conversational prompts with."""
    tok = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    probe = "What is 37 + 58? Put the final answer in \\boxed{}."
    if tok.decode(tok(probe, add_special_tokens=False)["input_ids"]) != probe or not tok.chat_template:
        raise SystemExit(f"{model_dir}: tokenizer does not round-trip or has no chat template")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def main() -> None:
    spec = json.loads(open(sys.argv[1]).read())
    torch.manual_seed(spec["seed"])
    if spec.get("torch_threads"):
        torch.set_num_threads(spec["torch_threads"])
    chat = bool(spec.get("chat"))
    tok = load_chat_tokenizer(spec["model_dir"]) if chat else load_tokenizer(spec["model_dir"])
    attn = {"attn_implementation": spec["attn_implementation"]} if spec.get("attn_implementation") else {}
    model = AutoModelForCausalLM.from_pretrained(spec["model_dir"], dtype=torch.float32, **attn)
    data = load_dataset("json", data_files=spec["data_file"], split="train")
    if chat:  # TRL renders a list of messages with the tokenizer's chat template (add_generation_prompt)
        data = data.map(lambda row: {"prompt": [{"role": "user", "content": row["prompt"]}]})
    batch = spec["prompts_per_step"] * spec["n_samples"]
    kwargs = dict(
        output_dir=spec["output_dir"],
        max_steps=spec["steps"],
        per_device_train_batch_size=batch,  # one optimizer step per generation batch, like rlvr's
        gradient_accumulation_steps=1,
        num_generations=spec["n_samples"],
        max_completion_length=spec["max_tokens"],
        temperature=1.0,
        learning_rate=spec["lr"],
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        beta=0.0,
        epsilon=0.2,
        num_iterations=1,
        loss_type="dapo",  # token mean over the batch: rlvr's loss_agg=token_mean
        scale_rewards="group",  # std-normalised group advantages: rlvr's grpo norm_std=true
        bf16=spec["bf16"],
        gradient_checkpointing=spec["gradient_checkpointing"],
        use_cpu=True,
        use_vllm=False,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=spec["seed"],
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    args = GRPOConfig(**kwargs)
    clock = StepClock()
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=boxed_int_reward,
        args=args,
        train_dataset=data,
        processing_class=tok,
        callbacks=[clock],
    )
    trainer.train()
    result = {
        "t_start": T_START,
        "train_begin": clock.train_begin,
        "step_end": clock.step_end,
        "log_history": trainer.state.log_history,
        "grpo_config": kwargs,
        "num_params": sum(p.numel() for p in model.parameters()),
        "torch_threads": torch.get_num_threads(),
        "versions": {
            "torch": torch.__version__,
            "trl": __import__("trl").__version__,
            "transformers": __import__("transformers").__version__,
        },
    }
    with open(sys.argv[2], "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
