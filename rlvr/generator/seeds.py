"""Per-sample random seeds: one independent stream for every response a run ever samples.

In: the run seed and a sample's coordinates (step, prompt id, sample index, round). Out: a 62-bit
int from a keyed blake2b hash. Pure and stable across processes and Python versions (no `hash()`),
so a run is reproducible and no two samples share a stream, even when a prompt is revisited at a
later step or sampled again in a second round of the same step. Never touches an RNG.
"""

from __future__ import annotations

import hashlib
import struct

_MASK_62 = (1 << 62) - 1  # fits a signed int64 with room: torch and vLLM seed types accept it


def sample_seed(run_seed: int, step: int, prompt_id: str, sample_index: int, round: int = 0) -> int:
    """The seed of sample `sample_index` of prompt `prompt_id` in `round` of training step `step`."""
    h = hashlib.blake2b(digest_size=8, person=b"rlvr-sample-seed")
    h.update(struct.pack("<qqq", run_seed, step, round))
    h.update(struct.pack("<q", sample_index))
    h.update(prompt_id.encode("utf-8"))  # last, variable length: the fixed fields cannot bleed into it
    return int.from_bytes(h.digest(), "little") & _MASK_62


def group_seeds(run_seed: int, step: int, prompt_ids: list[str], n: int, round: int = 0) -> list[list[int]]:
    """`n` seeds per prompt, in prompt order: what `SamplingConfig.seeds` carries."""
    return [[sample_seed(run_seed, step, pid, k, round) for k in range(n)] for pid in prompt_ids]
