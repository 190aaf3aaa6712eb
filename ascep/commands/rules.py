"""`ascep rules add|list|rm|enable|disable|test|template|backtest`: manage the CEP rules the job runs, start
one from a template, and try one offline: on sample ticks (`test`), or over the ticks of the Parquet lake, as
the job would have run it (`backtest`, core/cep/backtest.py).

Rules live in the compacted Kafka topic `rules`: key = rule id, value = rule JSON, and a
tombstone (null value) deletes; a disabled rule stays there with `"enabled": false`, and the job runs none of it.
The job folds the same topic, so what `list` shows is what runs. The topic is read and written through
clients/rules_topic.py, as the dashboard's /api/rules does.
The job also mirrors the rules it took in force into Redis, from which `ascep up` re-publishes them
to a `rules` topic that lost them (the embedded broker keeps it in memory): republish_kept().
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from clients.rules_topic import RulesTopic
from core.contracts.topics import RULES_TOPIC
from core.settings import KafkaSecuritySettings, load_settings
from core.stack_file import resolve

if TYPE_CHECKING:
    from core.cep.backtest import Found, Tally
    from core.cep.rule_records import RuleRecord
    from core.cep.rules import Rule

EPOCH_MS = timedelta(milliseconds=1)


def add_arguments(parser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def with_kafka(p):
        p.add_argument("--kafka", help="bootstrap servers (default: settings, then the running `ascep up`)")
        p.add_argument("--topic", default=RULES_TOPIC, help=f"rules topic (default {RULES_TOPIC})")
        return p

    def with_template(p, required: bool):
        p.add_argument("--covers", action="append", metavar="COVER",
                       help='what a partitioned template runs for, e.g. "*/USDT", "BTC/*", "@binance" (repeatable; '
                            'default: every symbol)')
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="a template parameter, e.g. pct=2 or window=30s (repeatable)")
        return p

    add = with_template(with_kafka(actions.add_parser("add", help="add or replace a rule")), False)
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="rule file, text or JSON form")
    source.add_argument("--text", help="the rule itself, e.g. 'IF price(\"EUR/USD\") > 1.1 THEN HIGH'")
    source.add_argument("--template", help="a built-in template (ascep rules template --list)")
    add.add_argument("--id", help="rule id (default: the file name without extension, or the signal name)")
    add.add_argument("--disabled", action="store_true", help="write it disabled: listed, not run (enable it later)")
    add.set_defaults(func=run_add)

    template = with_template(actions.add_parser("template", help="print a built-in template as rule text"), True)
    template.add_argument("name", nargs="?", help="the template; without it, --list")
    template.add_argument("--list", action="store_true", help="the templates and their parameters")
    template.set_defaults(func=run_template)

    ls = with_kafka(actions.add_parser("list", help="the rules on the topic, disabled ones marked"))
    ls.add_argument("--json", action="store_true", help="one JSON object per line instead of rule text")
    ls.set_defaults(func=run_list)

    rm = with_kafka(actions.add_parser("rm", help="delete a rule"))
    rm.add_argument("id")
    rm.set_defaults(func=run_rm)

    for action, enabled in (("enable", True), ("disable", False)):
        switch = with_kafka(actions.add_parser(action, help=f"{action} a rule: the job {'runs' if enabled else 'stops'}"
                                                            f" it, and it stays listed"))
        switch.add_argument("id")
        switch.set_defaults(func=run_switch, enabled=enabled)

    test = actions.add_parser("test", help="print the signals a rule would produce on recorded ticks (no job needed)")
    test.add_argument("rule_file", help="rule file, text or JSON form")
    test.add_argument("events_file", help="JSONL of normalized ticks")
    test.add_argument("--out-of-orderness-ms", type=int, default=0)
    test.set_defaults(func=run_test)

    backtest = with_kafka(actions.add_parser(
        "backtest", help="run a rule over the ticks of the Parquet lake, as the job would have run it",
        description="Runs a rule over the lake's ticks of a time range and prints the signals it would have given, "
                    "with their counts and the time taken. The ticks go to the rule engine in the order the job gives "
                    "them (event time, then venue and symbol; a tick behind the newest is late and not evaluated), so "
                    "a backtest over the ticks a running job saw gives the signal ids the job gave. A rule that reads "
                    "trades (vwap, volume, event.*) gets the lake's trades too, merged as the job merges them. See "
                    "docs/rules.md, \"Backtests\".",
        epilog="--kafka and --topic are for RULE given as the id of a rule in force."))
    backtest.add_argument("rule", metavar="RULE",
                          help="a rule file (text or JSON form), the rule's text, or the id of a rule in force")
    backtest.add_argument("--from", dest="start", metavar="T", type=instant, required=True,
                          help="from this time on (ISO 8601, UTC unless it says otherwise: 2025-11-21, "
                               "2025-11-21T04:40:00Z; or epoch milliseconds)")
    backtest.add_argument("--to", dest="end", metavar="T", type=instant, required=True, help="up to, not including, T")
    backtest.add_argument("--symbols", help="comma-separated BASE/QUOTE symbols: only their ticks are read (default: "
                                            "all; the others then no longer count in what is late)")
    backtest.add_argument("--out", metavar="FILE", type=Path,
                          help="write the signal states to FILE.jsonl or FILE.parquet (the lake's signal columns) "
                               "instead of printing them")
    backtest.add_argument("--id", help="the rule id the signals carry, which their ids hash (default: the id given, "
                                       "the file name without extension, or the signal name in lower case)")
    backtest.add_argument("--lake", help="lake directory or s3://bucket/prefix (default: settings, then `ascep up`)")
    backtest.set_defaults(func=run_backtest)


def instant(text: str) -> int:
    """--from / --to: ISO 8601 or epoch milliseconds -> epoch milliseconds."""
    if text.isdigit():
        if not 10**11 <= int(text) < 10**14:
            raise argparse.ArgumentTypeError(f"{text!r} is not epoch milliseconds (13 digits for this century)")
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time: give ISO 8601 (2025-11-21, 2025-11-21T04:40:00Z) "
                                         f"or epoch milliseconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // EPOCH_MS


def _topic(args) -> RulesTopic:
    settings = load_settings()
    return RulesTopic(resolve(settings, "kafka", args.kafka), settings.kafka_security, args.topic)


def read_rules(topic: RulesTopic) -> dict[str, RuleRecord]:
    """The topic folded; a record the job would reject is named on stderr and skipped."""
    folded = topic.fold()
    for rule_id, (offset, reason) in sorted(folded.invalid.items()):
        print(f"rule {rule_id!r} at offset {offset} is not valid and is skipped: {reason}", file=sys.stderr)
    return folded.rules


def _load_rule(args, source: str, text: str | None = None) -> Rule | None:
    """The rule in `text`, or without it in the file `source`; None after saying on stderr where it is wrong."""
    from core.cep.rules import RuleError, load

    try:
        return load(text if text is not None else Path(source).read_text())
    except RuleError as exc:
        print(f"ascep rules {args.action}: {source}: {exc}", file=sys.stderr)
        return None


def _template_text(args) -> str | None:
    """The template's rule text, or None after saying on stderr what was wrong with the request."""
    import inspect

    from core.cep.templates import TEMPLATES

    make = TEMPLATES.get(args.template)
    if make is None:
        print(f"ascep rules {args.action}: no template {args.template!r}; templates: {', '.join(TEMPLATES)}",
              file=sys.stderr)
        return None
    params = inspect.signature(make).parameters
    values: dict[str, object] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or key not in params or key == "covers":
            print(f"ascep rules {args.action}: --set {item!r}: {args.template} takes "
                  f"{', '.join(p for p in params if p != 'covers')}", file=sys.stderr)
            return None
        try:
            values[key] = float(value) if isinstance(params[key].default, float) else value
        except ValueError:
            print(f"ascep rules {args.action}: --set {item!r}: {key} is a number", file=sys.stderr)
            return None
    if args.covers:
        if "covers" not in params:
            print(f"ascep rules {args.action}: {args.template} is not partitioned; it takes no --covers",
                  file=sys.stderr)
            return None
        values["covers"] = args.covers
    try:
        return make(**values)
    except ValueError as exc:
        print(f"ascep rules {args.action}: {args.template}: {exc}", file=sys.stderr)
        return None


