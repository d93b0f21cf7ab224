"""`LeanTorchTrainer`: Ray Train's `TorchTrainer` without helper actors a run of rlvr cannot use.

Ray Train 2.60 starts three helper actors for every run, each one more Python process (about 0.11 GiB and
1-2 s of a core to start):
- a `DatasetManager`, also when no Ray Dataset is passed (rlvr's learners pull from the trajectory
  buffer, never from Ray Data);
- a detached `PlacementGroupCleaner` that watches the controller through the state API. The state API is
  served by the dashboard; with the dashboard off (rlvr's local default) every check fails and the run's
  log gets a "Failed to query Ray Train Controller actor state" line every few seconds (80-100 per
  SmolLM2 run). Where a dashboard runs, the cleaner is kept.
- an `_AutoscalingCoordinator`, to which the fixed scaling policy sends the workers' resource request for
  the cluster autoscaler. A local cluster rlvr started itself is one fixed node: nothing would scale it.
  `autoscaling=False` (the launcher's choice on such a cluster) gives the controller the same fixed policy
  without the requests (`rlvr.learner.scaling_policy`); on any other cluster Ray's own policy runs.
The callbacks that start the first two are dropped from the trainer's defaults. If a Ray release renames a
hook overridden here (or moves the fixed policy), the override is never called and Ray's defaults apply:
nothing breaks. tests/unit/test_lean_trainer.py builds against Ray's own classes, so it notices.
"""

from __future__ import annotations

from typing import Any

from ray.train.torch import TorchTrainer

from rlvr.learner.scaling_policy import FixedNoAutoscalerPolicy, FixedScalingPolicy


def dashboard_running() -> bool:
    """Whether this cluster serves the state API (a dashboard); True when it cannot be told."""
    try:
        import ray

        return bool(ray._private.worker.global_worker.node.webui_url)
    except Exception:  # noqa: BLE001 - a private attribute: when unreadable, keep Ray's default
        return True


def unused_callbacks(callbacks: list[Any], has_datasets: bool, has_state_api: bool) -> list[Any]:
    """The default callbacks whose helper actors would have nothing to do."""
    drop = set() if has_datasets else {"DatasetsCallback"}
    if not has_state_api:
        drop.add("PlacementGroupCleanerCallback")
    return [cb for cb in callbacks if type(cb).__name__ in drop]


class LeanTorchTrainer(TorchTrainer):
    def __init__(self, *args: Any, autoscaling: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._autoscaling = autoscaling

    def _initialize_and_run_controller(self, **controller_init_kwargs: Any) -> Any:
        policy = controller_init_kwargs.get("scaling_policy")
        # An elastic policy keeps its requests: it resizes through the autoscaler.
        if not self._autoscaling and FixedScalingPolicy is not None and type(policy) is FixedScalingPolicy:
            controller_init_kwargs["scaling_policy"] = FixedNoAutoscalerPolicy(policy.scaling_config)
        return super()._initialize_and_run_controller(**controller_init_kwargs)  # type: ignore[misc]

    def _create_default_callbacks(self) -> list[Any]:
        callbacks = list(super()._create_default_callbacks())  # type: ignore[misc]
        unused = unused_callbacks(callbacks, bool(getattr(self, "datasets", None)), dashboard_running())
        return [cb for cb in callbacks if cb not in unused]
