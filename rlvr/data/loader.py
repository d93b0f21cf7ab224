"""Prompt datasets -> `list[Prompt]`.

In: `DataConfig` (procedural task, local JSON/JSONL/parquet/CSV path, or a hub name with `data.hub_config`),
optionally the model's tokenizer and the prompt-token budget. Out: prompts whose text is exactly what the
generator is given (prompt template, then the chat template when `data.chat_template`), whose gold is the bare
answer (`data.answer_format`), whose id is deterministic, and which fit the budget. Rows without an
extractable gold and over-long prompts are dropped with one log line each kind, never passed on.
Must never need ../shared: users bring data.
"""

from __future__ import annotations

import hashlib
import logging
import random
from pathlib import Path
from typing import Any

from rlvr.config.schema import DataConfig
from rlvr.data import answers, chat, procedural
from rlvr.errors import RlvrUserError
from rlvr.types import Prompt

log = logging.getLogger(__name__)

_FORMATS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}
EVAL_SEED_OFFSET = 1_000_003  # held-out procedural problems come from a disjoint seed stream


def load_prompts(
    cfg: DataConfig,
    *,
    evaluation: bool = False,
    source: str | None = None,
    tokenizer: Any = None,
    max_prompt_tokens: int | None = None,
    special_tokens: bool | None = None,
) -> list[Prompt]:
    """The prompts of `source` (default: `data.source`, or `data.eval_source` when `evaluation`).

    `tokenizer` is needed for `data.chat_template` and for the length filter; `max_prompt_tokens` (the caller
    passes `generator.max_model_len - generator.max_tokens`) drops prompts that leave no room to answer,
    counted with `special_tokens` (`generator.add_special_tokens`; None: off for chat templates).
    """
    src = source or (cfg.eval_source if evaluation and cfg.eval_source else cfg.source)
    limit = cfg.eval_max_prompts if evaluation else cfg.max_prompts
    template = prompt_template(cfg)
    if cfg.chat_template:
        chat.require_chat_template(tokenizer)  # before any download: the error is about the config
    if src.startswith("procedural:"):
        seed = cfg.seed + (EVAL_SEED_OFFSET if evaluation else 0)
        # Training: a pool of num_procedural problems, max_prompts at most. Evaluation: eval_max_prompts.
        n = (
            cfg.eval_max_prompts
            if evaluation
            else min(cfg.max_prompts or cfg.num_procedural, cfg.num_procedural)
        )
        prompts = procedural.generate(src.split(":", 1)[1], n, seed)
    else:
        prompts = _rows_to_prompts(_load_rows(src, cfg.split, cfg.hub_config), cfg, src)
    if cfg.shuffle and not evaluation:
        random.Random(cfg.seed).shuffle(prompts)
    if max_prompt_tokens is not None and tokenizer is None:
        raise ValueError("load_prompts: max_prompt_tokens needs the tokenizer that counts them")
    special = not cfg.chat_template if special_tokens is None else special_tokens
    prompts = _prepare(prompts, cfg, template, tokenizer, max_prompt_tokens, limit, src, special)
    if not prompts:
        raise RlvrUserError(f"data.source: '{src}' yielded no prompts")
    return prompts


def prompt_template(cfg: DataConfig) -> str:
    """`data.prompt_template`, or the content of `data.prompt_template_file` when that is set."""
    if not cfg.prompt_template_file:
        return cfg.prompt_template
    path = Path(cfg.prompt_template_file).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise RlvrUserError(f"data.prompt_template_file: cannot read {path}: {e.strerror}") from None


def prompt_id(question: str, index: int) -> str:
    """Stable across runs and resumes (seeds derive from it): the row's position and its question text."""
    return hashlib.sha1(f"{index}\x00{question}".encode()).hexdigest()[:12]


def _format(prompts: list[Prompt], cfg: DataConfig, template: str, tokenizer: Any) -> None:
    key = "data.prompt_template_file" if cfg.prompt_template_file else "data.prompt_template"
    for p in prompts:
        try:
            p.text = template.format(question=p.text)
        except (KeyError, IndexError, ValueError) as e:
            raise RlvrUserError(
                f"{key}: cannot format ({type(e).__name__}: {e}); use {{question}} and write braces as {{{{ }}}}"
            ) from None
    if cfg.chat_template:
        texts = chat.apply_chat_template(tokenizer, [p.text for p in prompts], cfg.system_prompt)
        for p, text in zip(prompts, texts, strict=True):
            p.text = text