def run_template(args) -> int:
    import inspect

    from core.cep.templates import TEMPLATES

    if args.list or not args.name:
        for name, make in TEMPLATES.items():
            params = ", ".join(f"{p.name}={p.default!r}" for p in inspect.signature(make).parameters.values())
            print(f"{name}({params})\n    {inspect.getdoc(make)}")
        return 0
    args.template = args.name
    text = _template_text(args)
    if text is None:
        return 1
    rule = _load_rule(args, f"--template {args.name}", text)
    if rule is None:
        return 1
    print(text)
    return 0


def run_add(args) -> int:
    text = args.text
    if args.template:
        text = _template_text(args)
        if text is None:
            return 1
    source = args.file or (f"--template {args.template}" if args.template else "--text")
    rule = _load_rule(args, source, text)
    if rule is None:
        return 1
    from core.cep.rules import RuleError

    rule_id = args.id or (Path(args.file).stem if args.file else rule.then.lower())
    try:
        record = _topic(args).put(rule_id, rule, enabled=not args.disabled)
    except RuleError as exc:  # as the job will judge the record: a rule too large for it is refused here
        print(f"ascep rules add: {source}: {exc}", file=sys.stderr)
        return 1
    print(f"rule {rule_id} added{' disabled' if args.disabled else ''} (version {record.version})")
    return 0


