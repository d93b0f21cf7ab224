"""Chat templates and the prompt-length filter, counted the way the generator encodes prompts."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from rlvr.config.loader import load_config
from rlvr.data.chat import encode_prompt
from rlvr.data.loader import load_prompts
from rlvr.errors import RlvrUserError
from rlvr.models.tiny import build_tokenizer

pytestmark = pytest.mark.unit

# Qwen2.5-style ChatML: a default system turn when the conversation brings none.
CHATML = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)


@pytest.fixture
def chat_tokenizer():
    tok = build_tokenizer(256)
    tok.chat_template = CHATML
    return tok


def _source(tmp_path: Path, questions: list[str]) -> str:
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"problem": q, "answer": "1"}) + "\n" for q in questions))
    return str(path)


def test_chat_template_wraps_the_formatted_prompt_with_the_system_prompt(tmp_path, chat_tokenizer) -> None:
    cfg = load_config(
        [
            f"data.source={_source(tmp_path, ['2+2?'])}",
            "data.prompt_template='{question} Answer in \\boxed{{}}.'",
            "data.chat_template=true",
            "data.system_prompt=Think first.",
        ]
    ).data
    (prompt,) = load_prompts(cfg, tokenizer=chat_tokenizer)
    assert prompt.text == (
        "<|im_start|>system\nThink first.<|im_end|>\n"
        "<|im_start|>user\n2+2? Answer in \\boxed{}.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    no_system = load_config([f"data.source={_source(tmp_path, ['2+2?'])}", "data.chat_template=true"]).data
    (plain,) = load_prompts(no_system, tokenizer=chat_tokenizer)
    assert plain.text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")
    assert plain.text.endswith("<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n")


def test_procedural_prompts_get_the_chat_template_too(chat_tokenizer) -> None:
    cfg = load_config(["data=arith", "data.chat_template=true", "data.max_prompts=3"]).data
    prompts = load_prompts(cfg, tokenizer=chat_tokenizer)
    assert all(p.text.startswith("<|im_start|>system") and p.text.endswith("assistant\n") for p in prompts)


def test_chat_template_needs_a_tokenizer_with_a_template(tmp_path) -> None:
    cfg = load_config([f"data.source={_source(tmp_path, ['q'])}", "data.chat_template=true"]).data
    with pytest.raises(RlvrUserError, match=r"^data\.chat_template: true needs the model's tokenizer"):
        load_prompts(cfg)
    with pytest.raises(RlvrUserError, match=r"^data\.chat_template: the tokenizer .* has no chat template"):
        load_prompts(cfg, tokenizer=build_tokenizer(256))


def test_length_filter_counts_tokens_like_the_generator(tmp_path, chat_tokenizer, caplog) -> None:
    # One token per byte: plain text gets <s> prepended; chat-templated text is encoded without it.
    questions = ["x" * 10, "y" * 30]
    plain = load_config([f"data.source={_source(tmp_path, questions)}", "data.shuffle=false"]).data
    assert len(encode_prompt(chat_tokenizer, "x" * 10, special_tokens=True)) == 11
    with caplog.at_level(logging.WARNING, logger="rlvr.data.loader"):
        kept = load_prompts(plain, tokenizer=chat_tokenizer, max_prompt_tokens=11)
    assert [p.text for p in kept] == ["x" * 10]
    assert [p.n_tokens for p in kept] == [11]  # what the KV cache is sized from
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "dropped 1 of 2 prompts" in warnings[0]
    with pytest.raises(RlvrUserError, match=r"^generator\.max_model_len: every prompt .* \(shortest: 11\)"):
        load_prompts(plain, tokenizer=chat_tokenizer, max_prompt_tokens=10)

    chat = load_config([f"data.source={_source(tmp_path, questions)}", "data.chat_template=true"]).data
    (short, _) = sorted(load_prompts(chat, tokenizer=chat_tokenizer), key=lambda p: len(p.text))
    n = len(short.text.encode())  # the template's own markers are plain bytes for this tokenizer
    assert len(encode_prompt(chat_tokenizer, short.text, special_tokens=False)) == n
    assert [p.text for p in load_prompts(chat, tokenizer=chat_tokenizer, max_prompt_tokens=n)] == [short.text]
    # generator.add_special_tokens=true on chat text: the backends prepend <s>, so the filter counts it.
    both = load_prompts(chat, tokenizer=chat_tokenizer, max_prompt_tokens=n + 1, special_tokens=True)
    assert [(p.text, p.n_tokens) for p in both] == [(short.text, n + 1)]


def test_max_prompt_tokens_without_a_tokenizer_is_a_caller_bug(tmp_path) -> None:
    cfg = load_config([f"data.source={_source(tmp_path, ['q'])}"]).data
    with pytest.raises(ValueError, match="needs the tokenizer"):
        load_prompts(cfg, max_prompt_tokens=100)


def test_max_prompts_counts_prompts_that_fit_even_past_the_first_chunk(tmp_path, chat_tokenizer) -> None:
    questions = ["long " * 20] * 300 + [f"q{i}" for i in range(5)]  # the loader renders 256 at a time here
    cfg = load_config(
        [f"data.source={_source(tmp_path, questions)}", "data.shuffle=false", "data.max_prompts=2"]
    ).data
    kept = load_prompts(cfg, tokenizer=chat_tokenizer, max_prompt_tokens=10)
    assert [p.text for p in kept] == ["q0", "q1"]
