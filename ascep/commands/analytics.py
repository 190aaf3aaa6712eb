"""`ascep analytics`: figures over the Parquet lake (local or S3), as tables, JSON, CSV and a PNG chart; and
`ascep analytics outcomes`: whether each signal of a time range was real (docs/outcomes.md)."""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from ascep.commands.rules import instant
from core.contracts.times import ISO_SUFFIX
from core.outcomes import DEFAULT_DELAYS_MS, DEFAULT_HORIZON_MS, parse_delays
from core.settings import load_settings

CSV_TABLES = ("signals_by_hour", "ticks_by_venue", "ticks_by_hour")


def add_arguments(parser) -> None:
    parser.add_argument("--lake", help="lake directory or s3://bucket/prefix (default: settings, then `ascep up`)")
    parser.add_argument("--out", type=Path, help="directory for report.json, CSV tables and analytics.png")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--gap-seconds", type=float, default=None,
                        help="a venue silent for longer than this counts as a gap "
                             "(default: lake_options.analytics_gap_seconds, 10)")
    parser.set_defaults(func=run)
    reports = parser.add_subparsers(dest="report", metavar="REPORT")
    outcomes = reports.add_parser(
        "outcomes", help="each signal of a time range followed through the lake's quotes: how long it stayed "
                         "profitable, and what was left after a reaction time",
        description="For each signal that opened in [--from, --to): its survival (how long its route stayed above "
                    "the detector's minimum profit by the lake's quotes) and its decay (the profit left at each "
                    "delay after its event time, at its size, walking the book where the ticks carry one). "
                    "Definitions in docs/outcomes.md.")
    outcomes.add_argument("--from", dest="start", metavar="T", type=instant, required=True,
                          help="signals that opened at or after T: ISO 8601 or epoch milliseconds")
    outcomes.add_argument("--to", dest="end", metavar="T", type=instant, required=True, help="up to, not including, T")
    outcomes.add_argument("--delays", type=_delays, default=DEFAULT_DELAYS_MS, metavar="MS,MS,...",
                          help="reaction times after the event time, in ms (default: "
                               f"{','.join(map(str, DEFAULT_DELAYS_MS))})")
    outcomes.add_argument("--horizon-ms", type=int, default=DEFAULT_HORIZON_MS,
                          help="how long after its event time a signal is followed at most "
                               f"(default: {DEFAULT_HORIZON_MS}); a route profitable throughout survived it")
    outcomes.add_argument("--format", choices=("table", "jsonl", "csv"), default="table",
                          help="stdout: the share-still-profitable table, one outcome per JSON line, or the "
                               "summary as CSV (default: table)")
    outcomes.add_argument("--out", type=Path,
                          help="directory for outcomes.jsonl, outcomes_summary.csv and outcomes.png")
    outcomes.add_argument("--lake", help="lake directory or s3://bucket/prefix (default: settings, then `ascep up`)")
    outcomes.set_defaults(func=run_outcomes)


def _delays(text: str) -> tuple[int, ...]:
    try:
        return parse_delays(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args) -> int:
    from lake.reader import lake_report
    from lake.storage import configured_lake

    settings = load_settings()
    gap_seconds = args.gap_seconds or settings.lake_options.analytics_gap_seconds
    figures = lake_report(configured_lake(settings, args.lake), round(gap_seconds * 1000))
    if args.out:
        write_outputs(figures, args.out)
    if args.json:
        print(json.dumps(figures))
    else:
        print_tables(figures)
    return 0


def _table(title: str, rows: list[dict[str, Any]]) -> None:
    """Times in ISO only: an epoch-ms column with its `_iso` beside it is left to the JSON and CSV."""
    print(f"\n{title}")
    if not rows:
        print("  (none)")
        return
    names = [n for n in rows[0] if n + ISO_SUFFIX not in rows[0]]
    cells = [[_cell(row[n]) for n in names] for row in rows]
    widths = [max(len(n), *(len(c[i]) for c in cells)) for i, n in enumerate(names)]
    print("  " + "  ".join(n.ljust(w) for n, w in zip(names, widths)))
    for line in cells:
        print("  " + "  ".join(c.rjust(w) for c, w in zip(line, widths)))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if isinstance(value, float) else str(value)


def print_tables(figures: dict[str, Any]) -> None:
    totals = figures["totals"]
    print(f"ticks {totals['ticks']:,}  signals {totals['signals']:,} (from {totals['signal_states']:,} states)")
    _table("signals opened per hour", figures["signals_by_hour"])
    profit = {k: v for k, v in figures["profit_bps"].items() if k != "histogram"}
    _table("net profit (bps)", [profit])
    _table("net profit histogram (bps)", figures["profit_bps"]["histogram"])
    _table("opportunity duration (ms)", [figures["duration_ms"]])
    _table("detection latency, detected_at - event_time (ms)", [figures["detection_latency_ms"]])
    _table(f"ticks per venue (gap = silent > {figures['gap_ms']} ms)", figures["ticks_by_venue"])


