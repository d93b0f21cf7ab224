"""`LeanTorchTrainer`: Ray Train's `TorchTrainer` without helper actors a run of rlvr cannot use.

Ray Train 2.60 starts two helper actors for every run, each one more Python process (about 0.11 GiB):
- a `DatasetManager`, also when no Ray Dataset is passed (rlvr's learners pull from the trajectory
  buffer, never from Ray Data);
- a detached `PlacementGroupCleaner` that watches the controller through the state API. The state API is
  served by the dashboard; with the dashboard off (rlvr's local default) every check fails and the run's
  log gets a "Failed to query Ray Train Controller actor state" line every few seconds (80-100 per
  SmolLM2 run). Where a dashboard runs, the cleaner is kept.
The callbacks that start them are dropped from the trainer's defaults. If a Ray release renames the hook
overridden here, the override is never called and Ray's defaults apply: nothing breaks.
"""

from __future__ import annotations

from typing import Any

from ray.train.torch import TorchTrainer


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
    def _create_default_callbacks(self) -> list[Any]:
        callbacks = list(super()._create_default_callbacks())  # type: ignore[misc]
        unused = unused_callbacks(callbacks, bool(getattr(self, "datasets", None)), dashboard_running())
        return [cb for cb in callbacks if cb not in unused]
