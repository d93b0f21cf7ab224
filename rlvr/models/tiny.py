"""The offline tiny Qwen2 policy: byte-level tokenizer, random init, short SFT warm start.

In: `TinyModelConfig`. Out: a standard Hugging Face folder (config, safetensors, tokenizer) that both
transformers' Auto* classes and vLLM load. The folder is cached per config hash and written atomically
(temp dir, then rename) so a crash never leaves half a model. Must never download anything.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import importlib
import logging
import os
import random
import time
from pathlib import Path
from typing import Any

from rlvr.config.schema import TinyModelConfig
from rlvr.data.procedural import TASKS
from rlvr.errors import RlvrUserError
from rlvr.models.atomic import atomic_folder
from rlvr.types import Prompt

log = logging.getLogger(__name__)
BUILD_VERSION = "1"  # bump when the recipe changes so stale caches are not reused
SPECIALS = ("<pad>", "<s>", "</s>")


def cache_root() -> Path:
    return Path(os.environ.get("RLVR_CACHE") or Path.home() / ".cache" / "rlvr") / "tiny"


def config_hash(cfg: TinyModelConfig) -> str:
    # sft_noise joins the key only when set, so models cached before it existed keep their folders.
    dump = cfg.model_dump_json(exclude={"sft_noise"} if cfg.sft_noise == 0 else None)
    return hashlib.sha256((BUILD_VERSION + dump).encode()).hexdigest()[:12]


def build_tokenizer(max_len: int) -> Any:
    """Byte-level BPE with no merges (one token per byte): handles any text, needs no training."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    # Prompts start with <s> in every backend, so HF and vLLM see the same ids.
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        padding_side="left",
        model_max_length=max_len,
    )


def task_prompts(task: str, n: int, seed: int) -> list[Prompt]:
    """Dispatch to `rlvr.data.<task>.generate(n, seed)`."""
    if task not in TASKS:
        raise RlvrUserError(f"model.tiny.task: unknown task '{task}'; choose one of {', '.join(TASKS)}")
    try:
        mod = importlib.import_module(f"rlvr.data.{task}")
    except ModuleNotFoundError as e:
        raise RlvrUserError(f"model.tiny.task: task '{task}' is not available ({e.name} missing)") from e
    return list(mod.generate(n, seed))


def sft_target(task: str, p: Prompt) -> str | None:
    """The warm-start answer, or None when the task exposes no solution to imitate."""
    mod = importlib.import_module(f"rlvr.data.{task}")
    if hasattr(mod, "sft_target"):
        return mod.sft_target(p)
    sol = p.metadata.get("solution")
    if task == "knights_knaves":
        return f"<answer>{sol if sol is not None else p.ground_truth}</answer>"
    if task == "countdown" and sol is not None:  # the ground truth is a target, not an expression
        return f"<answer>{sol}</answer>"
    return None


NEAR_MISSES = (-10, -1, 1, 10)  # carry and last-digit slips


def noisy_target(task: str, p: Prompt, rng: random.Random) -> str | None:
    """A near miss for `p`: the task's own `sft_slip` where it has one (None: no slip for this problem), else
    the warm-start answer with its integer ground truth off by 1 or 10."""
    mod = importlib.import_module(f"rlvr.data.{task}")
    if hasattr(mod, "sft_slip"):
        return mod.sft_slip(p, rng)
    try:
        truth = int(p.ground_truth)
    except ValueError:
        raise RlvrUserError(
            f"model.tiny.sft_noise: task '{task}' has no integer answers to replace with near misses"
        ) from None
    wrong = rng.choice([truth + d for d in NEAR_MISSES if (truth + d >= 0) == (truth >= 0)])  # keep the sign
    target = sft_target(task, dataclasses.replace(p, ground_truth=str(wrong)))
    if target == sft_target(task, p):
        raise RlvrUserError(
            f"model.tiny.sft_noise: task '{task}' does not write its answer from the ground truth"
        )
    return target


