"""Sampling with transformers' `generate`: the fallback without vLLM and the tests' reference.

In: a model folder, prompts, `SamplingConfig`, weight pushes. Out: `Sample`s whose behaviour
log-probs are log_softmax of the raw logits (before temperature/top-p) at the sampled tokens, the
same convention as vLLM's default `raw_logprobs`. Prompts are batched only with prompts of equal
token length so no padding ever changes the numbers.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rlvr.config.schema import GeneratorConfig
from rlvr.generator.base import GeneratorBackend, SamplingConfig, Weights, weight_items
from rlvr.models.loading import load_model_and_tokenizer
from rlvr.types import Sample


class HfBackend(GeneratorBackend):
    def __init__(self, model_path: str, cfg: GeneratorConfig) -> None:
        self.model, self.tok = load_model_and_tokenizer(model_path, cfg.dtype)
        self.cfg = cfg
        self.weight_version = 0

    def load_weights(self, weights: Weights, version: int) -> None:
        import torch

        own = self.model.state_dict()
        with torch.no_grad():
            for name, t in weight_items(weights):
                if name not in own:
                    raise KeyError(f"weight '{name}' is not a parameter of the generator model")
                own[name].copy_(t.to(own[name].dtype))
        self.weight_version = version

    def generate(self, prompts: list[str], sampling: SamplingConfig) -> list[list[Sample]]:
        import torch
        from transformers import GenerationConfig

        ids = [self.tok(p)["input_ids"] for p in prompts]
        by_len: dict[int, list[int]] = defaultdict(list)
        for i, x in enumerate(ids):
            by_len[len(x)].append(i)
        greedy = sampling.temperature == 0.0
        gen_cfg = GenerationConfig(
            do_sample=not greedy,
            temperature=None if greedy else sampling.temperature,
            top_p=None if greedy or sampling.top_p >= 1.0 else sampling.top_p,
            top_k=None,
            max_new_tokens=sampling.max_tokens,
            # HF cannot sample EOS and go on; suppressing it until max_tokens is the closest match
            min_new_tokens=sampling.max_tokens if sampling.ignore_eos else None,
            num_return_sequences=sampling.n,
            eos_token_id=self.tok.eos_token_id,
            pad_token_id=self.tok.pad_token_id,
            stop_strings=sampling.stop or None,
            output_logits=True,
            return_dict_in_generate=True,
        )
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        out: list[list[Sample]] = [[] for _ in prompts]
        for length, idx in sorted(by_len.items()):
            batch = torch.tensor([ids[i] for i in idx])
            with torch.no_grad():
                res = self.model.generate(
                    input_ids=batch,
                    attention_mask=torch.ones_like(batch),
                    generation_config=gen_cfg,
                    tokenizer=self.tok,
                )
            seqs = res.sequences[:, length:]
            logp = torch.stack(res.logits, dim=1).float().log_softmax(-1)  # (B*n, T, V), raw logits
            chosen = logp.gather(-1, seqs[:, : logp.shape[1], None]).squeeze(-1)
            for row in range(seqs.shape[0]):
                i = idx[row // sampling.n]
                out[i].append(self._sample(ids[i], seqs[row], chosen[row], sampling))
        return out

    def _sample(self, prompt_ids: list[int], seq: Any, logps: Any, sampling: SamplingConfig) -> Sample:
        toks, max_tokens = seq.tolist(), sampling.max_tokens
        eos = self.tok.eos_token_id
        if eos in toks and not sampling.ignore_eos:
            toks = toks[: toks.index(eos) + 1]
        else:  # trailing pads come from other rows of the batch finishing later
            while toks and toks[-1] == self.tok.pad_token_id:
                toks.pop()
        reason = "length" if len(toks) >= max_tokens and toks[-1] != eos else "stop"
        return Sample(
            prompt_ids=list(prompt_ids),
            response_ids=toks,
            response_text=self.tok.decode(toks, skip_special_tokens=True),
            behaviour_logprobs=[float(x) for x in logps[: len(toks)]],
            finish_reason=reason,
            weight_version=self.weight_version,
        )
