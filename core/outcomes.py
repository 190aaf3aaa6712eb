"""Whether a signal was real: how long its route stayed profitable by the quotes that followed, and what was
left of the profit after a reaction time (docs/outcomes.md).

Pure: signals (sorted by event_time) and one event-time ordered stream of quotes in, outcomes out. Prices come
from the detectors' own formulas (cross_exchange.net_profit_bps, cycles.cycle_profit_bps) with their fee and
minimum-profit settings, so an outcome disagrees with its signal only where the quotes did.
"""
from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.arbitrage.cross_exchange import net_profit_bps
from core.arbitrage.cycles import Step, cycle_profit_bps
from core.contracts.tick import Levels, Tick
from core.settings import ArbitrageSettings

DEFAULT_DELAYS_MS = (50, 250, 1_000, 5_000)
DEFAULT_HORIZON_MS = 60_000
PRICED = ("cross_exchange", "triangular", "direct")
LEG_COUNTS = {"cross_exchange": 2, "direct": 2, "triangular": 3}

Place = tuple[str, str]  # (venue, symbol)


def parse_delays(text: str) -> tuple[int, ...]:
    """`50,250,1000` -> (50, 250, 1000); ValueError naming the bad item."""
    delays = []
    for item in text.split(","):
        item = item.strip()
        if not item.isdigit():
            raise ValueError(f"delay {item!r} is not a whole number of milliseconds (e.g. --delays 50,250,1000)")
        delays.append(int(item))
    if not delays or len(set(delays)) != len(delays):
        raise ValueError(f"delays {text!r}: give distinct milliseconds, e.g. 50,250,1000,5000")
    return tuple(sorted(delays))


def vwap(levels: Levels, size: float) -> float:
    """The average price of taking `size` down `levels`, best first; where the levels the venue sent hold less,
    of taking all they hold."""
    cost = filled = 0.0
    for price, quantity in levels:
        take = min(quantity, size - filled)
        cost += take * price
        filled += take
        if filled >= size:
            break
    return cost / filled


def spend_vwap(levels: Levels, money: float) -> float:
    """The average price of spending `money` (quote) up `levels`, best first; where the levels hold less, of
    buying all they hold."""
    cost = bought = 0.0
    for price, quantity in levels:
        take = min(quantity, (money - cost) / price)
        cost += take * price
        bought += take
        if cost >= money * (1.0 - 1e-12):
            break
    return cost / bought


def walked_steps(steps: Sequence[Step], size: float) -> tuple[list[Step], bool]:
    """A cycle's legs priced at their VWAPs when `size` of its start currency goes round, walking each leg's book
    where its tick carries one (top of book otherwise), as the detectors size it (depth.cycle_vwaps); and whether
    any book was walked."""
    out: list[Step] = []
    amount, walked = size, False  # the current leg's input: base when selling, quote when buying
    for tick, side, fee in steps:
        if side == "sell":
            price = tick.bid if tick.bids is None else vwap(tick.bids, amount)
            out.append((tick._replace(bid=price), side, fee))
            amount *= price * (1.0 - fee)
            walked |= tick.bids is not None
        else:
            money = amount / (1.0 + fee)
            price = tick.ask if tick.asks is None else spend_vwap(tick.asks, money)
            out.append((tick._replace(ask=price), side, fee))
            amount = money / price
            walked |= tick.asks is not None
    return out, walked


def skip_reason(signal: Mapping[str, Any]) -> str | None:
    """Why a signal cannot be priced from quotes, or None when it can."""
    kind = signal["type"]
    if kind not in PRICED:
        return f"{kind} signal: no route to price (a rule's condition is not a trade)"
    if len(signal["legs"]) != LEG_COUNTS[kind]:
        return f"{kind} signal with {len(signal['legs'])} legs (expected {LEG_COUNTS[kind]})"
    return None


