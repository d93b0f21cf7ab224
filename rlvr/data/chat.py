"""Prompt text the way the generator sees it: the tokenizer's chat template, and token counts.

In: formatted prompt texts (`data.prompt_template` applied), an optional system prompt, a HF tokenizer.
Out: chat-templated prompt strings (system message first, the prompt as the user turn, the assistant turn
opened by `add_generation_prompt=True`), and prompt ids encoded exactly as the generator encodes them.
A chat template already writes the model's special tokens (BOS, role markers) into the text, so such text
is encoded with `add_special_tokens=False`; plain text gets the tokenizer's usual special tokens
(`special_tokens`: `generator.add_special_tokens` once `derive` resolved it). The length filter counts with
the same setting the generator's backends encode with, so they cannot disagree about lengths.
"""

from __future__ import annotations

from typing import Any

from rlvr.errors import RlvrUserError


def require_chat_template(tokenizer: Any) -> None:
    """A one-line error unless `tokenizer` exists and carries a chat template."""
    if tokenizer is None:
        raise RlvrUserError(
            "data.chat_template: true needs the model's tokenizer, but the data loader got none"
        )
    if not getattr(tokenizer, "chat_template", None):
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise RlvrUserError(
            f"data.chat_template: the tokenizer of '{name}' has no chat template; set data.chat_template=false"
        )


def messages(prompt: str, system_prompt: str | None) -> list[dict[str, str]]:
    """The conversation for one prompt: the optional system message, then the prompt as the user turn."""
    turns = [{"role": "system", "content": system_prompt}] if system_prompt else []
    turns.append({"role": "user", "content": prompt})
    return turns


def apply_chat_template(tokenizer: Any, prompts: list[str], system_prompt: str | None) -> list[str]:
    """Each prompt rendered by the tokenizer's own template, ending where the assistant starts to answer."""
    require_chat_template(tokenizer)
    out = []
    for prompt in prompts:
        try:
            text = tokenizer.apply_chat_template(
                messages(prompt, system_prompt), tokenize=False, add_generation_prompt=True
            )
        except Exception as e:  # noqa: BLE001 - a template may reject e.g. system messages
            msg = " ".join(str(e).split())[:200]
            raise RlvrUserError(f"data.chat_template: the tokenizer's template failed: {msg}") from None
        out.append(str(text))
    return out


def encode_prompt(tokenizer: Any, text: str, *, special_tokens: bool) -> list[int]:
    """Prompt ids as the generator feeds them to the model (see the module docstring)."""
    return list(tokenizer(text, add_special_tokens=special_tokens)["input_ids"])


def count_tokens(tokenizer: Any, texts: list[str], *, special_tokens: bool) -> list[int]:
    """`len(encode_prompt(...))` for many texts in one batched tokenizer call."""
    if not texts:
        return []
    # verbose=False: prompts over the model's length are what we are filtering, not a warning per call
    encoded = tokenizer(texts, add_special_tokens=special_tokens, verbose=False)["input_ids"]
    return [len(ids) for ids in encoded]