def run_list(args) -> int:
    from core.cep.rules import to_json, to_text

    rules = read_rules(_topic(args))
    for rule_id, record in sorted(rules.items()):
        if args.json:
            print(json.dumps({"id": rule_id, "rule": to_json(record.rule), "enabled": record.enabled,
                              "version": record.version}))
        else:
            print(f"# {rule_id}{'' if record.enabled else ' (disabled)'}\n{to_text(record.rule)}\n")
    if not rules and not args.json:
        print("no rules", file=sys.stderr)
    return 0


def run_rm(args) -> int:
    topic = _topic(args)
    if args.id not in read_rules(topic):
        print(f"ascep rules rm: no rule {args.id!r}", file=sys.stderr)
        return 1
    topic.delete(args.id)
    print(f"rule {args.id} removed")
    return 0


def run_switch(args) -> int:
    """enable / disable: the rule written again with the flag; one already so is left alone."""
    topic = _topic(args)
    record = read_rules(topic).get(args.id)
    if record is None:
        print(f"ascep rules {args.action}: no rule {args.id!r}", file=sys.stderr)
        return 1
    if record.enabled != args.enabled:
        record = topic.put(args.id, record.rule, enabled=args.enabled)
    print(f"rule {args.id} {args.action}d (version {record.version})")
    return 0


def run_test(args) -> int:
    from core.cep.trial import TrialLimit, read_ticks, run_rule

    rule = _load_rule(args, args.rule_file)
    if rule is None:
        return 1
    with open(args.events_file, "rb") as events:
        ticks, problems = read_ticks(events)
    for problem in problems:
        print(f"{args.events_file}:{problem['line']}: skipped: {problem['error']}", file=sys.stderr)
    try:
        result = run_rule(rule, ticks, rule_id=Path(args.rule_file).stem, out_of_orderness_ms=args.out_of_orderness_ms,
                          limits=load_settings().rules)
    except TrialLimit as exc:
        print(f"ascep rules test: stopped: {exc}; raise it (ASCEP_RULES__{exc.limit.upper()}) to allow more",
              file=sys.stderr)
        return 1
    from core.contracts.times import partial_match_document, signal_document, tick_document

    for signal in result["signals"]:
        print(json.dumps(signal_document(signal)))
    for tick in result["late"]:
        print(f"late (behind the watermark, not evaluated): {json.dumps(tick_document(tick))}", file=sys.stderr)
    for partial in result["timed_out"]:
        print(f"timed out: {json.dumps(partial_match_document(partial))}", file=sys.stderr)
    print(f"{len(ticks)} ticks, {len(result['signals'])} signals, {len(result['late'])} late, "
          f"{len(result['timed_out'])} timed out, {len(problems)} bad lines", file=sys.stderr)
    return 0


def _backtest_rule(args) -> tuple[str, Rule] | None:
    """RULE as a file, else, with no space in it, as the id of a rule in force, else as rule text: (rule id, rule),
    the id as `rules add` would give it. None after saying on stderr what is wrong."""
    if Path(args.rule).is_file():
        rule = _load_rule(args, args.rule)
        return None if rule is None else (args.id or Path(args.rule).stem, rule)
    if not any(ch.isspace() for ch in args.rule):
        try:
            topic = _topic(args)
        except LookupError as exc:
            print(f"ascep rules backtest: {args.rule!r} is no file, and the rules in force cannot be read: {exc}",
                  file=sys.stderr)
            return None
        rules = read_rules(topic)
        if args.rule not in rules:
            print(f"ascep rules backtest: {args.rule!r} is neither a file nor the id of a rule in force on topic "
                  f"{args.topic!r} (in force: {', '.join(sorted(rules)) or 'none'})", file=sys.stderr)
            return None
        return args.id or args.rule, rules[args.rule].rule
    rule = _load_rule(args, "RULE", args.rule)
    return None if rule is None else (args.id or rule.then.lower(), rule)


class _JsonLines:
    """Signal states, one JSON object a line, to a file or stdout."""

    def __init__(self, out) -> None:
        self.out = out

    def add(self, found: Found) -> None:
        from core.contracts.times import signal_document

        self.out.write(json.dumps(signal_document(found.signal)) + "\n")

    def close(self) -> None:
        if self.out is not sys.stdout:
            self.out.close()