@dataclass
class Outcome:
    """One signal followed through the quotes after it; None where the quotes ran out first."""

    signal: Mapping[str, Any]
    places: tuple[Place, ...]
    fees: tuple[float, ...]
    min_profit_bps: float
    delays: tuple[int, ...]
    horizon_ms: int
    profit_at_detection_bps: float | None = None
    survival_ms: int | None = None  # None: still profitable at the horizon or the end of the data
    ended: bool = False  # survival decided
    available: dict[int, float | None] = field(default_factory=dict)  # delay -> bps at the quotes in force
    realised: dict[int, float | None] = field(default_factory=dict)  # delay -> bps once a leg quoted again
    depth_used: bool = False
    route: tuple = field(init=False)  # what its top-of-book profit depends on: signals of one route share it

    def __post_init__(self) -> None:
        self.route = (self.signal["type"], tuple((leg["venue"], leg["symbol"], leg["side"])
                                                 for leg in self.signal["legs"]))

    @property
    def event_time(self) -> int:
        return int(self.signal["event_time"])

    @property
    def done(self) -> bool:
        return self.ended and len(self.available) == len(self.delays) and len(self.realised) == len(self.delays)

    def top_profit(self, quotes: Mapping[Place, Tick]) -> float | None:
        """Top-of-book profit, the detector's own opening test; None while a leg has no quote."""
        return self._priced(quotes, None)

    def sized_profit(self, quotes: Mapping[Place, Tick]) -> float | None:
        """At the signal's size, walking the books where the ticks carry them."""
        return self._priced(quotes, self.signal.get("size"))

    def _priced(self, quotes: Mapping[Place, Tick], size: float | None) -> float | None:
        ticks = []
        for place in self.places:
            tick = quotes.get(place)
            if tick is None:
                return None
            ticks.append(tick)
        return self._profit(ticks, size)

    def _profit(self, ticks: Sequence[Tick], size: float | None) -> float:
        legs = self.signal["legs"]
        if self.signal["type"] == "cross_exchange":
            buy, sell = (ticks[0], ticks[1]) if legs[0]["side"] == "buy" else (ticks[1], ticks[0])
            buy_fee, sell_fee = self.fees if legs[0]["side"] == "buy" else self.fees[::-1]
            ask, bid = buy.ask, sell.bid
            if size:
                if buy.asks is not None:
                    ask = vwap(buy.asks, size)
                    self.depth_used = True
                if sell.bids is not None:
                    bid = vwap(sell.bids, size)
                    self.depth_used = True
            return net_profit_bps(ask, buy_fee, bid, sell_fee)
        steps: list[Step] = [(tick, leg["side"], fee) for tick, leg, fee in zip(ticks, legs, self.fees)]
        if size:
            steps, walked = walked_steps(steps, size)
            self.depth_used |= walked
        return cycle_profit_bps(steps)

    def record(self) -> dict[str, Any]:
        signal = self.signal
        legs = signal["legs"]
        if signal["type"] == "cross_exchange":  # buy->sell
            pair = "->".join(leg["venue"] for leg in sorted(legs, key=lambda leg: leg["side"] != "buy"))
        else:
            pair = "|".join(dict.fromkeys(leg["venue"] for leg in legs))
        return {
            "id": signal["id"], "type": signal["type"], "symbol": signal.get("symbol") or legs[0]["symbol"],
            "venues": pair, "event_time": self.event_time, "detected_at": signal.get("detected_at"),
            "size": signal.get("size"), "signal_profit_bps": signal["profit_bps"],
            "profit_at_detection_bps": _round(self.profit_at_detection_bps),
            "survival_ms": self.survival_ms, "survived_horizon": self.ended and self.survival_ms is None,
            "depth": "book" if self.depth_used else "top",
            "decay": [{"delay_ms": d, "available_bps": _round(self.available.get(d)),
                       "realised_bps": _round(self.realised.get(d))} for d in self.delays],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


class OutcomeTracker:
    """Follows signals through one event-time ordered quote stream. feed() a tick at a time (ts never going back),
    start() each signal once the stream reaches its event time (ticks at that time first); finished() yields the
    outcomes settled so far, finish() the rest at the end of the stream.

    A tick costs one profit per open route its place is a leg of (the signals of a route share it) plus the signals
    whose delay has just passed; delays and horizons come due off heaps, so signals merely waiting cost nothing."""

    def __init__(self, config: ArbitrageSettings, delays: Sequence[int] = DEFAULT_DELAYS_MS,
                 horizon_ms: int = DEFAULT_HORIZON_MS) -> None:
        if not delays or any(d < 0 for d in delays):
            raise ValueError(f"delays must be non-negative milliseconds, got {list(delays)}")
        if horizon_ms < max(delays):
            raise ValueError(f"horizon {horizon_ms} ms is shorter than the longest delay {max(delays)} ms")
        self.config = config
        self.delays = tuple(sorted(delays))
        self.horizon_ms = horizon_ms
        self.quotes: dict[Place, Tick] = {}
        self.live: dict[int, Outcome] = {}  # seq -> outcome not settled
        self.due: list[tuple[int, int, int, int | None]] = []  # heap: (moment, seq, order, delay; None: horizon)
        self.arming: list[tuple[int, int, int]] = []  # heap: (moment, seq, delay) a first quote after is awaited
        self.armed: dict[Place, dict[int, Outcome]] = {}  # place -> outcomes whose next tick there is realised
        self.routes: dict[tuple, dict[int, Outcome]] = {}  # route -> its outcomes still surviving
        self.routes_at: dict[Place, set[tuple]] = {}  # place -> the routes of `routes` it is a leg of
        self.settled: list[Outcome] = []
        self.skipped: dict[str, int] = {}
        self.now = -1
        self._seq = 0

    def skipped_one(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def start(self, signal: Mapping[str, Any]) -> None:
        """Begin following `signal`: the quotes fed so far are those in force at its event time."""
        reason = skip_reason(signal)
        if reason is not None:
            self.skipped_one(reason)
            return
        places = tuple((leg["venue"], leg["symbol"]) for leg in signal["legs"])
        outcome = Outcome(signal, places, tuple(self.config.fee(venue) for venue, _ in places),
                          self.config.thresholds(signal["type"]).min_profit_bps, self.delays, self.horizon_ms)
        profit = outcome.top_profit(self.quotes)
        if profit is None:
            missing = [f"{v}:{s}" for v, s in places if (v, s) not in self.quotes]
            self.skipped_one(f"no quote in the lake at its event time for a leg ({', '.join(missing)})")
            return
        outcome.profit_at_detection_bps = profit
        seq = self._seq = self._seq + 1
        self.live[seq] = outcome
        if profit <= outcome.min_profit_bps:
            outcome.survival_ms, outcome.ended = 0, True
        else:
            self.routes.setdefault(outcome.route, {})[seq] = outcome
            for place in places:
                self.routes_at.setdefault(place, set()).add(outcome.route)
        for order, delay in enumerate(outcome.delays):  # at one moment, the delays before the horizon
            heapq.heappush(self.due, (outcome.event_time + delay, seq, order, delay))
            heapq.heappush(self.arming, (outcome.event_time + max(delay, 1), seq, delay))  # ticks after its own
        heapq.heappush(self.due, (outcome.event_time + outcome.horizon_ms, seq, len(outcome.delays), None))

    def feed(self, tick: Tick) -> None:
        ts = tick.ts
        if ts < self.now:
            raise ValueError(f"quote {tick.venue}:{tick.symbol} at {ts} comes after one at {self.now}: "
                             f"the stream must be in event-time order")
        if ts > self.now:
            self.now = ts
            self._come_due(ts - 1)  # the quotes in force up to the previous millisecond are final
            self._arm(ts)
        place = (tick.venue, tick.symbol)
        self.quotes[place] = tick
        armed = self.armed.pop(place, None)
        if armed:
            for seq, outcome in armed.items():
                age = ts - outcome.event_time
                for delay in outcome.delays:
                    if age >= delay and delay not in outcome.realised:
                        outcome.realised[delay] = outcome.sized_profit(self.quotes)
                for other in outcome.places:
                    self.armed.get(other, {}).pop(seq, None)
                self._settle_if_done(seq, outcome)
        for route in list(self.routes_at.get(place, ())):
            group = self.routes[route]
            first = next(iter(group.values()))
            profit = first.top_profit(self.quotes)
            if profit is not None and profit <= first.min_profit_bps:
                for seq, outcome in list(group.items()):
                    outcome.survival_ms, outcome.ended = ts - outcome.event_time, True
                    self._settle_if_done(seq, outcome)
                self._drop_route(route)

    def _arm(self, upto: int) -> None:
        """Outcomes with a delay whose moment is at or before `upto` await the next tick of any of their legs."""
        while self.arming and self.arming[0][0] <= upto:
            _, seq, delay = heapq.heappop(self.arming)
            outcome = self.live.get(seq)
            if outcome is not None and delay not in outcome.realised:
                for place in outcome.places:
                    self.armed.setdefault(place, {})[seq] = outcome

    def _come_due(self, upto: int) -> None:
        """Every delay whose moment is at or before `upto` gets the profit at the quotes in force then; every
        horizon reached ends its signal's survival (still profitable: survival_ms stays None)."""
        due = self.due
        while due and due[0][0] <= upto:
            _, seq, _, delay = heapq.heappop(due)
            outcome = self.live.get(seq)
            if outcome is None:
                continue
            if delay is not None:
                outcome.available.setdefault(delay, outcome.sized_profit(self.quotes))
            else:
                self._end(seq, outcome)
                for each in outcome.delays:  # no leg quoted again: the quotes acted on still stood
                    outcome.realised.setdefault(each, outcome.available.get(each))
            self._settle_if_done(seq, outcome)

    def _end(self, seq: int, outcome: Outcome) -> None:
        """Survival decided without a fall: the route's group lets go of it."""
        outcome.ended = True
        group = self.routes.get(outcome.route)
        if group is not None:
            group.pop(seq, None)
            if not group:
                self._drop_route(outcome.route)

    def _drop_route(self, route: tuple) -> None:
        del self.routes[route]
        for venue, symbol, _side in route[1]:
            self.routes_at[(venue, symbol)].discard(route)

    def _settle_if_done(self, seq: int, outcome: Outcome) -> None:
        if outcome.done and seq in self.live:
            del self.live[seq]
            for place in outcome.places:
                self.armed.get(place, {}).pop(seq, None)
            self.settled.append(outcome)

    def finished(self) -> Iterator[Outcome]:
        """The outcomes settled since the last call."""
        settled, self.settled = self.settled, []
        yield from settled

    def finish(self, end_ms: int) -> Iterator[Outcome]:
        """The stream is over, read up to `end_ms`: what was still pending is settled by the quotes in force then
        (a delay past `end_ms` has no quotes: None; a route still profitable there has survival_ms None)."""
        self._come_due(end_ms)
        for seq, outcome in list(self.live.items()):
            self._end(seq, outcome)
            for delay in outcome.delays:
                outcome.available.setdefault(delay, None)
                outcome.realised.setdefault(delay, outcome.available[delay])
            self._settle_if_done(seq, outcome)
        return self.finished()


def follow(signals: Iterable[Mapping[str, Any]], ticks: Iterable[Tick], config: ArbitrageSettings,
           delays: Sequence[int] = DEFAULT_DELAYS_MS, horizon_ms: int = DEFAULT_HORIZON_MS,
           end_ms: int | None = None) -> tuple[list[Outcome], dict[str, int]]:
    """Every signal's outcome over one event-time ordered stream (signals sorted by event_time), and the count of
    each reason a signal was skipped for."""
    tracker = OutcomeTracker(config, delays, horizon_ms)
    queue = iter(signals)
    upcoming = next(queue, None)
    out: list[Outcome] = []
    last = -1
    for tick in ticks:
        while upcoming is not None and int(upcoming["event_time"]) < tick.ts:
            tracker.start(upcoming)
            upcoming = next(queue, None)
        tracker.feed(tick)
        last = tick.ts
        out.extend(tracker.finished())
    while upcoming is not None:
        tracker.start(upcoming)
        upcoming = next(queue, None)
    out.extend(tracker.finish(last if end_ms is None else end_ms))
    return out, tracker.skipped


def summarise(outcomes: Iterable[Outcome], delays: Sequence[int]) -> list[dict[str, Any]]:
    """Per delay, by type, venue pair and symbol (and all together): how many signals had quotes then, the share
    still above the detector's minimum, and the mean available and realised profit."""
    groups: dict[tuple[str, str], list[Outcome]] = {}
    for outcome in outcomes:
        record = outcome.record()
        for dimension, value in (("all", "all"), ("type", record["type"]), ("venues", record["venues"]),
                                 ("symbol", record["symbol"])):
            groups.setdefault((dimension, value), []).append(outcome)
    order = {"all": 0, "type": 1, "venues": 2, "symbol": 3}
    rows = []
    for (dimension, value), members in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        survivals = sorted(s for o in members if (s := o.survival_ms) is not None)
        for delay in delays:
            available = [(a, o.min_profit_bps) for o in members if (a := o.available.get(delay)) is not None]
            realised = [r for o in members if (r := o.realised.get(delay)) is not None]
            profitable = sum(1 for profit, minimum in available if profit > minimum)
            rows.append({
                "dimension": dimension, "value": value, "delay_ms": delay, "signals": len(members),
                "priced": len(available), "still_profitable": profitable,
                "share_profitable": round(profitable / len(available), 6) if available else None,
                "mean_available_bps": round(sum(p for p, _ in available) / len(available), 6) if available else None,
                "mean_realised_bps": round(sum(realised) / len(realised), 6) if realised else None,
                "median_survival_ms": survivals[len(survivals) // 2] if survivals else None,
            })
    return rows
