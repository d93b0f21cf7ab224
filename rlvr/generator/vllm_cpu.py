"""vLLM on CPU without a C++ build before the first generation.

vLLM counts each sampled token's rank with a `torch.compile`d kernel (`batched_count_greater_than`). On CPU
inductor builds it with the system C++ compiler on first use: about 0.5 GiB for `cc1plus` and seconds of
start-up before the first generation, again for every new vocabulary size and whenever the cache under
/tmp is gone. The eager expression is the same `(x >= values).sum(-1)`; at a decode step's batch its
temporary is batch x vocab booleans (a few MiB). rlvr asks for the sampled token's log-prob only.
Must never: change what vLLM samples or the log-probs it returns.
"""

from __future__ import annotations

import torch


def count_at_least(x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Per row, how many entries of `x` are >= that row's value (the sampled token's 1-based rank)."""
    return (x >= values).sum(-1)


def use_eager_token_ranks() -> None:
    """Swap vLLM's compiled rank count for the eager one (in this process; idempotent).
    RLVR_VLLM_COMPILED_RANKS=1 keeps vLLM's own (what `benchmarks/startup.py` compares against)."""
    import os

    import vllm.v1.sample.sampler as sampler

    if os.environ.get("RLVR_VLLM_COMPILED_RANKS") == "1":
        return

    sampler.batched_count_greater_than = count_at_least  # type: ignore[assignment]
