"""Watermarks: bounded out-of-orderness, idle sources, late events on the side output."""
from __future__ import annotations

from core.cep.eventtime import Reorderer


def test_out_of_order_events_leave_in_event_time_order():
    r = Reorderer(out_of_orderness_ms=100)
    out = []
    for ts in (1000, 1050, 1020, 1200, 1110, 1400):
        out += r.push("venue", ts, ts, now_ms=0)
    assert out == [1000, 1020, 1050, 1110, 1200]  # 1400 waits until the watermark passes it
    assert r.watermark == 1400 - 100 - 1


def test_late_events_go_to_the_side_output_and_are_counted():
    r = Reorderer(out_of_orderness_ms=10)
    r.push("v", 1000, "a", now_ms=0)
    r.push("v", 1100, "b", now_ms=0)
    assert r.push("v", 1050, "late", now_ms=0) == []
    assert r.late_count == 1 and r.take_late() == ["late"] and r.take_late() == []


def test_the_slowest_active_source_holds_the_watermark():
    r = Reorderer(out_of_orderness_ms=0, idle_timeout_ms=1_000)
    assert r.push("fast", 1000, "f1", now_ms=0) == ["f1"]
    assert r.push("slow", 1000, "s1", now_ms=0) == []
    assert r.push("fast", 2000, "f2", now_ms=10) == []
    assert r.push("slow", 1500, "s2", now_ms=20) == ["s1"]
    assert r.push("slow", 2100, "s3", now_ms=30) == ["s2"]
    assert r.push("fast", 2500, "f3", now_ms=40) == ["f2"]


def test_an_event_behind_the_watermark_of_another_source_is_late():
    r = Reorderer(out_of_orderness_ms=0)
    r.push("fast", 1000, "f1", now_ms=0)
    assert r.push("slow", 900, "s1", now_ms=0) == [] and r.take_late() == ["s1"]


def test_an_idle_source_does_not_stall_time():
    r = Reorderer(out_of_orderness_ms=0, idle_timeout_ms=1_000)
    r.push("a", 1000, "a1", now_ms=0)
    r.push("b", 1000, "b1", now_ms=0)
    assert r.push("a", 5000, "a2", now_ms=100) == []
    assert r.advance(now_ms=500) == []  # b has been quiet 500 ms: still active, still holds time back
    assert r.advance(now_ms=1_050) == ["b1"]  # b idle: a alone sets the watermark (4999)
    assert r.watermark == 4999
    assert r.advance(now_ms=1_200) == ["a2"]  # everyone idle: nothing more expected, release all


def test_snapshot_restores_held_events():
    r = Reorderer(out_of_orderness_ms=100)
    r.push("v", 1000, "x", now_ms=0)
    restored = Reorderer.restore(r.snapshot())
    assert restored.push("v", 1200, "y", now_ms=0) == ["x"]
