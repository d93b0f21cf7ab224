"""Prompt datasets -> `list[Prompt]`.

In: `DataConfig` (procedural task, local JSON/JSONL/parquet path, or a hub name). Out: prompts with
the template applied and the verifier chosen per row. Must never need ../shared: users bring data.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from rlvr.config.schema import DataConfig
from rlvr.data import procedural
from rlvr.errors import RlvrUserError
from rlvr.types import Prompt

_FORMATS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}
EVAL_SEED_OFFSET = 1_000_003  # held-out procedural problems come from a disjoint seed stream


def load_prompts(cfg: DataConfig, *, evaluation: bool = False, source: str | None = None) -> list[Prompt]:
    src = source or (cfg.eval_source if evaluation and cfg.eval_source else cfg.source)
    limit = cfg.eval_max_prompts if evaluation else cfg.max_prompts
    if src.startswith("procedural:"):
        seed = cfg.seed + (EVAL_SEED_OFFSET if evaluation else 0)
        n = limit or cfg.num_procedural
        prompts = procedural.generate(src.split(":", 1)[1], n, seed)
    else:
        prompts = [_row_to_prompt(row, cfg, i) for i, row in enumerate(_load_rows(src, cfg.split))]
    if cfg.shuffle and not evaluation:
        random.Random(cfg.seed).shuffle(prompts)
    if limit:
        prompts = prompts[:limit]
    for p in prompts:
        p.text = cfg.prompt_template.format(question=p.text)
    if not prompts:
        raise RlvrUserError(f"data.source: '{src}' yielded no prompts")
    return prompts


def _load_rows(src: str, split: str) -> list[dict[str, Any]]:
    import datasets

    path = Path(src).expanduser()
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None and path.exists():
        raise RlvrUserError(f"data.source: unsupported file type '{path.suffix}'; use {', '.join(_FORMATS)}")
    try:
        if fmt is not None:
            if not path.exists():
                raise RlvrUserError(f"data.source: file not found: {path}")
            ds = datasets.load_dataset(fmt, data_files=str(path), split="train")
        else:
            ds = datasets.load_dataset(src, split=split)
    except RlvrUserError:
        raise
    except Exception as e:  # offline hub lookups, malformed files
        msg = " ".join(str(e).split())[:200]
        raise RlvrUserError(f"data.source: could not load '{src}': {msg}") from None
    return [dict(r) for r in ds]


def _row_to_prompt(row: dict[str, Any], cfg: DataConfig, index: int) -> Prompt:
    for field in (cfg.question_key, cfg.answer_key):
        if field not in row:
            key = "data.question_key" if field == cfg.question_key else "data.answer_key"
            raise RlvrUserError(
                f"{key}: row {index} has no field '{field}'; fields: {', '.join(sorted(row))}"
            )
    source = cfg.default_data_source
    if cfg.data_source_key:
        if cfg.data_source_key not in row:
            raise RlvrUserError(
                f"data.data_source_key: row {index} has no field '{cfg.data_source_key}'; fields: {', '.join(sorted(row))}"
            )
        source = str(row[cfg.data_source_key])
    meta = {k: v for k, v in row.items() if k not in (cfg.question_key, cfg.answer_key)}
    return Prompt(
        text=str(row[cfg.question_key]),
        ground_truth=str(row[cfg.answer_key]),
        data_source=source,
        metadata=meta,
    )
