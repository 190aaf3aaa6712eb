"""Binance's U/u rules for depth diffs against a REST snapshot (core/books/diff_sync.py)."""
from __future__ import annotations

import pytest

from core.books.diff_sync import DiffSync, OutOfSequence


def test_diffs_wait_for_the_snapshot_then_stale_ones_are_dropped():
    sync: DiffSync[str] = DiffSync()
    assert [sync.diff(u - 2, u, f"d{u}") for u in (100, 103, 106)] == [[], [], []]
    assert (sync.synced, sync.buffered) == (False, 3)
    # lastUpdateId 102: d100 (u=100) is stale, d103 (U=101 <= 103 <= u=103) is the first, d106 follows it.
    assert sync.snapshot(102) == ["d103", "d106"]
    assert (sync.synced, sync.last, sync.buffered) == (True, 106, 0)
    assert sync.diff(107, 109, "d109") == ["d109"]
    assert sync.diff(105, 108, "old") == []  # u <= last: already in the book
    assert sync.last == 109


def test_the_first_diff_must_straddle_the_snapshot():
    sync: DiffSync[str] = DiffSync()
    sync.diff(105, 110, "late")
    with pytest.raises(OutOfSequence, match=r"U=105 u=110 after update id 102 breaks U <= lastUpdateId \+ 1 <= u"):
        sync.snapshot(102)  # 103 and 104 were never seen
    assert not sync.synced and sync.buffered == 0


def test_a_snapshot_newer_than_every_buffered_diff_waits_for_the_next_one():
    sync: DiffSync[str] = DiffSync()
    sync.diff(1, 5, "d5")
    assert sync.snapshot(9) == []
    assert sync.diff(8, 12, "d12") == ["d12"]  # the first after it may start before lastUpdateId + 1
    assert sync.diff(13, 13, "d13") == ["d13"]


def test_a_gap_after_syncing_is_out_of_sequence_and_waits_again():
    sync: DiffSync[str] = DiffSync()
    sync.snapshot(10)
    assert sync.diff(11, 12, "d12") == ["d12"]
    with pytest.raises(OutOfSequence, match=r"U=14 u=15 after update id 12 breaks U == previous u \+ 1"):
        sync.diff(14, 15, "d15")
    assert not sync.synced
    assert sync.diff(16, 17, "d17") == []  # buffered for the next snapshot
    assert sync.buffered == 1


def test_an_overlapping_diff_after_the_first_is_out_of_sequence():
    sync: DiffSync[str] = DiffSync()
    sync.snapshot(10)
    sync.diff(9, 12, "d12")
    with pytest.raises(OutOfSequence, match="U=12 u=14"):
        sync.diff(12, 14, "d14")


def test_a_full_buffer_drops_the_oldest_and_the_first_diff_rule_catches_the_loss():
    sync: DiffSync[str] = DiffSync(max_buffered=2)
    for u in (11, 12, 13):
        sync.diff(u, u, f"d{u}")
    assert sync.buffered == 2
    with pytest.raises(OutOfSequence, match="U=12 u=12 after update id 10"):
        sync.snapshot(10)


def test_a_diff_with_first_id_after_last_id_is_refused():
    with pytest.raises(OutOfSequence, match="U=5 > u=4"):
        DiffSync().diff(5, 4, None)
