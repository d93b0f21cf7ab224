"""`generator.backend=auto`: the transformers loop for models under 20M parameters, vLLM above."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from rlvr.generator import base
from rlvr.generator.base import AUTO_HF_MAX_PARAMS, auto_backend
from rlvr.models.size import saved_param_count

pytestmark = pytest.mark.unit


def write_safetensors(path: Path, shapes: dict[str, list[int]]) -> None:
    """A safetensors file whose header names these float32 tensors (data zeros)."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        n = 4
        for d in shape:
            n *= d
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))


def test_parameters_are_counted_from_the_headers(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "model.safetensors", {"a": [3, 4], "b": [5]})
    assert saved_param_count(str(tmp_path)) == 17


def test_sharded_models_count_every_shard(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "s1.safetensors", {"a": [10, 10]})
    write_safetensors(tmp_path / "s2.safetensors", {"b": [7]})
    index = {"metadata": {}, "weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    assert saved_param_count(str(tmp_path)) == 107
    (tmp_path / "s2.safetensors").unlink()
    assert saved_param_count(str(tmp_path)) is None  # a missing shard: unknown, not a guess


def test_no_safetensors_is_unknown(tmp_path: Path) -> None:
    assert saved_param_count(str(tmp_path)) is None
    (tmp_path / "model.safetensors").write_bytes(b"\x00")
    assert saved_param_count(str(tmp_path)) is None  # unreadable header


def test_small_models_get_the_hf_loop_and_large_ones_vllm(tmp_path: Path, monkeypatch) -> None:
    small, large = tmp_path / "small", tmp_path / "large"
    small.mkdir()
    large.mkdir()
    write_safetensors(small / "model.safetensors", {"w": [1000, 1000]})
    index = {"weight_map": {"w": "model-1.safetensors"}}
    (large / "model.safetensors.index.json").write_text(json.dumps(index))
    # a header that claims AUTO_HF_MAX_PARAMS parameters (no data: only the header is read)
    raw = json.dumps({"w": {"dtype": "F32", "shape": [AUTO_HF_MAX_PARAMS], "data_offsets": [0, 0]}}).encode()
    (large / "model-1.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw)
    monkeypatch.setattr(base.importlib.util, "find_spec", lambda name: object())  # vLLM installed
    assert auto_backend(str(small)) == "hf"
    assert auto_backend(str(large)) == "vllm"
    assert auto_backend(str(tmp_path)) == "vllm"  # size unknown: vLLM, as for any real model
    monkeypatch.setattr(base.importlib.util, "find_spec", lambda name: None)  # no vLLM
    assert auto_backend(str(large)) == "hf"
