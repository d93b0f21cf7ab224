"""TrajectoryBuffer logic (the plain `BufferCore`, no Ray): step batches, slices, staleness, accounting."""

from __future__ import annotations

import pytest

from rlvr.pipeline.buffer import BufferCore
from rlvr.types import Prompt, Sample, Trajectory, VerifierResult

pytestmark = pytest.mark.unit


def trajs(n: int, version: int = 0) -> list[Trajectory]:
    return [
        Trajectory(
            prompt=Prompt(text="q", ground_truth="a"),
            sample=Sample([1], [2], "r", [-1.0], "stop", version),
            group_id=f"g{i // 2}",
            result=VerifierResult(reward=0.0, correct=False),
        )
        for i in range(n)
    ]


def test_ranks_get_disjoint_slices_of_one_step_batch() -> None:
    core = BufferCore()
    items = trajs(8)
    core.put(items)
    a = core.try_take(0, 0, 2, 6, current_version=0, max_staleness=0)
    b = core.try_take(0, 1, 2, 6, current_version=0, max_staleness=0)
    assert a == items[0:6:2] and b == items[1:6:2]
    assert not {t.traj_id for t in a} & {t.traj_id for t in b}
    assert 0 not in core.batches  # freed once every rank has its slice
    assert core.counters()["trained"] == 6 and core.counters()["queued"] == 2


def test_waits_for_enough_data_then_assembles() -> None:
    core = BufferCore()
    core.put(trajs(3))
    assert core.try_take(0, 0, 1, 4, 0, 0) is None
    assert core.counters()["queued"] == 3  # nothing consumed by a failed attempt
    core.put(trajs(1))
    assert len(core.try_take(0, 0, 1, 4, 0, 0) or []) == 4


def test_stale_trajectories_are_dropped_and_counted() -> None:
    core = BufferCore()
    old, fresh = trajs(3, version=1), trajs(4, version=4)
    core.put(old + fresh)
    got = core.try_take(5, 0, 1, 4, current_version=5, max_staleness=1)
    assert got == fresh
    c = core.counters()
    assert c["dropped_stale"] == 3 and c["trained"] == 4


def test_filtered_counts_and_metrics_are_kept() -> None:
    core = BufferCore()
    core.count_filtered(["a", "b"])
    assert core.counters()["filtered"] == 2


def test_restarted_rank_gets_fresh_data_not_the_same_ids() -> None:
    core = BufferCore()
    core.put(trajs(8))
    first = core.try_take(3, 0, 2, 4, 0, 0)
    # Rank 0 restarted before rank 1 took step 3: asking again must not hand out the same ids.
    again = core.try_take(3, 0, 2, 4, 0, 0)
    assert first and again and not {t.traj_id for t in first} & {t.traj_id for t in again}
    c = core.counters()
    assert c["replayed_steps"] == 1 and c["double_trained"] == 0


def test_double_training_is_detected() -> None:
    core = BufferCore()
    items = trajs(2)
    core.put(items)
    core.try_take(0, 0, 1, 2, 0, 0)
    core.put(items)  # the same trajectories put twice (a controller bug)
    core.try_take(1, 0, 1, 2, 0, 0)
    c = core.counters()
    assert c["double_trained"] == 2 and set(c["double_trained_ids"]) == {t.traj_id for t in items}