def write_outputs(figures: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(figures, indent=1))
    tables = {name: figures[name] for name in CSV_TABLES}
    tables["profit_histogram"] = figures["profit_bps"]["histogram"]
    for name, rows in tables.items():
        with open(out / f"{name}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["empty"])
            writer.writeheader()
            writer.writerows(rows)
    write_chart(figures, out / "analytics.png")


def write_chart(figures: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    by_type: dict[str, dict[str, int]] = {}
    for row in figures["signals_by_hour"]:
        if row["dimension"] == "type":
            by_type.setdefault(row["value"], {})[row["hour"]] = row["signals"]
    hours = sorted({h for counts in by_type.values() for h in counts})
    bottom = [0] * len(hours)
    for signal_type, counts in sorted(by_type.items()):
        heights = [counts.get(h, 0) for h in hours]
        axes[0][0].bar(hours, heights, bottom=bottom, label=signal_type)
        bottom = [b + h for b, h in zip(bottom, heights)]
    axes[0][0].set_title("signals opened per hour (UTC)")
    axes[0][0].tick_params(axis="x", labelrotation=45, labelsize=7)
    if by_type:
        axes[0][0].legend()
    histogram = figures["profit_bps"]["histogram"]
    axes[0][1].bar([b["bucket"] for b in histogram], [b["signals"] for b in histogram])
    axes[0][1].set_title("net profit at peak (bps)")
    labels = ["p50", "p90", "p99"]
    for shift, (name, stats) in enumerate((("duration", figures["duration_ms"]),
                                           ("detection latency", figures["detection_latency_ms"]))):
        axes[1][0].bar([i + shift * 0.4 for i in range(3)], [stats[k] or 0 for k in labels], width=0.4, label=name)
    axes[1][0].set_xticks([i + 0.2 for i in range(3)], labels)
    if figures["duration_ms"]["count"] or figures["detection_latency_ms"]["count"]:
        axes[1][0].set_yscale("log")  # durations are seconds to minutes, latencies milliseconds
    axes[1][0].set_title("duration and detection latency (ms, log scale)")
    axes[1][0].legend()
    venues = figures["ticks_by_venue"]
    axes[1][1].bar([v["venue"] for v in venues], [v["ticks"] for v in venues])
    axes[1][1].set_title("ticks per venue (gaps above bars)")
    for i, v in enumerate(venues):
        axes[1][1].annotate(str(v["gaps"]), (i, v["ticks"]), ha="center", va="bottom")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


SUMMARY_COLUMNS = ("dimension", "value", "delay_ms", "signals", "priced", "still_profitable", "share_profitable",
                   "mean_available_bps", "mean_realised_bps", "median_survival_ms")


def run_outcomes(args) -> int:
    from core.contracts.times import iso_ms
    from core.progress import ProgressLine
    from lake.outcomes import outcomes_report
    from lake.storage import configured_lake

    if args.end <= args.start:
        print(f"ascep analytics outcomes: empty range: --to {iso_ms(args.end)} is not after --from "
              f"{iso_ms(args.start)}", file=sys.stderr)
        return 1
    if args.horizon_ms < max(args.delays):
        print(f"ascep analytics outcomes: --horizon-ms {args.horizon_ms} is shorter than the longest delay "
              f"{max(args.delays)} ms", file=sys.stderr)
        return 1
    settings = load_settings()
    lake = configured_lake(settings, args.lake)
    progress = ProgressLine("ticks", sys.stderr)
    try:
        report = outcomes_report(lake, settings.arbitrage, args.start, args.end, args.delays, args.horizon_ms,
                                 progress.update)
    except LookupError as exc:  # NoSignals
        print(f"ascep analytics outcomes: {exc}", file=sys.stderr)
        return 1
    finally:
        progress.done()
    if args.out:
        write_outcomes(report, args.out)
    if args.format == "jsonl":
        for record in report["outcomes"]:
            print(json.dumps(record))
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows(report["summary"])
    else:
        print_outcomes(report)
    return 0


def print_outcomes(report: dict[str, Any]) -> None:
    skipped = sum(report["skipped"].values())
    print(f"signals {report['signals']:,} from {report['start_iso']} to {report['end_iso']}: "
          f"{report['followed']:,} followed, {skipped:,} skipped")
    for reason, count in sorted(report["skipped"].items()):
        print(f"  skipped {count:,}: {reason}")
    _table("share still profitable (above the detector's minimum) after each delay",
           [{k: row[k] for k in SUMMARY_COLUMNS} for row in report["summary"]])


def write_outcomes(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "outcomes.jsonl", "w") as f:
        f.writelines(json.dumps(record) + "\n" for record in report["outcomes"])
    with open(out / "outcomes_summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows(report["summary"])
    write_outcomes_chart(report, out / "outcomes.png")


def write_outcomes_chart(report: dict[str, Any], path: Path) -> None:
    """Reaction time against profit: per signal type, the share still profitable and the mean profit left."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (share, profit) = plt.subplots(1, 2, figsize=(12, 4.5))
    for value in sorted({row["value"] for row in report["summary"] if row["dimension"] == "type"}):
        rows = [row for row in report["summary"] if row["dimension"] == "type" and row["value"] == value]
        delays = [row["delay_ms"] for row in rows]
        share.plot(delays, [row["share_profitable"] for row in rows], marker="o", label=value)
        line, = profit.plot(delays, [row["mean_available_bps"] for row in rows], marker="o", label=f"{value} available")
        profit.plot(delays, [row["mean_realised_bps"] for row in rows], marker="x", linestyle="--",
                    color=line.get_color(), label=f"{value} realised")
    for axes, title in ((share, "share still profitable"), (profit, "mean net profit left (bps)")):
        axes.set_xscale("symlog", linthresh=10)  # delays span 0 ms to seconds
        axes.set_xticks(report["delays_ms"], [str(d) for d in report["delays_ms"]])
        axes.set_xlabel("reaction time after the event time (ms)")
        axes.set_title(title)
        if axes.lines:
            axes.legend(fontsize=8)
    share.set_ylim(0, 1.05)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
