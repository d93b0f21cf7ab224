"""Early warnings for a run that cannot learn.

In: each step's verifier results. Out: after the first `window` steps, one warning line (or an
`RlvrRunError` with trainer.fail_on_no_answer) when nearly every response had no extractable answer
(e.g. an instruct model run without its chat template answers with a bare EOS: every reward is 0,
every advantage 0, the loss exactly 0, and the run would otherwise report success).
"""

from __future__ import annotations

from rlvr.errors import RlvrRunError
from rlvr.types import Trajectory, VerifyStatus


class NoAnswerMonitor:
    def __init__(self, threshold: float, fail: bool, window: int = 3) -> None:
        self.threshold, self.fail, self.window = threshold, fail, window
        self.steps, self.total, self.no_answer = 0, 0, 0
        self.example: str | None = None
        self.done = False

    def observe(self, trajs: list[Trajectory]) -> str | None:
        """Returns the warning once, when it applies; raises instead with `fail`."""
        if self.done or not trajs:
            return None
        self.steps += 1
        self.total += len(trajs)
        for t in trajs:
            if t.result.status == VerifyStatus.NO_ANSWER:
                self.no_answer += 1
                self.example = self.example or t.sample.response_text
        if self.steps < self.window:
            return None
        self.done = True
        rate = self.no_answer / max(self.total, 1)
        if rate <= self.threshold:
            return None
        msg = (
            f"{rate:.0%} of the responses in the first {self.steps} steps had no answer the verifier could "
            f"extract, so nothing can be learned (check data.chat_template, data.prompt_template and "
            f"generator.max_tokens); a sample response: {(self.example or '')[:160]!r}"
        )
        if self.fail:
            raise RlvrRunError(msg + " (trainer.fail_on_no_answer=true)")
        return msg
