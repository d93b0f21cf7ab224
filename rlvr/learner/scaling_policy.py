"""Ray Train's fixed scaling policy without autoscaler requests, for a local cluster rlvr started itself.

Such a cluster is one fixed node: nothing would scale it, so the requests (and the `_AutoscalingCoordinator`
actor they start) are waste. Kept apart from `rlvr.learner.trainer`, which imports torch through Ray's
`TorchTrainer`: Ray Train's controller unpickles this policy, and should not pay for torch (1.4 s of a core).
"""

from __future__ import annotations

from typing import Any

try:  # a private module: a Ray release that moves it keeps Ray's own policy
    from ray.train.v2._internal.execution.scaling_policy.fixed import FixedScalingPolicy

    class FixedNoAutoscalerPolicy(FixedScalingPolicy):  # type: ignore[misc]
        """Ray's fixed policy (always `num_workers`) that never asks an autoscaler for those workers."""

        def after_controller_start(self, train_run_context: Any) -> None:
            self._requester_id = f"train-{train_run_context.run_id}"

        def _maybe_send_resource_request(self) -> None:
            pass

        def _send_resource_request(self) -> None:
            pass

except ImportError:  # pragma: no cover - depends on the Ray release
    FixedScalingPolicy = FixedNoAutoscalerPolicy = None  # type: ignore[assignment,misc]
