"""ISO 8601 beside epoch ms: exact to the millisecond, placed beside its field, lenient with stored documents."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from core.contracts.times import iso_ms, signal_document, tick_document, with_iso


@given(st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999))
def test_iso_is_the_utc_time_of_the_millisecond(ms):
    text = iso_ms(ms)
    assert text.endswith("Z") and len(text) == len("2025-11-21T04:40:00.123Z")
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo == UTC
    assert (parsed - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1) == ms


def test_a_signal_gets_an_iso_string_right_after_each_time():
    signal = {"id": "a", "event_time": 1_763_700_000_123, "updated_at": 1_763_700_001_000, "closed_at": None,
              "status": "open", "detected_at": 1_763_700_000_130, "profit_bps": 3.5}
    shown = signal_document(signal)
    assert list(shown) == ["id", "event_time", "event_time_iso", "updated_at", "updated_at_iso", "closed_at",
                           "closed_at_iso", "status", "detected_at", "detected_at_iso", "profit_bps"]
    assert shown["event_time_iso"] == "2025-11-21T04:40:00.123Z"
    assert shown["closed_at_iso"] is None
    assert signal == {"id": "a", "event_time": 1_763_700_000_123, "updated_at": 1_763_700_001_000,
                      "closed_at": None, "status": "open", "detected_at": 1_763_700_000_130, "profit_bps": 3.5}


def test_the_ticks_of_a_rule_match_get_theirs():
    tick = {"venue": "binance", "symbol": "BTC/USDT", "bid": 1.0, "ask": 1.1, "ts": 1_763_700_000_000}
    shown = signal_document({"type": "rule", "event_time": tick["ts"], "events": {"rise": [tick], "fall": []}})
    assert shown["events"] == {"rise": [{**tick, "ts_iso": "2025-11-21T04:40:00.000Z"}], "fall": []}
    assert tick_document(tick)["ts_iso"] == "2025-11-21T04:40:00.000Z"


def test_a_stored_time_that_is_no_epoch_ms_gets_a_null_string_not_an_error():
    shown = with_iso({"ts": "yesterday", "at": 10**20, "n": 1.5, "ok": 0}, ("ts", "at", "n", "ok"))
    assert shown == {"ts": "yesterday", "ts_iso": None, "at": 10**20, "at_iso": None, "n": 1.5, "n_iso": None,
                     "ok": 0, "ok_iso": "1970-01-01T00:00:00.000Z"}
    assert signal_document({"events": {"a": ["not a tick"]}, "event_time": None}) == {
        "events": {"a": ["not a tick"]}, "event_time": None, "event_time_iso": None}
