"""Sampling with vLLM's `LLMEngine`, in-process (no engine subprocess), one request per sample.

In: a model folder, `GeneratorConfig` engine args, prompts, weight pushes. Out: `Sample`s with the
sampled token's log-prob under `logprobs_mode="processed_logprobs"`: log_softmax(logits / T) after
top-p, the distribution actually sampled from (greedy requests report T=1). Every sample is its own
n=1 request with its own seed, so streams never collide, and the prefix cache shares the prompt's
KV between a group's samples. `add`/`step` expose the engine's continuous batching: requests added
while others run join the next engine step. Weights are pushed in place with `reload_weights`.

On CPU, chunked prefill is off: a prompt split over two engine steps makes vLLM rewind the request's
generator (`gen.set_offset(gen.get_offset() - 4)` in gpu_model_runner._bookkeeping_sync), which a CPU
`torch.Generator` does not support ("CPU Generator does not use offset"), and the engine stays wedged.
Without chunking every prefill is scheduled whole (vLLM raises max_num_batched_tokens to at least
max_model_len), so that rewind never runs.
"""

from __future__ import annotations

import gc
import os
from typing import Any

from rlvr.config.schema import KV_MIN_GIB, GeneratorConfig
from rlvr.generator.base import (
    GeneratorBackend,
    Groups,
    SamplingConfig,
    Weights,
    engine_model_config,
    resolve_dtype,
    weight_items,
)
from rlvr.models.tokenizer import disagreement, load_tokenizer
from rlvr.types import Sample


def engine_kwargs(model_path: str, cfg: GeneratorConfig, on_cpu: bool) -> dict[str, Any]:
    """vLLM engine arguments: rlvr's defaults per platform, then `generator.engine_kwargs` on top."""
    kwargs: dict[str, Any] = {
        "model": model_path,
        "dtype": resolve_dtype(model_path, cfg.dtype),
        "max_model_len": cfg.max_model_len,
        "seed": cfg.seed if cfg.seed is not None else 0,
        "logprobs_mode": "processed_logprobs",
    }
    if on_cpu:
        kwargs["kv_cache_memory_bytes"] = int((cfg.kv_cache_space_gib or KV_MIN_GIB) * 2**30)
        kwargs["enforce_eager"] = True  # CPU: no graphs to capture, starts in seconds
        kwargs["enable_chunked_prefill"] = False  # see the module docstring
    else:
        # A fractional GPU share (several components on one GPU) caps vLLM's memory to that share.
        kwargs["gpu_memory_utilization"] = round(0.9 * min(cfg.num_gpus, 1.0), 3)
    kwargs.update(cfg.engine_kwargs)
    return kwargs


class VllmBackend(GeneratorBackend):
    def __init__(self, model_path: str, cfg: GeneratorConfig) -> None:
        # In-process engine core: starts in seconds instead of ~30 s and lives in this actor.
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from vllm import LLM
        from vllm.platforms import current_platform

        if current_platform.is_cpu():
            from rlvr.generator.vllm_cpu import use_eager_token_ranks

            use_eager_token_ranks()  # no C++ build before the first generation
        # What the imports built lives as long as the process: frozen, the collector stops rescanning it in
        # each gc.collect() vLLM runs while it starts (five, 1.3 s of a core for the tiny model).
        gc.freeze()
        self.llm = LLM(**engine_kwargs(model_path, cfg, current_platform.is_cpu()))
        self.engine = self.llm.llm_engine
        # Prompts are encoded with the saved tokenizer (the driver's, see rlvr.models.tokenizer); vLLM's
        # own, loaded through AutoTokenizer, detokenizes the responses and must agree with it.
        self.tok = load_tokenizer(engine_model_config(model_path, cfg), model_path)
        wrong = disagreement(self.tok, self.llm.get_tokenizer())
        if wrong is not None:
            key = "model.tokenizer" if cfg.engine_kwargs.get("tokenizer") else "model.path"
            raise RuntimeError(
                f"{key}: vLLM's tokenizer ({type(self.llm.get_tokenizer()).__name__}) differs from the saved "
                f"one ({type(self.tok).__name__}): {wrong}; use generator.backend=hf"
            )
        self.cfg = cfg
        self.weight_version = 0
        self.weight_epoch = 0
        # job id -> (groups being filled, prompt token ids, requests still running)
        self._jobs: dict[str, tuple[list[list[Sample | None]], list[list[int]], set[str]]] = {}

    def load_weights(self, weights: Weights, version: int, epoch: int = 0) -> None:
        if self._jobs:
            raise RuntimeError("load_weights while requests are running: the caller must drain first")
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(weight_items(weights))})
        self.llm.reset_prefix_cache()  # cached KV blocks were computed by the old weights
        self.weight_version, self.weight_epoch = version, epoch

    def add(self, job_id: str, prompts: list[str], sampling: SamplingConfig) -> None:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        sampling = sampling.with_sample_seeds(len(prompts))
        ids = [
            self.tok(p, add_special_tokens=self.cfg.add_special_tokens is not False)["input_ids"]
            for p in prompts
        ]
        groups: list[list[Sample | None]] = [[None] * sampling.n for _ in prompts]
        running: set[str] = set()
        self._jobs[job_id] = (groups, ids, running)
        try:
            for i, prompt_ids in enumerate(ids):
                for k, seed in enumerate(sampling.seeds_of(i)):
                    params = SamplingParams(
                        n=1,
                        temperature=sampling.temperature,
                        top_p=sampling.top_p,
                        max_tokens=sampling.max_tokens,
                        seed=seed,
                        stop=sampling.stop or None,
                        ignore_eos=sampling.ignore_eos,
                        logprobs=0,  # only the sampled token's log-prob
                        output_kind=RequestOutputKind.FINAL_ONLY,
                    )
                    rid = f"{job_id}|{i}|{k}"
                    self.engine.add_request(rid, {"prompt_token_ids": prompt_ids}, params)
                    running.add(rid)
        except Exception:  # a bad request (e.g. prompt longer than max_model_len) fails alone
            self.engine.abort_request(list(running))
            del self._jobs[job_id]
            raise

    def has_work(self) -> bool:
        return bool(self._jobs)

    def step(self) -> list[tuple[str, Groups]]:
        done: list[tuple[str, Groups]] = []
        for req in self.engine.step():
            if not req.finished:
                continue
            job_id, i, k = str(req.request_id).rsplit("|", 2)
            if job_id not in self._jobs:
                continue
            groups, ids, running = self._jobs[job_id]
            groups[int(i)][int(k)] = self._sample(ids[int(i)], req.outputs[0])  # type: ignore[index]
            running.discard(str(req.request_id))
            if not running:
                del self._jobs[job_id]
                done.append((job_id, [[s for s in g if s is not None] for g in groups]))
        return done

    def _sample(self, prompt_ids: list[int], c: Any) -> Sample:
        toks = list(c.token_ids)
        lps = [float(step[t].logprob) for t, step in zip(toks, c.logprobs or [], strict=True) if step]
        if len(lps) != len(toks):
            raise RuntimeError(f"vLLM returned {len(lps)} log-probs for {len(toks)} tokens")
        return Sample(
            prompt_ids=list(prompt_ids),
            response_ids=toks,
            response_text=c.text,
            behaviour_logprobs=lps,
            finish_reason=c.finish_reason or "stop",
            weight_version=self.weight_version,
            weight_epoch=self.weight_epoch,
        )
