"""Sampling with vLLM's offline `LLM` engine (in-process, no engine subprocess).

In: a model folder, `GeneratorConfig` engine args, prompts, weight pushes. Out: `Sample`s with the
sampled token's log-prob from vLLM (`logprobs=0`). vLLM's default `logprobs_mode="raw_logprobs"`
reports log_softmax of the raw logits, i.e. before temperature and top-p: the same quantity a
learner recomputes with a plain forward pass. Weights are pushed in place with `reload_weights`.
"""

from __future__ import annotations

import os
from typing import Any

from rlvr.config.schema import GeneratorConfig
from rlvr.generator.base import GeneratorBackend, SamplingConfig, Weights, weight_items
from rlvr.types import Sample


class VllmBackend(GeneratorBackend):
    def __init__(self, model_path: str, cfg: GeneratorConfig) -> None:
        # In-process engine core: starts in seconds instead of ~30 s and lives in this actor.
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from vllm import LLM

        kwargs: dict[str, Any] = {
            "model": model_path,
            "dtype": cfg.dtype,
            "max_model_len": cfg.max_model_len,
            "kv_cache_memory_bytes": int(cfg.kv_cache_space_gib * 2**30),
            "seed": cfg.seed if cfg.seed is not None else 0,
            "enforce_eager": True,
        }
        kwargs.update(cfg.engine_kwargs)
        self.llm = LLM(**kwargs)
        self.cfg = cfg
        self.weight_version = 0

    def load_weights(self, weights: Weights, version: int) -> None:
        items = list(weight_items(weights))
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(items)})
        self.llm.reset_prefix_cache()  # cached KV blocks were computed by the old weights
        self.weight_version = version

    def generate(self, prompts: list[str], sampling: SamplingConfig) -> list[list[Sample]]:
        from vllm import SamplingParams

        def params(i: int) -> SamplingParams:
            # vLLM gives the n children seed+k; space prompts apart so they never share a stream
            seed = None if sampling.seed is None else sampling.seed + i * sampling.n
            return SamplingParams(
                n=sampling.n,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_tokens,
                seed=seed,
                stop=sampling.stop or None,
                ignore_eos=sampling.ignore_eos,
                logprobs=0,  # only the sampled token's log-prob
            )

        outs = self.llm.generate(prompts, [params(i) for i in range(len(prompts))], use_tqdm=False)
        result: list[list[Sample]] = []
        for req in outs:
            prompt_ids = list(req.prompt_token_ids or [])
            group = []
            for c in req.outputs:
                toks = list(c.token_ids)
                lps = [float(step[t].logprob) for t, step in zip(toks, c.logprobs or [], strict=True) if step]
                if len(lps) != len(toks):
                    raise RuntimeError(f"vLLM returned {len(lps)} log-probs for {len(toks)} tokens")
                group.append(
                    Sample(
                        prompt_ids=prompt_ids,
                        response_ids=toks,
                        response_text=c.text,
                        behaviour_logprobs=lps,
                        finish_reason=c.finish_reason or "stop",
                        weight_version=self.weight_version,
                    )
                )
            result.append(group)
        return result