def build_model(cfg: TinyModelConfig, vocab_size: int) -> Any:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if cfg.hidden_size % cfg.num_heads:
        raise RlvrUserError("model.tiny.hidden_size must be divisible by model.tiny.num_heads")
    if cfg.hidden_size // cfg.num_heads not in (64, 80, 96, 112, 128, 256):
        raise RlvrUserError("model.tiny: hidden_size/num_heads must be a head size vLLM supports (64..256)")
    conf = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(cfg.seed)
    return Qwen2ForCausalLM(conf)


def sft_pairs(cfg: TinyModelConfig) -> list[tuple[str, str]]:
    """(question, answer) pairs of the warm start; a `sft_noise` fraction of answers are near misses."""
    prompts = task_prompts(cfg.task, max(cfg.sft_steps * cfg.sft_batch_size, 1), seed=cfg.seed + 10_000)
    noise = random.Random(cfg.seed + 20_000)  # its own stream: sft_noise=0 leaves the pairs as they were
    pairs = []
    for p in prompts:
        slip = noise.random() < cfg.sft_noise
        # A problem with no near miss keeps its right answer.
        if (t := slip and noisy_target(cfg.task, p, noise) or sft_target(cfg.task, p)) is not None:
            pairs.append((p.text, t))
    return pairs


def sft(model: Any, tok: Any, cfg: TinyModelConfig) -> dict[str, float]:
    """Teacher-forced cross-entropy on the answer tokens only."""
    import torch

    pairs = sft_pairs(cfg)
    if not pairs or cfg.sft_steps == 0:
        log.warning("tiny model: no SFT for task %s (no solutions exposed or sft_steps=0)", cfg.task)
        return {"sft_steps": 0}
    rows = []
    for q, a in pairs:
        q_ids = tok(q)["input_ids"]
        a_ids = tok(a, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        ids = (q_ids + a_ids)[: cfg.max_position_embeddings]
        rows.append((ids, [-100] * len(q_ids) + a_ids))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.sft_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20) * (1 - s / cfg.sft_steps))
    rng = random.Random(cfg.seed)
    model.train()
    t0, loss_v = time.perf_counter(), float("nan")
    for _step in range(cfg.sft_steps):
        batch = rng.sample(rows, min(cfg.sft_batch_size, len(rows)))
        width = max(len(ids) for ids, _ in batch)
        ids = torch.tensor([r[0] + [0] * (width - len(r[0])) for r in batch])
        labels = torch.tensor([r[1][: len(r[0])] + [-100] * (width - len(r[0])) for r in batch])
        mask = (torch.arange(width)[None] < torch.tensor([len(r[0]) for r in batch])[:, None]).long()
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_v = loss.item()
    model.eval()
    return {"sft_steps": cfg.sft_steps, "sft_final_loss": loss_v, "sft_seconds": time.perf_counter() - t0}


def build_tiny_model(cfg: TinyModelConfig, out: Path | None = None, force: bool = False) -> Path:
    """Build (or reuse) the tiny model folder and return its path."""
    target = Path(out) if out is not None else cache_root() / f"{cfg.task}-{config_hash(cfg)}"
    done = (target / "rlvr_tiny.json").exists
    if done() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # One builder per folder: concurrent runs wait for the first build instead of repeating it.
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done() and not force:
            return target
        return _build(cfg, target)


def _build(cfg: TinyModelConfig, target: Path) -> Path:
    import json

    import torch

    tok = build_tokenizer(cfg.max_position_embeddings)
    vocab = ((len(tok) + 63) // 64) * 64  # pad the embedding table to a friendly size
    model = build_model(cfg, vocab)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: 1 thread is ~8x faster than 2 on a busy 2-core machine
    try:
        stats = sft(model, tok, cfg)
    finally:
        torch.set_num_threads(threads)
    with atomic_folder(target) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        meta = {"build_version": BUILD_VERSION, "config": cfg.model_dump(), **stats}
        (tmp / "rlvr_tiny.json").write_text(json.dumps(meta, indent=2))
    log.info("tiny model written to %s (%s)", target, stats)
    return target
