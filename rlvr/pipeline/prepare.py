"""Everything a run or an eval checks before it starts a single process.

In: a validated `RlvrConfig`. Out: a `Prepared` (local model path, tokenizer, prompts) and a config with
its derived values filled in: model.dtype=auto is resolved (rlvr/models/dtype.py), the generator's dtype
follows model.dtype, max_model_len is clamped to the model's context, vLLM's CPU KV cache is sized from the
longest prompt, chat-templated prompts are tokenized without extra special tokens. Every problem here is a one-line `RlvrUserError` naming the key, raised
before any run directory or component exists (`rlvr run` starts Ray meanwhile and stops it again).
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from typing import Any

from rlvr.config.schema import KV_MIN_GIB, RlvrConfig
from rlvr.data.loader import load_prompts
from rlvr.errors import RlvrUserError
from rlvr.generator.base import HF_ENGINE_KWARGS, auto_backend, vllm_installed
from rlvr.models.dtype import auto_dtype, cpu_has_native_bf16
from rlvr.models.loading import kv_bytes_per_token, model_max_len, resolve_model_path
from rlvr.models.tokenizer import check_roundtrip, load_tokenizer
from rlvr.types import Prompt

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    model_path: str
    tokenizer: Any
    prompts: list[Prompt]


def kv_cache_gib(cfg: RlvrConfig, model_path: str, longest_prompt: int | None = None) -> float:
    """Twice the KV cache one step's sequences need on one replica (room for a top-up or an evaluation
    joining the batch), at least KV_MIN_GIB; KV_MIN_GIB when the config is unreadable. A sequence is the
    longest prompt plus `max_tokens` (`max_model_len` when the prompts were not counted). vLLM-CPU allocates
    and touches the whole cache at start, so a guess is resident memory wasted; a cache that is too small
    only queues requests (vLLM schedules within it)."""
    import math

    gen = cfg.generator
    per_token = kv_bytes_per_token(model_path, str(gen.dtype))
    if per_token is None:
        return KV_MIN_GIB
    seq = (
        gen.max_model_len
        if longest_prompt is None
        else min(gen.max_model_len, longest_prompt + gen.max_tokens)
    )
    seqs = math.ceil(cfg.trainer.prompts_per_step / gen.num_replicas) * gen.n_samples
    need = 2 * seqs * seq * per_token / 2**30
    one_full = 1.05 * gen.max_model_len * per_token / 2**30  # vLLM refuses to start below one full sequence
    return round(max(KV_MIN_GIB, need, one_full), 3)


def local_cpus(cfg: RlvrConfig) -> int:
    """The CPUs of a local cluster: Ray's count of this machine's (cgroup limits included), capped by
    `cluster.num_cpus`."""
    from ray._private.utils import get_num_cpus

    n = max(1, int(get_num_cpus()))
    return min(n, max(1, int(cfg.cluster.num_cpus))) if cfg.cluster.num_cpus else n


def derive(cfg: RlvrConfig, model_path: str) -> None:
    """Fill in the config values that follow from others (in place)."""
    gen = cfg.generator
    uses_gpu = cfg.learner.use_gpu or gen.num_gpus > 0
    if cfg.model.dtype == "auto":
        cfg.model.dtype = auto_dtype(uses_gpu)
        log.info("model.dtype=auto: %s", cfg.model.dtype)
    # auto never picks an emulated bf16; learner.bf16=true still can, on top of any model.dtype.
    if (cfg.model.dtype == "bfloat16" or cfg.learner.bf16) and not uses_gpu and not cpu_has_native_bf16():
        key = "model.dtype=bfloat16" if cfg.model.dtype == "bfloat16" else "learner.bf16=true"
        warnings.warn(
            f"{key}: this CPU has no native bf16 (oneDNN emulates it), so training and generation run many "
            "times slower than in float32; model.dtype=auto picks float32 here",
            stacklevel=2,
        )
    if cfg.model.dtype == "float16":
        warnings.warn(
            "model.dtype=float16: the generator and the reference model use it, the learner trains in float32 "
            "(float16 training needs loss scaling, which rlvr does not run; bfloat16 trains)",
            stacklevel=2,
        )
    if gen.dtype in ("auto", None, ""):
        gen.dtype = cfg.model.dtype
    # Engine arguments only vLLM reads (the HF loop takes just the tokenizer and trust_remote_code).
    vllm_only = sorted(set(gen.engine_kwargs) - HF_ENGINE_KWARGS)
    if gen.backend == "auto":
        gen.backend = "vllm" if vllm_only and vllm_installed() else auto_backend(model_path)
        log.info("generator.backend=auto: %s", gen.backend)
    if gen.backend == "hf" and vllm_only:
        raise RlvrUserError(
            f"generator.engine_kwargs.{vllm_only[0]}: only the vLLM backend reads it, and generator.backend "
            "is hf (set generator.backend=vllm, or drop the key)"
        )
    limit = model_max_len(model_path)
    if limit is not None and gen.max_model_len > limit:
        warnings.warn(
            f"generator.max_model_len={gen.max_model_len} exceeds the model's max_position_embeddings "
            f"({limit}); using {limit}",
            stacklevel=2,
        )
        gen.max_model_len = limit
    if gen.kv_cache_space_gib is None:  # the prompts, once counted, may shrink it (prepare)
        gen.kv_cache_space_gib = kv_cache_gib(cfg, model_path)
    if gen.max_tokens >= gen.max_model_len:
        raise RlvrUserError(
            f"generator.max_tokens={gen.max_tokens} leaves no room for a prompt within "
            f"generator.max_model_len={gen.max_model_len}"
        )
    if cfg.trainer.mode == "sync" and not os.environ.get("OMP_NUM_THREADS"):
        # Generation and training take turns: each may use every core the two reserved (unless the user
        # chose a count with OMP_NUM_THREADS, which the components then keep), and on a local cluster, which
        # is this machine alone, every core it has: the rest of the run (verifiers, buffer) idles meanwhile.
        reserved = int(
            gen.num_cpus * gen.num_replicas + cfg.learner.cpus_per_worker * cfg.learner.num_workers
        )
        shared = max(1, reserved, local_cpus(cfg) if cfg.cluster.address is None else 0)
        gen.num_threads = gen.num_threads or max(1, shared // gen.num_replicas)
        cfg.learner.num_threads = cfg.learner.num_threads or max(1, shared // cfg.learner.num_workers)
    if cfg.model.trust_remote_code:  # both backends read it from the engine arguments
        gen.engine_kwargs.setdefault("trust_remote_code", True)
    if cfg.model.tokenizer:  # vLLM's `tokenizer` argument; the HF backend reads it too
        gen.engine_kwargs.setdefault("tokenizer", cfg.model.tokenizer)
    if gen.add_special_tokens is None:  # a chat template already wrote them into the prompt text
        gen.add_special_tokens = not cfg.data.chat_template
    if cfg.learner.bf16 and cfg.model.dtype != "bfloat16" and gen.dtype == "float32":
        log.info("learner.bf16 with a float32 generator: weights are sent in bfloat16 and upcast")


def prepare(cfg: RlvrConfig, *, evaluation: bool = False) -> Prepared:
    model_path = resolve_model_path(cfg.model)
    sized_by_user = cfg.generator.kv_cache_space_gib is not None
    derive(cfg, model_path)
    tok = load_tokenizer(cfg.model, model_path)
    budget = cfg.generator.max_model_len - cfg.generator.max_tokens
    prompts = load_prompts(
        cfg.data,
        evaluation=evaluation,
        tokenizer=tok,
        max_prompt_tokens=budget,
        special_tokens=cfg.generator.add_special_tokens,  # resolved by derive: what the backends encode with
    )
    # transformers may swap the saved tokenizer class for its own: make sure the text survives.
    key = "model.tokenizer" if cfg.model.tokenizer else "model.path"
    check_roundtrip(tok, (p.text for p in prompts), key=key, max_texts=32)
    if not sized_by_user:
        counted = [p.n_tokens for p in prompts if p.n_tokens is not None]
        longest = max(counted) if len(counted) == len(prompts) else None
        cfg.generator.kv_cache_space_gib = kv_cache_gib(cfg, model_path, longest)
    return Prepared(model_path, tok, prompts)
