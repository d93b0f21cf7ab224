"""The `reasoning_gym` verifier: a reasoning-gym dataset's own `score_answer` on the extracted answer.

In: a response, the gold (the entry's answer) and the row metadata `rg_dataset` (the task name) and
`rg_entry` (the reasoning-gym entry: question, answer, metadata), both written by
`rlvr.data.reasoning_gym`. The answer is the last `<answer>...</answer>` block, else the last `\\boxed{}`.
Out: reward = the dataset's score in [0, 1] (some tasks give partial credit); correct when it is 1.
`score_answer` is third-party code (some tasks parse with sympy), so this verifier is not self-guarded:
the pool runs it in a guarded child process with the hard `timeout_s`. Needs the `reasoning-gym` extra.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from rlvr.types import VerifierResult, VerifyStatus
from rlvr.verifiers.base import register_verifier
from rlvr.verifiers.format import MAX_SCAN_CHARS, last_boxed

EXTRA = "pip install 'rlvr[reasoning-gym]'"
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)


def extract_answer(response: str) -> str | None:
    """The last `<answer>` block (stripped), else the last `\\boxed{}` content; None when neither exists."""
    blocks = _ANSWER.findall(response[-MAX_SCAN_CHARS:])
    if blocks:
        return blocks[-1].strip()
    boxed = last_boxed(response)
    return boxed.strip() if boxed is not None else None


@functools.lru_cache(maxsize=64)
def score_fn(dataset: str) -> Callable[[str | None, dict[str, Any]], float]:
    """The dataset's `score_answer` (its default config: scoring depends on the entry, not the config)."""
    import reasoning_gym

    return reasoning_gym.get_score_answer_fn(dataset)


class ReasoningGymVerifier:
    def verify(self, response: str, ground_truth: str, **metadata: Any) -> VerifierResult:
        dataset, entry = metadata.get("rg_dataset"), metadata.get("rg_entry")
        if not isinstance(dataset, str) or not isinstance(entry, dict):
            return VerifierResult(
                0.0,
                False,
                status=VerifyStatus.ERROR,
                reason="row metadata lacks rg_dataset/rg_entry (rows come from procedural:reasoning_gym/<task>)",
            )
        try:
            scorer = score_fn(dataset)
        except ImportError:
            return VerifierResult(0.0, False, status=VerifyStatus.ERROR, reason=f"needs {EXTRA}")
        answer = extract_answer(response)
        if not answer:
            return VerifierResult(
                0.0, False, status=VerifyStatus.NO_ANSWER, reason="no <answer> block or \\boxed{}"
            )
        score = float(scorer(answer, entry))
        return VerifierResult(score, score >= 1.0, extracted=answer, reason=f"score {score:g}")


register_verifier("reasoning_gym")(ReasoningGymVerifier())
