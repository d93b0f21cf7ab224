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


def test_replayed_step_with_two_ranks_loses_no_slice() -> None:
    """Rank 0 took step 0, then the worker group restarted before rank 1 took its slice: rank 1's slice was
    never trained, so it must go back to the queue, and accounting must balance."""
    core = BufferCore()
    first = trajs(4)
    core.put(first)
    a = core.try_take(0, 0, 2, 4, 0, 0)
    assert a == first[0:4:2]
    core.put(trajs(4))
    again = core.try_take(0, 0, 2, 4, 0, 0)  # the restarted rank 0 asks for step 0 again
    b = core.try_take(0, 1, 2, 4, 0, 0)
    assert again is not None and b is not None
    assert core.replayed_steps == 1
    c = core.counters()
    # 8 put: 2 (first take) + 4 (replayed batch) trained, the 2 never-taken ones went back to the queue.
    assert c["trained"] == 6 and c["queued"] == 2
    assert c["put"] == c["trained"] + c["queued"] + c["dropped_stale"]
    assert {t.traj_id for t in first[1:4:2]} <= {t.traj_id for t in core.queue} | {
        t.traj_id for t in again + b
    }


def test_new_epoch_drops_the_lost_branch_and_keeps_the_common_past() -> None:
    """A learner restarted from the checkpoint at version 2 republishes under epoch 1: samples of epoch 0
    with version <= 2 are the same policy's (kept), versions 3..4 came from weights that no longer exist."""
    core = BufferCore()
    common, lost = trajs(2, version=2), trajs(4, version=4)
    fresh = trajs(2, version=2)
    for t in fresh:
        t.sample.weight_epoch = 1
    core.put(common + lost + fresh)
    got = core.try_take(2, 0, 1, 4, current_version=2, max_staleness=1, epoch=1)
    assert got == common + fresh
    c = core.counters()
    assert c["dropped_lost_branch"] == 4 and c["dropped_stale"] == 4 and c["epoch"] == 1


def test_untaken_slices_count_as_queued_at_stop() -> None:
    core = BufferCore()
    core.put(trajs(4))
    core.try_take(0, 0, 2, 4, 0, 0)
    c = core.counters()
    assert c["trained"] == 2 and c["queued"] == 2  # rank 1's slice: assembled, never trained


def test_restart_is_recorded_with_the_first_batch_of_the_new_epoch() -> None:
    core = BufferCore()
    assert core.try_take(2, 0, 1, 2, current_version=2, max_staleness=1, epoch=1) is None  # no data yet
    fresh = trajs(2, version=2)
    for t in fresh:
        t.sample.weight_epoch = 1
    core.put(fresh)
    assert core.try_take(2, 0, 1, 2, current_version=2, max_staleness=1, epoch=1) == fresh
    (restart,) = core.counters()["restarts"]
    assert restart == {
        "epoch": 1,
        "fork_version": 2,
        "step": 2,
        "sample_epochs": [1],
        "old_epoch_max_version": -1,
    }
