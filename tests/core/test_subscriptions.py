"""The live protocol's pure part: requests parsed or refused by name, matching, and a client's Outbox."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.subscriptions import (
    MAX_NAMES,
    Outbox,
    Overflow,
    PriceBatch,
    PriceSubscription,
    PriceWindow,
    ProtocolError,
    SignalFacts,
    SignalSubscription,
    parse_request,
)

SYMBOLS = ["BTC/USDT", "ETH/USDT", "ETH/BTC", "EUR/USD"]
VENUES = ["binance", "kraken", "okx", "fx_a"]
TYPES = ["cross_exchange", "triangular", "direct", "rule"]


def names(values):
    return st.none() | st.frozensets(st.sampled_from(values))


price_subscriptions = st.builds(PriceSubscription, names(SYMBOLS), names(VENUES))
signal_subscriptions = st.builds(SignalSubscription, names(TYPES), names(SYMBOLS), names(VENUES),
                                 st.none() | st.floats(-100, 100, allow_nan=False))


@given(st.one_of(price_subscriptions, signal_subscriptions))
def test_a_subscription_reads_back_from_what_it_says_it_is(subscription):
    assert parse_request(json.dumps({"kind": subscription.KIND, **subscription.to_json()})) == subscription


def test_fields_left_out_mean_any():
    assert parse_request('{"kind": "subscribe_prices"}') == PriceSubscription()
    assert parse_request('{"kind": "subscribe_signals", "symbols": null}') == SignalSubscription()
    assert parse_request('{"kind": "subscribe_prices", "symbols": []}') == PriceSubscription(symbols=frozenset())


@pytest.mark.parametrize(("text", "field", "says"), [
    ("not json", None, "not JSON"),
    ("[1]", None, "a request must be a JSON object, got list"),
    ('{"symbols": []}', "kind", "missing field 'kind'"),
    ('{"kind": "subscribe_trades"}', "kind", "unknown kind 'subscribe_trades': expected one of subscribe_prices"),
    ('{"kind": ["x"]}', "kind", "unknown kind \"['x']\""),
    ('{"kind": "subscribe_prices", "symbol": ["BTC/USDT"]}', "symbol",
     "subscribe_prices: unknown field 'symbol': expected symbols, venues"),
    ('{"kind": "subscribe_prices", "symbols": "BTC/USDT"}', "symbols",
     "'symbols' must be a list, or null for any, got str"),
    ('{"kind": "subscribe_prices", "symbols": ["BTC/USDT", "btc-usdt"]}', "symbols",
     "symbols[1]: field 'symbol' must be BASE/QUOTE in upper case, got 'btc-usdt'"),
    ('{"kind": "subscribe_signals", "venues": ["Binance"]}', "venues", "venues[0]: field 'venue' must be"),
    ('{"kind": "subscribe_signals", "types": ["cross"]}', "types",
     "types[0]: 'cross' is not a signal type: expected one of cross_exchange, direct, rule, triangular"),
    ('{"kind": "subscribe_signals", "min_profit_bps": "5"}', "min_profit_bps",
     "'min_profit_bps' must be a finite number of basis points, or null for none, got '5'"),
    ('{"kind": "subscribe_signals", "min_profit_bps": true}', "min_profit_bps", "got 'True'"),
    (json.dumps({"kind": "subscribe_prices", "venues": ["okx"] * (MAX_NAMES + 1)}), "venues",
     f"'venues' has {MAX_NAMES + 1} entries, at most {MAX_NAMES}"),
])
def test_a_bad_request_is_refused_naming_the_field(text, field, says):
    with pytest.raises(ProtocolError) as refused:
        parse_request(text)
    assert says in str(refused.value)
    reply = refused.value.reply()
    assert reply["kind"] == "error" and reply["field"] == field and reply["error"] == str(refused.value)


def tick(venue, symbol, ts=1):
    return {"venue": venue, "symbol": symbol, "bid": 1.0, "ask": 1.1, "ts": ts}


def test_a_price_subscription_takes_its_symbols_on_its_venues_only():
    btc_on_binance = PriceSubscription(frozenset({"BTC/USDT"}), frozenset({"binance"}))
    taken = [(v, s) for v in VENUES for s in SYMBOLS if btc_on_binance.matches(tick(v, s))]
    assert taken == [("binance", "BTC/USDT")]
    assert not PriceSubscription(symbols=frozenset()).matches(tick("binance", "BTC/USDT"))


@given(st.lists(st.tuples(st.sampled_from(VENUES), st.sampled_from(SYMBOLS)), unique=True),
       st.lists(price_subscriptions, max_size=5))
def test_a_window_gives_each_subscription_the_ticks_it_matches(places, wanted):
    window = PriceWindow({f"{v}:{s}": tick(v, s) for v, s in places})
    for subscription in wanted:  # several on one window: its index is built once and shared
        assert window.select(subscription) == {k: t for k, t in window.ticks.items() if subscription.matches(t)}


CROSS = {"type": "cross_exchange", "profit_bps": 4.0,
         "legs": [{"venue": "kraken", "symbol": "BTC/USDT", "side": "buy", "price": 1.0},
                  {"venue": "binance", "symbol": "BTC/USDT", "side": "sell", "price": 1.1}]}
TRIANGULAR = {"type": "triangular", "profit_bps": 9.0,
              "legs": [{"venue": "okx", "symbol": s, "side": "buy", "price": 1.0}
                       for s in ("BTC/USDT", "ETH/BTC", "ETH/USDT")]}
PARTITIONED_RULE = {"type": "rule", "profit_bps": 0.0, "legs": [], "key": "ETH/USDT@okx", "rule_id": "r"}
PATTERN_RULE = {"type": "rule", "profit_bps": 0.0, "legs": [], "rule_id": "p",
                "events": {"a": [tick("kraken", "EUR/USD")], "b": [tick("fx_a", "EUR/USD")]}}
CONDITION_RULE = {"type": "rule", "profit_bps": 0.0, "legs": [], "rule_id": "c"}  # names no symbol or venue


@pytest.mark.parametrize(("subscription", "matched"), [
    (SignalSubscription(), ["cross", "triangular", "partitioned", "pattern", "condition"]),
    (SignalSubscription(types=frozenset({"cross_exchange", "triangular"})), ["cross", "triangular"]),
    (SignalSubscription(venues=frozenset({"binance"})), ["cross"]),  # any leg on binance
    (SignalSubscription(symbols=frozenset({"ETH/USDT"})), ["triangular", "partitioned"]),
    (SignalSubscription(venues=frozenset({"okx"}), symbols=frozenset({"ETH/BTC"})), ["triangular"]),
    (SignalSubscription(symbols=frozenset({"EUR/USD"}), venues=frozenset({"fx_a"})), ["pattern"]),
    # rules carry no profit: a minimum applies to arbitrage only
    (SignalSubscription(min_profit_bps=5.0), ["triangular", "partitioned", "pattern", "condition"]),
    (SignalSubscription(min_profit_bps=4.0, types=frozenset({"cross_exchange"})), ["cross"]),
    (SignalSubscription(types=frozenset()), []),
])
def test_a_signal_subscription_takes_types_places_and_profit(subscription, matched):
    signals = {"cross": CROSS, "triangular": TRIANGULAR, "partitioned": PARTITIONED_RULE, "pattern": PATTERN_RULE,
               "condition": CONDITION_RULE}
    assert [name for name, signal in signals.items() if subscription.matches(SignalFacts.of(signal))] == matched


@pytest.mark.parametrize(("document", "says"), [
    ([1], "a signal must be a JSON object, got list"),
    ({"profit_bps": 1.0}, "signal field 'type' must be a string, got NoneType"),
    ({"type": "direct", "profit_bps": "high"}, "signal field 'profit_bps' must be a number, got str"),
    ({"type": "direct", "legs": [{"venue": "okx"}]}, "signal legs, events or key unreadable: KeyError: 'symbol'"),
    ({"type": "rule", "events": [1]}, "signal legs, events or key unreadable: AttributeError"),
])
def test_a_document_that_is_no_signal_is_named(document, says):
    with pytest.raises(ValueError, match="^" + says.replace("(", r"\(").replace(")", r"\)")):
        SignalFacts.of(document)


def test_messages_are_never_dropped_and_past_the_bound_the_client_is_too_slow():
    outbox: Outbox[str] = Outbox(max_messages=3, max_prices=10)
    for text in "abc":
        outbox.put(text)
    with pytest.raises(Overflow, match="3 messages waiting, at most 3"):
        outbox.put("d")
    assert [outbox.take() for _ in range(4)] == ["a", "b", "c", None]


def test_a_held_outbox_gives_nothing_and_its_release_goes_first():
    outbox: Outbox[str] = Outbox(10, 10)
    outbox.hold()
    outbox.put("signal meanwhile")
    outbox.offer_prices({"okx:BTC/USDT": tick("okx", "BTC/USDT")})
    assert outbox.take() is None
    outbox.release("reply")
    assert [outbox.take(), outbox.take(), outbox.take()] == [
        "reply", "signal meanwhile", PriceBatch([tick("okx", "BTC/USDT")], 0)]


KEYS = [f"{v}:{s}" for v in VENUES[:3] for s in SYMBOLS[:3]]
ops = st.lists(st.one_of(
    st.tuples(st.just("prices"), st.lists(st.sampled_from(KEYS), unique=True)),
    st.tuples(st.just("message"), st.text(max_size=3)),
    st.tuples(st.just("take"), st.none())), max_size=60)


@given(ops, st.integers(1, len(KEYS) + 2))
def test_an_outbox_loses_only_old_prices_and_counts_each(operations, max_prices):
    """Every tick offered is sent, pending or counted lost; messages come in order; no batch names a key twice;
    and while the keys fit, each key's newest tick is sent."""
    outbox: Outbox[str] = Outbox(max_messages=1000, max_prices=max_prices)
    offered = sent = 0
    newest: dict[str, int] = {}
    messages_in, messages_out, last_sent = [], [], {}
    ts = 0

    def take():
        nonlocal sent
        item = outbox.take()
        if isinstance(item, PriceBatch):
            keys = [f"{t['venue']}:{t['symbol']}" for t in item.ticks]
            assert len(keys) == len(set(keys)) and 0 < len(keys) <= max_prices
            assert item.dropped == outbox.dropped
            sent += len(keys)
            last_sent.update((k, t["ts"]) for k, t in zip(keys, item.ticks))
        elif item is not None:
            messages_out.append(item)
        return item

    for op, arg in operations:
        if op == "prices":
            ts += 1
            batch = {key: tick(*key.split(":"), ts=ts) for key in arg}
            outbox.offer_prices(batch)
            offered += len(batch)
            newest.update(dict.fromkeys(arg, ts))
        elif op == "message":
            outbox.put(arg)
            messages_in.append(arg)
        else:
            take()
        assert offered == sent + outbox.dropped + outbox.pending_prices
    while take() is not None:
        pass
    assert offered == sent + outbox.dropped
    assert messages_out == messages_in
    if len(newest) <= max_prices:
        assert last_sent == newest