def _prepare(
    prompts: list[Prompt],
    cfg: DataConfig,
    template: str,
    tokenizer: Any,
    budget: int | None,
    limit: int | None,
    src: str,
    special: bool,
) -> list[Prompt]:
    """Format, then keep the first `limit` prompts that fit `budget` tokens (all when `limit` is None).

    Works in chunks so that a 32-prompt evaluation of a large dataset renders and counts about 32 prompts.
    """
    if budget is not None and budget < 1:
        raise RlvrUserError(
            f"generator.max_model_len: leaves {budget} prompt tokens after generator.max_tokens; raise it"
        )
    chunk = max(2 * limit, 256) if limit else max(len(prompts), 1)
    kept: list[Prompt] = []
    seen, shortest = 0, None
    for start in range(0, len(prompts), chunk):
        part = prompts[start : start + chunk]
        _format(part, cfg, template, tokenizer)
        seen += len(part)
        if budget is None:
            kept.extend(part)
        else:
            lengths = chat.count_tokens(tokenizer, [p.text for p in part], special_tokens=special)
            for p, n in zip(part, lengths, strict=True):
                p.n_tokens = n
            kept.extend(p for p in part if (p.n_tokens or 0) <= budget)
            shortest = min([*lengths, shortest] if shortest is not None else lengths)
        if limit and len(kept) >= limit:
            break
    if seen and not kept:
        raise RlvrUserError(
            f"generator.max_model_len: every prompt of '{src}' is longer than the {budget} tokens left after "
            f"generator.max_tokens (shortest: {shortest}); raise generator.max_model_len"
        )
    if len(kept) < seen:
        log.warning(
            "data: dropped %d of %d prompts of '%s' longer than %d tokens "
            "(generator.max_model_len - generator.max_tokens)",
            seen - len(kept),
            seen,
            src,
            budget,
        )
    return kept[:limit] if limit else kept


def _load_rows(src: str, split: str, hub_config: str | None = None) -> list[dict[str, Any]]:
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
            ds = datasets.load_dataset(src, hub_config, split=split)
    except RlvrUserError:
        raise
    except Exception as e:  # offline hub lookups, malformed files, a missing hub_config
        msg = " ".join(str(e).split())[:200]
        raise RlvrUserError(f"data.source: could not load '{src}': {msg}") from None
    return [dict(r) for r in ds]


def _rows_to_prompts(rows: list[dict[str, Any]], cfg: DataConfig, src: str) -> list[Prompt]:
    extract = answers.get_extractor(cfg.answer_format)
    prompts = []
    for i, row in enumerate(rows):
        prompt = _row_to_prompt(row, cfg, i, extract)
        if prompt is not None:
            prompts.append(prompt)
    skipped = len(rows) - len(prompts)
    if rows and not prompts:
        raise RlvrUserError(
            f"data.answer_format: '{cfg.answer_format}' found no gold answer in field '{cfg.answer_key}' "
            f"of any of the {len(rows)} rows of '{src}'"
        )
    if skipped:
        log.warning(
            "data: skipped %d of %d rows of '%s' whose '%s' field has no gold answer (data.answer_format=%s)",
            skipped,
            len(rows),
            src,
            cfg.answer_key,
            cfg.answer_format,
        )
    return prompts


def _row_to_prompt(
    row: dict[str, Any], cfg: DataConfig, index: int, extract: answers.Extractor
) -> Prompt | None:
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
    answer = row[cfg.answer_key]
    gold = extract(str(answer)) if answer is not None else None
    if gold is None:
        return None
    question = str(row[cfg.question_key])
    meta = {k: v for k, v in row.items() if k not in (cfg.question_key, cfg.answer_key)}
    return Prompt(
        text=question,
        ground_truth=gold,
        data_source=source,
        metadata=meta,
        prompt_id=prompt_id(question, index),
    )
