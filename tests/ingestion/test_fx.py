"""The Alpha Vantage poller against a local server answering in the API's real reply format."""
from __future__ import annotations

import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from ascep.services import free_port
from clients.kafka import EMBEDDED
from core.contracts.tick import tick_from_dict
from ingestion.fx_poller import FxPoller, PollError, RateLimited, TokenBucket, parse_exchange_rate
from ingestion.producer import TickProducer, Topics
from tests.ingestion.kafka_read import consume

NAMES = {"EUR": "Euro", "USD": "United States Dollar", "JPY": "Japanese Yen", "GBP": "British Pound Sterling"}
RATES = {("EUR", "USD"): ("1.08512000", "1.08519000"), ("USD", "JPY"): ("151.53100000", "151.53700000"),
         ("GBP", "USD"): ("1.26990000", "1.27010000")}
INVALID_CALL = ("Invalid API call. Please retry or visit the documentation "
                "(https://www.alphavantage.co/documentation/) for CURRENCY_EXCHANGE_RATE.")
DAILY_LIMIT = ("We have detected your API key as DEMO and our standard API rate limit is 25 requests per day. "
               "Please subscribe to any of the premium plans at https://www.alphavantage.co/premium/ to instantly "
               "remove all daily rate limits.")


def reply(base: str, quote: str, refreshed: str = "2024-04-12 19:41:01") -> bytes:
    bid, ask = RATES[(base, quote)]
    mid = f"{(float(bid) + float(ask)) / 2:.8f}"
    return orjson.dumps({"Realtime Currency Exchange Rate": {
        "1. From_Currency Code": base, "2. From_Currency Name": NAMES[base],
        "3. To_Currency Code": quote, "4. To_Currency Name": NAMES[quote],
        "5. Exchange Rate": mid, "6. Last Refreshed": refreshed, "7. Time Zone": "UTC",
        "8. Bid Price": bid, "9. Ask Price": ask}}, option=orjson.OPT_INDENT_2)


class AlphaVantage:
    """Answers CURRENCY_EXCHANGE_RATE like the real API; after `allowed` requests it says the limit is reached."""

    def __init__(self, allowed: int = 1_000) -> None:
        self.requests: list[tuple[float, dict]] = []
        self.allowed = allowed
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).items()}
                outer.requests.append((time.monotonic(), query))
                pair = (query.get("from_currency"), query.get("to_currency"))
                if len(outer.requests) > outer.allowed:
                    body = orjson.dumps({"Information": DAILY_LIMIT})
                elif query.get("function") != "CURRENCY_EXCHANGE_RATE" or query.get("apikey") != "demo-key" \
                        or pair not in RATES:
                    body = orjson.dumps({"Error Message": INVALID_CALL})
                else:
                    body = reply(*pair)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/query"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def topics(topic_prefix, make_topics) -> Topics:
    names = Topics(f"{topic_prefix}ticks", f"{topic_prefix}trades", f"{topic_prefix}deadletter")
    make_topics({names.ticks: 1, names.trades: 1, names.deadletter: 1})
    return names


def test_a_real_format_reply_becomes_a_tick():
    tick = parse_exchange_rate(reply("USD", "JPY"), "USD/JPY")
    assert tick == tick_from_dict({"venue": "alphavantage", "symbol": "USD/JPY", "bid": 151.531, "ask": 151.537,
                                   "ts": 1712950861000})


@pytest.mark.parametrize("body, symbol, reason", [
    (b"<html>", "EUR/USD", "not JSON"),
    (b'{"Error Message": "Invalid API call."}', "EUR/USD", "API error: Invalid API call."),
    (reply("EUR", "USD"), "EUR/JPY", "'3. To_Currency Code' is 'USD', asked for 'JPY'"),
    (reply("EUR", "USD").replace(b'"UTC"', b'"US/Eastern"'), "EUR/USD", "'7. Time Zone' must be 'UTC'"),
    (reply("EUR", "USD", refreshed="yesterday"), "EUR/USD", "'6. Last Refreshed' is not"),
    (reply("EUR", "USD").replace(b'"1.08512000"', b'"-1"'), "EUR/USD", "'bid' must be > 0"),
    (b'{"Meta Data": {}}', "EUR/USD", "missing object 'Realtime Currency Exchange Rate'"),
])
def test_bad_replies_are_named(body, symbol, reason):
    with pytest.raises(PollError) as caught:
        parse_exchange_rate(body, symbol)
    assert reason in str(caught.value)


def test_limit_replies_are_told_apart():
    with pytest.raises(RateLimited, match="25 requests per day"):
        parse_exchange_rate(orjson.dumps({"Information": DAILY_LIMIT}), "EUR/USD")


def test_token_bucket_never_exceeds_its_limit_in_any_window():
    clock = [0.0]
    bucket = TokenBucket(5, 60.0, clock=lambda: clock[0])
    taken = []
    while clock[0] < 600:
        if bucket.wait_s() == 0:
            bucket.take()
            taken.append(clock[0])
        clock[0] += 0.25
    assert max(sum(1 for t in taken if start <= t <= start + 60) for start in taken) == 5
    assert len(taken) == 40  # one at once, then one every 15 s: as many as the limit allows
    bucket.empty()
    assert bucket.wait_s() == pytest.approx(60.0)


def test_poller_keeps_to_the_limit_and_produces_real_rates(kafka, topics):
    api = AlphaVantage()
    stop = threading.Event()
    try:
        with TickProducer(kafka, EMBEDDED, topics=topics) as producer:
            poller = FxPoller("demo-key", ["EUR/USD", "USD/JPY", "EUR/CHF"], producer, url=api.url,
                              limits=[(3, 1.0)])
            threading.Timer(2.2, stop.set).start()
            poller.run(stop)
    finally:
        api.close()
    times = [t for t, _ in api.requests]
    assert len(times) == 5 and max(sum(1 for t in times if s <= t <= s + 1.0) for s in times) <= 3
    # EUR/USD, USD/JPY, EUR/CHF (refused), then EUR/USD and USD/JPY again with the same refresh time
    assert poller.counts.ticks == 2 and poller.counts.unchanged == 2 and poller.counts.deadletters == 1
    ticks = [tick_from_dict(orjson.loads(v)) for v in consume(kafka, topics.ticks, 2)]
    assert [(t.symbol, t.bid, t.ask) for t in ticks] == [("EUR/USD", 1.08512, 1.08519), ("USD/JPY", 151.531, 151.537)]
    letters = [orjson.loads(v) for v in consume(kafka, topics.deadletter, 1)]
    assert [d["reason"] for d in letters] == ["EUR/CHF: API error: " + INVALID_CALL[:200]]
    assert all("Invalid API call" in d["frame"] and d["venue"] == "alphavantage" for d in letters)


def test_a_limit_reply_stops_the_requests_until_the_budget_refills(kafka, topics):
    api = AlphaVantage(allowed=1)
    stop = threading.Event()
    try:
        with TickProducer(kafka, EMBEDDED, topics=topics) as producer:
            poller = FxPoller("demo-key", ["EUR/USD", "GBP/USD"], producer, url=api.url, limits=[(5, 1.0)])
            threading.Timer(1.0, stop.set).start()
            poller.run(stop)
    finally:
        api.close()
    assert poller.counts.ticks == 1 and poller.counts.rate_limited == 1 and poller.counts.deadletters == 0
    assert len(api.requests) == 2  # t=0 answered, t=0.25 refused, then a whole window (1 s) of silence
