"""A state dict as a few bounded-size chunks for the object store, and back.

In: a state dict of torch tensors in any dtype. Out: chunks, each a list of (name, dtype, numpy
array) of at most `max_bytes` (one bigger tensor gets a chunk of its own). Tensors are sent in
their own dtype: bfloat16 travels as its raw 16-bit pattern (numpy has no bfloat16), so a bf16 model
moves half the bytes of fp32 and the engine loads it without a cast. Tensors that share storage
(tied embeddings) are sent once, under the first name. Decoding is zero-copy: the tensors view the
object store's read-only buffers. Never touches Ray itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

Chunk = list[tuple[str, str, Any]]
DEFAULT_CHUNK_BYTES = 256 * 2**20


def encode_chunks(state: dict[str, Any], max_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[Chunk]:
    import torch

    seen: set[tuple[int, tuple[int, ...]]] = set()
    chunk: Chunk = []
    size = 0
    for name, value in state.items():
        t = value.detach().cpu() if isinstance(value, torch.Tensor) else torch.as_tensor(value)
        key = (int(t.untyped_storage().data_ptr() + t.storage_offset() * t.element_size()), tuple(t.shape))
        if t.numel() and key in seen:  # a tied weight: the receiver's model ties it again
            continue
        seen.add(key)
        dtype = str(t.dtype).removeprefix("torch.")
        t = t.contiguous()
        arr = t.view(torch.int16).numpy() if t.dtype == torch.bfloat16 else t.numpy()
        if chunk and size + arr.nbytes > max_bytes:
            yield chunk
            chunk, size = [], 0
        chunk.append((name, dtype, arr))
        size += arr.nbytes
    if chunk:
        yield chunk


def decode_chunk(chunk: Chunk | dict[str, Any]) -> Iterable[tuple[str, Any]]:
    """(name, tensor) pairs; a plain {name: array} dict (the old single-object format) passes through."""
    import warnings

    import numpy as np
    import torch

    if isinstance(chunk, dict):
        yield from chunk.items()
        return
    for name, dtype, arr in chunk:
        with warnings.catch_warnings():  # object-store arrays are read-only; engines copy, never write
            warnings.simplefilter("ignore", UserWarning)
            t = torch.from_numpy(np.asarray(arr))
        yield name, t.view(torch.bfloat16) if dtype == "bfloat16" else t


def chunk_nbytes(chunk: Chunk | dict[str, Any]) -> int:
    """Bytes of the arrays in one chunk (either format)."""
    arrays = chunk.values() if isinstance(chunk, dict) else (arr for _, _, arr in chunk)
    return sum(int(getattr(a, "nbytes", 0)) for a in arrays)
