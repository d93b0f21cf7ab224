"""Typed records that cross component boundaries.

In: nothing. Out: the dataclasses every component speaks (prompt, sample, trajectory,
verifier result, weight version). Tensors never appear here: these records travel
through the Ray object store between processes, so they stay plain Python.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class VerifyStatus(str, Enum):
    OK = "ok"
    NO_ANSWER = "no_answer"
    TIMEOUT = "timeout"
    ERROR = "error"


@dataclass
class VerifierResult:
    """What a verifier says about one response."""

    reward: float
    correct: bool
    extracted: str | None = None
    status: VerifyStatus = VerifyStatus.OK
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "reward": self.reward,
            "correct": self.correct,
            "extracted": self.extracted,
            "status": self.status.value,
            "reason": self.reason,
        }


@dataclass
class Prompt:
    """One training or evaluation problem."""

    text: str
    ground_truth: str
    data_source: str = "math"
    metadata: dict[str, Any] = field(default_factory=dict)
    prompt_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    n_tokens: int | None = None  # the rendered prompt's length, where the loader counted it


@dataclass
class WeightVersion:
    """A monotonically increasing tag for a set of policy weights."""

    version: int
    step: int = 0


@dataclass
class Sample:
    """One generated response, as a generator returns it."""

    prompt_ids: list[int]
    response_ids: list[int]
    response_text: str
    behaviour_logprobs: list[float]
    finish_reason: str
    weight_version: int
    weight_epoch: int = 0  # bumped when a learner restarts from a checkpoint: versions then repeat

    @property
    def truncated(self) -> bool:
        """Cut at generator.max_tokens (no EOS or stop string)."""
        return self.finish_reason == "length"


@dataclass
class Trajectory:
    """A verified sample with its reward, ready for a learner."""

    prompt: Prompt
    sample: Sample
    group_id: str
    result: VerifierResult
    advantage: float = 0.0
    traj_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    trainable: bool = (
        True  # False: accounted as trained, but its tokens are masked out of the loss (overlong)
    )

    @property
    def reward(self) -> float:
        return self.result.reward

    @property
    def weight_version(self) -> int:
        return self.sample.weight_version
