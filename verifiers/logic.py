"""The `logic` verifier: Knights and Knaves role assignments.

In: a response with an `<answer>...</answer>` block ("(1) Zoey is a knight ..."), the gold as the canonical
string "Name=knight,Name=knave,..." (see `rlvr.data.knights_knaves`), `partial_credit` (default off) and row
metadata (ignored). Out: reward 1 when every person's role is right (or the fraction right with partial
credit). Bounded work: plain string scanning of at most `MAX_ANSWER_CHARS`; it never evaluates anything.
"""

from __future__ import annotations

import re
from typing import Any

from rlvr.types import VerifierResult, VerifyStatus
from rlvr.verifiers.base import register_verifier

MAX_ANSWER_CHARS = 20_000
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_ROLE = {"knight": "knight", "knights": "knight", "knave": "knave", "knaves": "knave"}


def parse_gold(gold: str) -> dict[str, str]:
    """'Amelia=knight,Evelyn=knave' -> {'Amelia': 'knight', 'Evelyn': 'knave'}; raises ValueError if malformed."""
    out: dict[str, str] = {}
    for part in gold.split(","):
        name, sep, role = part.partition("=")
        role = role.strip().lower()
        if not sep or not name.strip() or role not in ("knight", "knave"):
            raise ValueError(f"malformed knights-and-knaves gold {gold!r}")
        out[name.strip()] = role
    return out


def extract_roles(answer: str, names: list[str]) -> dict[str, str]:
    """The role stated for each name: the first 'knight'/'knave' after the name's last mention in its clause."""
    roles: dict[str, str] = {}
    for clause in re.split(r"[\n;.]|\(\d+\)", answer):
        for name in names:
            m = re.search(rf"\b{re.escape(name)}\b(.*)", clause, re.IGNORECASE)
            if not m:
                continue
            role = re.search(r"\b(knights?|knaves?)\b", m.group(1), re.IGNORECASE)
            if role:
                roles[name] = _ROLE[role.group(1).lower()]
    return roles


class LogicVerifier:
    self_guarded = True  # bounded string work, safe to run in-process

    def verify(
        self, response: str, ground_truth: str, *, partial_credit: bool = False, **_metadata: Any
    ) -> VerifierResult:
        try:
            gold = parse_gold(ground_truth)
        except ValueError as e:
            return VerifierResult(0.0, False, status=VerifyStatus.ERROR, reason=str(e)[:200])
        blocks = _ANSWER.findall(response[-MAX_ANSWER_CHARS * 5 :])
        if not blocks:
            return VerifierResult(0.0, False, status=VerifyStatus.NO_ANSWER, reason="no <answer> block")
        answer = blocks[-1][:MAX_ANSWER_CHARS]
        roles = extract_roles(answer, list(gold))
        if not roles:
            return VerifierResult(0.0, False, status=VerifyStatus.NO_ANSWER, reason="no roles in <answer>")
        right = sum(roles.get(name) == role for name, role in gold.items())
        extracted = ",".join(f"{n}={roles[n]}" for n in gold if n in roles)
        correct = right == len(gold)
        reward = right / len(gold) if partial_credit else float(correct)
        return VerifierResult(reward, correct, extracted=extracted, reason=f"{right}/{len(gold)} roles right")


register_verifier("logic")(LogicVerifier())