def _signal_output(path: Path | None):
    if path is None:
        return _JsonLines(sys.stdout)
    if path.suffix == ".parquet":
        from lake.backtest import SignalFile

        return SignalFile(str(path))
    if path.suffix == ".jsonl":
        return _JsonLines(open(path, "w"))
    raise ValueError(f"--out {path}: name a .jsonl or a .parquet file")


def run_backtest(args) -> int:
    from core.cep.backtest import Tally
    from core.contracts.times import iso_ms
    from core.progress import ProgressLine
    from lake.backtest import RangeBacktest
    from lake.storage import configured_lake

    if args.end <= args.start:
        print(f"ascep rules backtest: empty range: --to {iso_ms(args.end)} is not after --from {iso_ms(args.start)}",
              file=sys.stderr)
        return 1
    chosen = _backtest_rule(args)
    if chosen is None:
        return 1
    rule_id, rule = chosen
    settings = load_settings()
    lake = configured_lake(settings, args.lake)
    symbols = {s.strip() for s in args.symbols.split(",") if s.strip()} if args.symbols else None
    output = _signal_output(args.out)
    began = time.perf_counter()
    progress = ProgressLine("ticks", sys.stderr)
    tally = Tally()
    backtest = RangeBacktest(lake, rule_id, rule, args.start, args.end, symbols, settings.job.out_of_orderness_ms,
                             settings.rules)
    for found in backtest.run():
        for item in found:
            output.add(item)
            tally.add(item.signal)
        progress.update(backtest.ticks_read, backtest.done)
    output.close()
    progress.done()
    seconds = time.perf_counter() - began
    span = f"{iso_ms(args.start)} to {iso_ms(args.end)}"
    if not backtest.ticks and not backtest.trades:
        read = "ticks or trades" if backtest.reads_trades else "ticks"
        print(f"ascep rules backtest: the lake {lake.uri} holds no {read} from {span}"
              f"{' of ' + ', '.join(sorted(symbols)) if symbols else ''}", file=sys.stderr)
        return 1
    print_summary(rule_id, span, lake.uri, backtest, seconds, tally)
    return 0


def print_summary(rule_id: str, span: str, lake: str, backtest, seconds: float, tally: Tally) -> None:
    """On stderr, so that the signals alone go to stdout. `backtest`: a finished lake.backtest.RangeBacktest."""
    ticks, stats, late = backtest.ticks, backtest.stats, backtest.late
    errors = sum(s["errors"] for s in stats)
    last_error = next((s["last_error"] for s in reversed(stats) if s["last_error"]), None)
    trades = f" and {backtest.trades:,} trades" if backtest.trades else ""
    lines = [f"rule {rule_id} over {span} ({lake}): {ticks:,} ticks{trades} from {backtest.partitions} partition(s) "
             f"in {seconds:.2f} s ({(ticks + backtest.trades) / max(seconds, 1e-9):,.0f} "
             f"{'ticks and trades' if backtest.trades else 'ticks'}/s)",
             f"{tally.signals:,} signals ({tally.states:,} states), {late:,} ticks late (behind the newest event time, "
             f"not evaluated), {sum(s['timeouts'] for s in stats):,} partial matches timed out"
             + (f", {errors:,} evaluation errors (last: {last_error})" if errors else "")]
    for title, counts in (("by name", tally.by_name), ("by symbol", tally.by_symbol)):
        if counts:
            width = max(map(len, counts))
            lines += [f"{title}:", *(f"  {key:<{width}}  {n:,}" for key, n in sorted(counts.items()))]
    print("\n".join(lines), file=sys.stderr)


def republish_kept(bootstrap: str, security: KafkaSecuritySettings, redis_url: str, topic: str = RULES_TOPIC
                   ) -> list[str]:
    """Publishes every rule the job had in force (Redis) whose id the topic holds no record of, not even a
    tombstone: a fresh broker holds none, and on a broker that kept the topic, the topic stays the truth (a rule
    deleted while the job was down stays deleted). Returns the ids published."""
    import redis

    from core.contracts.redis_keys import RULES_IN_FORCE

    kept = redis.Redis.from_url(redis_url, socket_timeout=10).hgetall(RULES_IN_FORCE)
    rules = RulesTopic(bootstrap, security, topic)
    held = rules.records()
    missing = {rule_id.decode(): value for rule_id, value in kept.items() if rule_id.decode() not in held}
    if missing:
        rules.write(missing)
    return sorted(missing)
