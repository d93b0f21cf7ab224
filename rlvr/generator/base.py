"""The generator backend contract.

In: prompt strings and a `SamplingConfig`; weights as a state dict or (name, tensor) pairs.
Out: per prompt, `n` `Sample`s carrying token ids, text, the log-prob of every sampled token under
the distribution actually sampled from (log_softmax(logits / T); T=0 reports T=1), the finish
reason and the weight (epoch, version) that produced them. A backend never verifies, scores or
trains; it only samples. Requests are started with `add` and advanced with `step`, so one engine can
batch several concurrent requests; `generate` is the blocking one-request form.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from rlvr.config.schema import GeneratorConfig
from rlvr.generator.seeds import group_seeds
from rlvr.types import Sample

log = logging.getLogger(__name__)
Weights = Mapping[str, Any] | Iterable[tuple[str, Any]]
Groups = list[list[Sample]]
_warned_top_p = False


@dataclass
class SamplingConfig:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 24
    # One call's seed: expanded into one seed per sample by `with_sample_seeds` (prompt index as id).
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    ignore_eos: bool = False  # fixed-length generation (benchmarks); EOS no longer ends a response
    # Per prompt, `n` seeds (rlvr.generator.seeds); wins over `seed`. None with seed None: engine RNG.
    seeds: list[list[int]] | None = None

    @classmethod
    def from_config(cls, cfg: GeneratorConfig, **overrides: Any) -> SamplingConfig:
        base = cls(cfg.n_samples, cfg.temperature, cfg.top_p, cfg.max_tokens, None, list(cfg.stop))
        for k, v in overrides.items():
            setattr(base, k, v)
        _warn_top_p(base.top_p)
        return base

    def with_sample_seeds(self, num_prompts: int) -> SamplingConfig:
        """A copy whose `seeds` are explicit (from `seed` if needed), so prompts can be split freely."""
        if self.seeds is not None:
            if len(self.seeds) != num_prompts or any(len(s) != self.n for s in self.seeds):
                raise ValueError(f"SamplingConfig.seeds must be {num_prompts} lists of n={self.n} seeds")
            return self
        if self.seed is None:
            return self
        ids = [str(i) for i in range(num_prompts)]
        return replace(self, seeds=group_seeds(self.seed, 0, ids, self.n))

    def slice(self, lo: int, hi: int) -> SamplingConfig:
        """The sampling of prompts [lo, hi) (seeds must be explicit first: `with_sample_seeds`)."""
        return self if self.seeds is None else replace(self, seeds=self.seeds[lo:hi])

    def seeds_of(self, prompt_index: int) -> list[int | None]:
        if self.seeds is not None:
            return list(self.seeds[prompt_index])
        if self.seed is not None:
            raise ValueError("call with_sample_seeds(num_prompts) before reading per-sample seeds")
        return [None] * self.n


def _warn_top_p(top_p: float) -> None:
    global _warned_top_p
    if top_p < 1.0 and not _warned_top_p:
        _warned_top_p = True
        log.warning(
            "generator.top_p=%g < 1: behaviour log-probs are those of the top-p truncated distribution, "
            "but the learner recomputes log_softmax(logits / T) without truncation",
            top_p,
        )


def weight_items(weights: Weights) -> Iterable[tuple[str, Any]]:
    """(name, tensor) pairs from either a state dict or an iterable of pairs; numpy becomes torch."""
    import numpy as np
    import torch

    items = weights.items() if isinstance(weights, Mapping) else weights
    for name, t in items:
        if isinstance(t, torch.Tensor):
            yield name, t
            continue
        with warnings.catch_warnings():  # object-store arrays are read-only; engines copy, never write
            warnings.simplefilter("ignore", UserWarning)
            tensor = torch.from_numpy(np.asarray(t))
        yield name, tensor


class GeneratorBackend(ABC):
    """One engine in one process. `add` queues a request, `step` advances the engine and returns the
    requests it finished; a backend that cannot interleave requests runs one per `step`."""

    weight_version: int = 0
    weight_epoch: int = 0
    _job_ids = itertools.count()

    @abstractmethod
    def add(self, job_id: str, prompts: list[str], sampling: SamplingConfig) -> None: ...

    @abstractmethod
    def step(self) -> list[tuple[str, Groups]]: ...

    @abstractmethod
    def has_work(self) -> bool: ...

    @abstractmethod
    def load_weights(self, weights: Weights, version: int, epoch: int = 0) -> None: ...

    def generate(self, prompts: list[str], sampling: SamplingConfig) -> Groups:
        job = f"direct-{next(self._job_ids)}"
        self.add(job, prompts, sampling.with_sample_seeds(len(prompts)))
        while True:
            for done, groups in self.step():
                if done == job:
                    return groups
            if not self.has_work():
                raise RuntimeError(f"generator backend lost request {job}")


def resolve_dtype(model_path: str, dtype: str | None) -> str:
    """`auto`/None: the dtype the model was saved in (config.json's `dtype`, or `torch_dtype` before
    transformers 5; float32 when it names none). Never vLLM's own "auto", which downcasts float32 models."""
    from rlvr.models.loading import saved_config

    if dtype not in (None, "auto"):
        return str(dtype)
    saved = saved_config(model_path) or {}
    return str(saved.get("dtype") or saved.get("torch_dtype") or "float32")


def engine_model_config(model_path: str, cfg: GeneratorConfig) -> Any:
    """The `ModelConfig` a replica loads with: `model.tokenizer` and `trust_remote_code` arrive in the
    engine arguments (set by rlvr.pipeline.prepare), so both backends tokenize exactly as the driver."""
    from rlvr.config.schema import ModelConfig

    return ModelConfig(
        path=model_path,
        tokenizer=cfg.engine_kwargs.get("tokenizer"),
        trust_remote_code=bool(cfg.engine_kwargs.get("trust_remote_code", False)),
    )


# `backend=auto` picks the transformers loop below this many parameters: on the tiny models (0.4M-3.5M)
# vLLM's per-step scheduling and its Serve call dominate, on SmolLM2-135M vLLM generates 6.1x the loop's
# tokens/s (docs/GENERATORS.md has the measurements; nothing in between was measured).
AUTO_HF_MAX_PARAMS = 20_000_000


HF_ENGINE_KWARGS = frozenset({"tokenizer", "trust_remote_code"})  # the engine arguments the HF loop reads


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def auto_backend(model_path: str) -> Literal["vllm", "hf"]:
    """What `generator.backend=auto` means for this model: "hf" for a model under AUTO_HF_MAX_PARAMS
    (counted from its safetensors headers) or where vLLM is not installed, else "vllm"."""
    from rlvr.models.size import saved_param_count

    params = saved_param_count(model_path)
    if params is not None and params < AUTO_HF_MAX_PARAMS:
        return "hf"
    return "vllm" if vllm_installed() else "hf"


def make_backend(model_path: str, cfg: GeneratorConfig) -> GeneratorBackend:
    """`auto` (when a run did not resolve it before start-up): `auto_backend`."""
    kind = cfg.backend
    if kind == "auto":
        kind = auto_backend(model_path)
    if kind == "vllm":
        from rlvr.generator.vllm_backend import VllmBackend

        return VllmBackend(model_path, cfg)
    from rlvr.generator.hf_backend import HfBackend

    return HfBackend(model_path, cfg)
