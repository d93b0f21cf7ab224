"""The generator backend contract.

In: prompt strings and a `SamplingConfig`; weights as a state dict or (name, tensor) pairs.
Out: per prompt, `n` `Sample`s carrying token ids, text, the log-prob of every sampled token under
the raw (temperature 1, unfiltered) policy, the finish reason and the weight version that produced
them. A backend never verifies, scores or trains; it only samples.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rlvr.config.schema import GeneratorConfig
from rlvr.types import Sample

Weights = Mapping[str, Any] | Iterable[tuple[str, Any]]


@dataclass
class SamplingConfig:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 24
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    ignore_eos: bool = False  # fixed-length generation (benchmarks); EOS no longer ends a response

    @classmethod
    def from_config(cls, cfg: GeneratorConfig, **overrides: Any) -> SamplingConfig:
        # seed=None: the engine's RNG (seeded once from cfg.seed) advances between calls, so steps
        # do not replay the same random draws; pass a seed only for a reproducible single call.
        base = cls(cfg.n_samples, cfg.temperature, cfg.top_p, cfg.max_tokens, None, list(cfg.stop))
        for k, v in overrides.items():
            setattr(base, k, v)
        return base


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
    """One engine in one process."""

    weight_version: int = 0

    @abstractmethod
    def generate(self, prompts: list[str], sampling: SamplingConfig) -> list[list[Sample]]: ...

    @abstractmethod
    def load_weights(self, weights: Weights, version: int) -> None: ...


def make_backend(model_path: str, cfg: GeneratorConfig) -> GeneratorBackend:
    """`auto` picks vLLM when it imports, else transformers."""
    kind = cfg.backend
    if kind == "auto":
        try:
            import vllm  # noqa: F401

            kind = "vllm"
        except ImportError:
            kind = "hf"
    if kind == "vllm":
        from rlvr.generator.vllm_backend import VllmBackend

        return VllmBackend(model_path, cfg)
    from rlvr.generator.hf_backend import HfBackend

    return HfBackend(model_path, cfg)
