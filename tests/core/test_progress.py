"""Progress reports: throttled, yet never late when a reader moves after a pause; ends only rise. The progress
line: on a terminal only."""
from __future__ import annotations

import io
import os

import pytest

from core.progress import (
    Progress,
    ProgressClock,
    ProgressLine,
    TopicEnds,
    behind,
    read_ends,
    read_progress,
    unread_by_stage,
)


def test_a_reader_reports_on_its_first_poll_then_about_once_a_second():
    clock = ProgressClock(every_ms=1_000)
    assert clock.poll(0, 10_000) == Progress(0, 10_000, 10_000)
    assert [clock.poll(offset, 10_000 + dt) for offset, dt in ((5, 300), (9, 600), (9, 900))] == [None] * 3
    assert clock.poll(12, 11_000) == Progress(12, 11_000, 11_000)
    assert clock.poll(12, 12_500) == Progress(12, 11_000, 12_500)  # idle: advanced_at stays, polled_at moves


def test_a_reader_that_moves_after_a_pause_reports_at_once():
    clock = ProgressClock(every_ms=1_000)
    clock.poll(7, 0)
    clock.poll(7, 1_000)
    assert clock.poll(7, 1_500) is None
    assert clock.poll(8, 1_600) == Progress(8, 1_600, 1_600)  # had not moved for 1.6 s: no waiting for the throttle


def test_topic_ends_come_from_delivery_reports_and_never_go_back():
    ends = TopicEnds()
    for partition, offset in ((0, 4), (0, 2), (1, 0)):
        ends.delivered("ticks", partition, offset)
    assert ends.take() == {"ticks:0": 5, "ticks:1": 1}
    assert ends.take() == {}
    ends.delivered("ticks", 0, 3)
    assert ends.take() == {}


def test_the_hashes_read_back_and_a_bad_entry_is_named():
    progress = read_progress({b"read:ticks:0".decode(): b'{"next": 5, "advanced_at": 1, "polled_at": 2}'})
    assert progress == {("read", "ticks", 0): Progress(5, 1, 2)}
    assert read_ends({"ticks:0": b"9"}) == {("ticks", 0): 9}
    with pytest.raises(ValueError, match="progress entry 'read:ticks:0' is not JSON"):
        read_progress({"read:ticks:0": b'{"next": 5}'})
    with pytest.raises(ValueError, match="field 'ticks' is not <topic>:<partition>"):
        read_ends({"ticks": b"9"})


def test_behind_counts_what_each_stage_still_has_to_reach():
    progress = {("read", "ticks", 0): Progress(10, 0, 0), ("lake", "ticks", 0): Progress(4, 0, 0)}
    ends = {("ticks", 0): 10, ("signals", 0): 2}
    assert behind(progress, ends, {"read": ("ticks",), "lake": ("ticks", "signals")}) == \
        {("lake", "ticks", 0): 6, ("lake", "signals", 0): 2}


def test_the_unread_records_of_a_stage_are_summed_over_its_topics_partitions():
    stages = {"read": ("ticks",), "lake": ("ticks", "signals")}
    progress = {("read", "ticks", 0): Progress(10, 0, 0), ("read", "ticks", 1): Progress(3, 0, 0),
                ("lake", "ticks", 0): Progress(4, 0, 0), ("rules", "rules", 0): Progress(1, 0, 0)}
    # ticks:2 has an end but no reader's place yet: all of it is unread; a place beyond the end is nothing unread
    ends = {("ticks", 0): 10, ("ticks", 1): 8, ("ticks", 2): 7, ("signals", 0): 2}
    assert unread_by_stage(progress, ends, stages) == ({"read": 0 + 5 + 7, "lake": 6 + 8 + 7 + 2}, {})
    assert unread_by_stage({("read", "ticks", 0): Progress(12, 0, 0)}, {("ticks", 0): 10}, stages) == \
        ({"read": 0}, {"lake": "stage lake reported no place on ticks, signals in ascep:progress"})


def test_a_stage_without_a_place_or_without_ends_has_no_figure_and_says_why():
    stages = {"read": ("ticks",)}
    assert unread_by_stage({}, {("ticks", 0): 10}, stages) == \
        ({}, {"read": "stage read reported no place on ticks in ascep:progress"})
    assert unread_by_stage({("read", "signals", 0): Progress(1, 0, 0)}, {("ticks", 0): 10}, stages)[0] == {}, \
        "a place on another topic is no place on the stage's"
    assert unread_by_stage({("read", "ticks", 0): Progress(3, 0, 0)}, {("signals", 0): 4}, stages) == \
        ({}, {"read": "no producer reported an end of ticks in ascep:topic:ends"})


def test_the_progress_line_is_one_updating_line_on_a_terminal_and_silent_otherwise():
    master, slave = os.openpty()
    with os.fdopen(slave, "w") as terminal:
        ProgressLine("lines", terminal).update(10, 0.25)
    shown = os.read(master, 1000).decode()
    os.close(master)
    assert shown.startswith("\r10 lines") and shown.endswith(" 25.0%") and "\n" not in shown
    piped = io.StringIO()
    ProgressLine("lines", piped).update(10, 0.25)
    assert piped.getvalue() == ""
