"""Sampling with a transformers model and a plain KV-cached loop: the fallback without vLLM and the
tests' reference.

In: a model folder, prompts, `SamplingConfig`, weight pushes. Out: `Sample`s whose behaviour
log-probs are log_softmax(logits / T) at the sampled tokens (T=0, greedy: T=1), renormalised over
the top-p set when top_p < 1: the same numbers as vLLM's `processed_logprobs`. Every sample draws
from its own `torch.Generator` seeded with its per-sample seed. Prompts are batched only with prompts
of equal token length, so no padding ever changes the numbers. One request runs per `step`.
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any

from rlvr.config.schema import GeneratorConfig
from rlvr.generator.base import (
    GeneratorBackend,
    Groups,
    SamplingConfig,
    Weights,
    engine_model_config,
    resolve_dtype,
    weight_items,
)
from rlvr.models.loading import load_model_and_tokenizer
from rlvr.types import Sample


class HfBackend(GeneratorBackend):
    def __init__(self, model_path: str, cfg: GeneratorConfig) -> None:
        self.model, self.tok = load_model_and_tokenizer(
            model_path, resolve_dtype(model_path, cfg.dtype), model_cfg=engine_model_config(model_path, cfg)
        )
        self.cfg = cfg
        self.weight_version = 0
        self.weight_epoch = 0
        self._queue: deque[tuple[str, list[str], SamplingConfig]] = deque()

    def load_weights(self, weights: Weights, version: int, epoch: int = 0) -> None:
        import torch

        own = self.model.state_dict()
        with torch.no_grad():
            for name, t in weight_items(weights):
                if name not in own:
                    raise KeyError(f"weight '{name}' is not a parameter of the generator model")
                own[name].copy_(
                    t
                )  # copy_ casts; a pushed tensor already in the model's dtype is not copied twice
        self.weight_version, self.weight_epoch = version, epoch

    def add(self, job_id: str, prompts: list[str], sampling: SamplingConfig) -> None:
        self._queue.append((job_id, prompts, sampling.with_sample_seeds(len(prompts))))

    def has_work(self) -> bool:
        return bool(self._queue)

    def step(self) -> list[tuple[str, Groups]]:
        if not self._queue:
            return []
        job_id, prompts, sampling = self._queue.popleft()
        return [(job_id, self._run(prompts, sampling))]

    def _run(self, prompts: list[str], sampling: SamplingConfig) -> Groups:
        ids = [
            self.tok(p, add_special_tokens=self.cfg.add_special_tokens is not False)["input_ids"]
            for p in prompts
        ]
        by_len: dict[int, list[int]] = defaultdict(list)
        for i, x in enumerate(ids):
            by_len[len(x)].append(i)
        out: Groups = [[] for _ in prompts]
        for _length, idx in sorted(by_len.items()):
            rows = [(i, seed) for i in idx for seed in sampling.seeds_of(i)]
            sampled = self._sample_rows([ids[i] for i, _ in rows], [s for _, s in rows], sampling)
            for (i, _), (toks, lps, reason, text) in zip(rows, sampled, strict=True):
                out[i].append(
                    Sample(
                        prompt_ids=list(ids[i]),
                        response_ids=toks,
                        response_text=text,
                        behaviour_logprobs=lps,
                        finish_reason=reason,
                        weight_version=self.weight_version,
                        weight_epoch=self.weight_epoch,
                    )
                )
        return out

    def _sample_rows(
        self, prompt_rows: list[list[int]], seeds: list[int | None], sampling: SamplingConfig
    ) -> list[tuple[list[int], list[float], str, str]]:
        """All rows have one prompt length; each row samples with its own generator."""
        import torch

        gens = [None if s is None else torch.Generator().manual_seed(s) for s in seeds]
        greedy = sampling.temperature == 0.0
        temp = 1.0 if greedy else sampling.temperature
        eos = self.tok.eos_token_id
        B = len(prompt_rows)
        toks: list[list[int]] = [[] for _ in range(B)]
        lps: list[list[float]] = [[] for _ in range(B)]
        reason = ["length"] * B
        text: list[str | None] = [None] * B
        live = [True] * B
        with torch.no_grad():
            res = self.model(input_ids=torch.tensor(prompt_rows), use_cache=True)
            for _ in range(sampling.max_tokens):
                logits = res.logits[:, -1, :].float() / temp
                if sampling.top_p < 1.0 and not greedy:
                    logits = _top_p_mask(logits, sampling.top_p)
                logp = logits.log_softmax(-1)
                if greedy:
                    nxt = logits.argmax(-1)
                else:
                    probs = logp.exp()
                    nxt = torch.stack(
                        [torch.multinomial(probs[r], 1, generator=gens[r])[0] for r in range(B)]
                    )
                for r in range(B):
                    if not live[r]:
                        continue
                    t = int(nxt[r])
                    toks[r].append(t)
                    lps[r].append(float(logp[r, t]))
                    if t == eos and not sampling.ignore_eos:
                        live[r], reason[r] = False, "stop"
                    elif sampling.stop:
                        decoded = self.tok.decode(toks[r], skip_special_tokens=True)
                        hit = [decoded.index(s) for s in sampling.stop if s in decoded]
                        if hit:  # like vLLM: the text ends before the stop string, the tokens keep it
                            live[r], reason[r], text[r] = False, "stop", decoded[: min(hit)]
                if not any(live):
                    break
                res = self.model(input_ids=nxt[:, None], past_key_values=res.past_key_values, use_cache=True)
        final = [
            self.tok.decode(t, skip_special_tokens=True) if x is None else x
            for t, x in zip(toks, text, strict=True)
        ]
        return list(zip(toks, lps, reason, final, strict=True))


def _top_p_mask(logits: Any, top_p: float) -> Any:
    """Logits outside the smallest set whose probability reaches `top_p` become -inf (vLLM's rule)."""
    import torch

    sorted_logits, order = logits.sort(-1, descending=True)
    cum = sorted_logits.softmax(-1).cumsum(-1)
    drop = cum - sorted_logits.softmax(-1) >= top_p  # keep the token that crosses top_p
    sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
    return torch.empty_like(logits).scatter_(-1, order, sorted_logits)
