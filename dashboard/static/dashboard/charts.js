// Charts with uPlot (vendor/uplot.min.js): the live page's four, and the quote chart of a signal's page.
// The live page hands every tick and signal to AscepCharts.onTicks / onSignal; they only file them into
// buckets, so thousands of ticks a second cost little, and the charts redraw at most once per REDRAW_EVERY_MS.
"use strict";

(() => {
  const WINDOW_MS = 5 * 60_000;
  const BUCKET_MS = 250;         // quotes: the latest of each venue per bucket
  const RATE_BUCKET_MS = 10_000; // signal rate
  const PREFERRED_SYMBOL = "BTC/USDT"; // shown first when it trades: the market most users look at
  const MIN_SPAN_MS = 10_000;
  const REDRAW_EVERY_MS = 1000;
  const PROFITS_KEPT = 5000;     // the histogram's signals: the newest this many
  const HEIGHT = 220;
  const PALETTE = ["#2f5bd3", "#d3622f", "#0f8a4b", "#9a3fc2", "#c23b3b", "#1a9ab0", "#9a6700", "#5c6477"];

  const colorOf = (i) => PALETTE[i % PALETTE.length];
  const utc = (seconds) => uPlot.tzDate(new Date(seconds * 1e3), "Etc/UTC");

  // A uPlot chart that keeps the width of `container`; re-created when its series change.
  class Chart {
    constructor(container, options) {
      this.container = container;
      this.options = options;
      this.plot = null;
      this.seriesKey = null;
      new ResizeObserver(() => this.plot?.setSize(this.size())).observe(container);
    }

    size() {
      return { width: Math.max(this.container.clientWidth, 200), height: this.options.height ?? HEIGHT };
    }

    // series: [{label, stroke, dash?, paths?}, ...] after the x series; data: [x, ...ys].
    draw(series, data) {
      const key = JSON.stringify(series.map((s) => s.label));
      if (key !== this.seriesKey) {
        this.plot?.destroy();
        this.plot = new uPlot({ ...this.size(), ...this.options.uplot, series: [this.options.x, ...series] }, data,
                              this.container);
        this.seriesKey = key;
      } else {
        this.plot.setData(data);
      }
      this.container.dataset.points = String(data.slice(1).reduce(
        (n, ys) => n + ys.reduce((m, y) => m + (y == null ? 0 : 1), 0), 0));
    }
  }

  // 12:34:56 (UTC), with milliseconds when the chart spans less than 10 s.
  const timeLabels = (u, splits) => {
    const end = u.scales.x.max - u.scales.x.min < 10 ? 23 : 19;
    return splits.map((s) => new Date(s * 1e3).toISOString().slice(11, end));
  };

  const fixed = (digits) => (u, value) => (value == null ? "–" : value.toFixed(digits));
  // As many decimals as the step between two labels needs: 0.6601 and 0.6602, not "0.66" twice.
  const stepLabels = (u, splits) => {
    const step = splits.length > 1 ? Math.abs(splits[1] - splits[0]) : 1;
    const digits = Math.min(Math.max(0, -Math.floor(Math.log10(step || 1) + 1e-9)), 10);
    return splits.map((v) => v.toLocaleString("en-US", { minimumFractionDigits: digits,
                                                          maximumFractionDigits: digits }));
  };
  const price = (u, value) => (value == null ? "–" : window.Ascep.numberFormat.format(value));

  const timeChart = (yLabel, extra = {}) => ({
    x: { label: "UTC", value: (u, value) => (value == null ? "–" : window.Ascep.formatTime(value * 1e3).slice(11)) },
    uplot: {
      tzDate: utc,
      scales: { x: { time: true } },
      axes: [{ values: timeLabels, space: 90 }, { label: yLabel, size: 70, values: stepLabels }],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      ...extra,
    },
  });

  const stepped = uPlot.paths.stepped({ align: 1 });

  // ---- the live page ----------------------------------------------------

  // symbol -> venue -> {buckets: Map(bucket -> [bid, ask, ts]), before: {bucket, quote} | null, first: bucket}
  const quotes = new Map();
  const signalsSeen = new Map(); // id -> {type, eventTime, profit}
  let newestTs = 0;
  let dirty = false;
  let live = null;            // the charts, once the page has them

  function onTicks(ticks) {
    for (const tick of ticks) {
      let venues = quotes.get(tick.symbol);
      if (!venues) {
        venues = new Map();
        quotes.set(tick.symbol, venues);
        live?.addSymbol(tick.symbol);
      }
      let series = venues.get(tick.venue);
      if (!series) {
        series = { buckets: new Map(), before: null, first: Infinity };
        venues.set(tick.venue, series);
      }
      const bucket = Math.floor(tick.ts / BUCKET_MS);
      series.first = Math.min(series.first, bucket);
      const known = series.buckets.get(bucket);
      if (!known || known[2] <= tick.ts) series.buckets.set(bucket, [tick.bid, tick.ask, tick.ts]);
      if (tick.ts > newestTs) newestTs = tick.ts;
    }
    dirty = true;
  }

  function onSignal(signal) {
    const profit = signal.type === "rule" ? null : signal.profit_bps; // a rule's 0 means "no figure"
    signalsSeen.delete(signal.id); // re-inserted last: the Map's order is then the order of arrival
    signalsSeen.set(signal.id, { type: signal.type, eventTime: signal.event_time, profit });
    if (signalsSeen.size > PROFITS_KEPT) signalsSeen.delete(signalsSeen.keys().next().value);
    if (signal.event_time > newestTs) newestTs = signal.event_time;
    dirty = true;
  }

  // Old buckets go; the newest of them stays as `before`, the quote in force when the window opens.
  function prune(startBucket) {
    for (const venues of quotes.values()) {
      for (const series of venues.values()) {
        for (const [bucket, quote] of series.buckets) {
          if (bucket >= startBucket) continue; // a late tick files an old bucket last: look at all of them
          if (!series.before || bucket > series.before.bucket) series.before = { bucket, quote };
          series.buckets.delete(bucket);
        }
      }
    }
  }

  // A quote stands until the venue sends the next one: each venue's line carries its last quote forward.
  // The time axis starts with the first quote seen (but spans MIN_SPAN_MS at least) while the page has not
  // seen the whole window yet.
  function quoteData(symbol, windowStart, endBucket) {
    const venues = [...(quotes.get(symbol) ?? new Map())].sort(([a], [b]) => a.localeCompare(b));
    const firstSeen = Math.min(...venues.map(([, series]) => series.first));
    const startBucket = Math.max(windowStart, Math.min(firstSeen, endBucket - MIN_SPAN_MS / BUCKET_MS));
    const x = [];
    const columns = venues.map(() => ({ bid: [], ask: [] }));
    const spread = [];
    const carried = venues.map(([, series]) => series.before?.quote);
    for (let bucket = startBucket; bucket <= endBucket; bucket++) {
      x.push((bucket * BUCKET_MS) / 1000);
      let bestBid = -Infinity;
      let bestAsk = Infinity;
      let quoted = 0;
      venues.forEach(([, series], i) => {
        const quote = series.buckets.get(bucket) ?? carried[i];
        carried[i] = quote;
        columns[i].bid.push(quote ? quote[0] : null);
        columns[i].ask.push(quote ? quote[1] : null);
        if (quote) {
          quoted += 1;
          bestBid = Math.max(bestBid, quote[0]);
          bestAsk = Math.min(bestAsk, quote[1]);
        }
      });
      spread.push(quoted > 1 ? ((bestBid - bestAsk) / ((bestBid + bestAsk) / 2)) * 1e4 : null);
    }
    const series = venues.flatMap(([venue], i) => [
      { label: `${venue} bid`, stroke: colorOf(i), width: 1.5, paths: stepped, points: { show: false }, value: price },
      { label: `${venue} ask`, stroke: colorOf(i), width: 1.5, dash: [5, 3], paths: stepped, points: { show: false },
        value: price },
    ]);
    return { series, data: [x, ...columns.flatMap((c) => [c.bid, c.ask])], spread: [x, spread] };
  }

  // Counts are complete from the oldest signal known (the first snapshot holds the newest few only): the time
  // axis starts there, not with zeros that would only mean "not seen".
  function rateData(endMs) {
    const oldest = Math.min(...[...signalsSeen.values()].map((s) => s.eventTime));
    const first = Math.max(Math.floor((endMs - WINDOW_MS) / RATE_BUCKET_MS) + 1, Math.floor(oldest / RATE_BUCKET_MS));
    const last = Math.floor(endMs / RATE_BUCKET_MS);
    const types = [...new Set([...signalsSeen.values()].map((s) => s.type))].sort();
    const counts = types.map(() => new Array(last - first + 1).fill(0));
    for (const signal of signalsSeen.values()) {
      const bucket = Math.floor(signal.eventTime / RATE_BUCKET_MS);
      if (bucket >= first && bucket <= last) counts[types.indexOf(signal.type)][bucket - first] += 1;
    }
    // A step holds its bucket's count until the next bucket starts: the newest bucket is drawn to its end too.
    for (const row of counts) row.push(row[row.length - 1]);
    const x = counts.length ? counts[0].map((_, i) => ((first + i) * RATE_BUCKET_MS) / 1000) : [];
    const series = types.map((type, i) => ({ label: type.replaceAll("_", "-"), stroke: colorOf(i), width: 2,
                                             paths: stepped, points: { show: false }, value: fixed(0) }));
    return { series, data: [x, ...counts] };
  }

  // Bins of a round width (1, 2 or 5 times a power of ten), about 20 across the profits seen.
  function histogram(values) {
    if (!values.length) return { x: [], counts: [] };
    const low = Math.min(...values);
    const high = Math.max(...values);
    const rough = (high - low) / 20 || 1;
    const power = 10 ** Math.floor(Math.log10(rough));
    const width = [1, 2, 5, 10].map((m) => m * power).find((w) => w >= rough);
    const start = Math.floor(low / width) * width;
    const bins = Math.floor((high - start) / width) + 1;
    const counts = new Array(bins).fill(0);
    for (const value of values) counts[Math.min(Math.floor((value - start) / width), bins - 1)] += 1;
    return { x: counts.map((_, i) => start + (i + 0.5) * width), counts, width };
  }

  function profitData() {
    const profits = [...signalsSeen.values()].map((s) => s.profit).filter((p) => typeof p === "number");
    const { x, counts } = histogram(profits);
    return { series: [{ label: "signals", stroke: PALETTE[0], fill: "rgba(47, 91, 211, 0.35)",
                        paths: uPlot.paths.bars({ size: [0.9, 80] }), points: { show: false }, value: fixed(0) }],
             data: [x, counts.map((n) => n || null)] }; // an empty bin draws no bar, not a line at 0
  }

  function setUpLive(root) {
    const picker = root.querySelector("#chart-symbol");
    const chart = (name, options) => new Chart(root.querySelector(`[data-chart="${name}"] .plot`), options);
    const zeroLine = {
      hooks: {
        draw: [(u) => { // 0 bps: above it, one venue's bid beats another's ask
          const y = u.valToPos(0, "y", true);
          if (y < u.bbox.top || y > u.bbox.top + u.bbox.height) return;
          u.ctx.save();
          u.ctx.strokeStyle = "#9aa1b0";
          u.ctx.setLineDash([4, 4]);
          u.ctx.beginPath();
          u.ctx.moveTo(u.bbox.left, y);
          u.ctx.lineTo(u.bbox.left + u.bbox.width, y);
          u.ctx.stroke();
          u.ctx.restore();
        }],
      },
    };
    const charts = {
      quotes: chart("quotes", timeChart("price")),
      spread: chart("spread", timeChart("bps", zeroLine)),
      rate: chart("rate", timeChart("signals")),
      profit: chart("profit", { x: { label: "profit bps", value: fixed(2) },
                                // counts start at 0, or bins of equal counts would draw no height at all
                                uplot: { scales: { x: { time: false },
                                                   y: { range: (u, min, max) => [0, Math.max(max, 1) * 1.1] } },
                                         axes: [{ label: "profit bps" }, { label: "signals", size: 60 }] } }),
    };
    let chosen = false; // once the user picks a symbol, new ones never take its place
    picker.addEventListener("change", () => { chosen = true; dirty = true; redraw(); });

    function addSymbol(symbol) {
      if (!picker.value) picker.replaceChildren(); // "no prices yet"
      const option = new Option(symbol, symbol);
      const after = [...picker.options].find((o) => o.value.localeCompare(symbol) > 0);
      picker.add(option, after ?? null);
      if (picker.options.length === 1 || (symbol === PREFERRED_SYMBOL && !chosen)) picker.value = symbol;
    }

    function redraw() {
      if (!dirty || document.hidden) return;
      dirty = false;
      const endBucket = Math.floor(newestTs / BUCKET_MS);
      const startBucket = endBucket - WINDOW_MS / BUCKET_MS + 1;
      prune(startBucket);
      if (picker.value) {
        const { series, data, spread } = quoteData(picker.value, startBucket, endBucket);
        charts.quotes.draw(series, data);
        charts.spread.draw([{ label: "spread bps", stroke: PALETTE[2], width: 1.5, paths: stepped,
                              fill: "rgba(15, 138, 75, 0.08)", fillTo: 0, points: { show: false },
                              value: fixed(2) }], spread);
      }
      const rate = rateData(newestTs);
      charts.rate.draw(rate.series, rate.data);
      const profit = profitData();
      charts.profit.draw(profit.series, profit.data);
    }

    for (const symbol of [...quotes.keys()].sort()) addSymbol(symbol);
    setInterval(redraw, REDRAW_EVERY_MS);
    document.addEventListener("visibilitychange", redraw);
    return { addSymbol };
  }

  // ---- a signal's page --------------------------------------------------

  /**
   * The quotes of `ticks` (each venue:symbol's bid and ask, as they came) in `container`, with dashed
   * lines where the signal opened and closed (`marks`: [{label, ts}]).
   */
  function quoteChart(container, ticks, marks) {
    const keys = [...new Set(ticks.map((t) => `${t.venue} ${t.symbol}`))].sort();
    const times = [...new Set(ticks.map((t) => t.ts))].sort((a, b) => a - b);
    const row = new Map(times.map((ts, i) => [ts, i]));
    const columns = keys.map(() => ({ bid: new Array(times.length).fill(null),
                                      ask: new Array(times.length).fill(null) }));
    for (const tick of ticks) {
      const column = columns[keys.indexOf(`${tick.venue} ${tick.symbol}`)];
      column.bid[row.get(tick.ts)] = tick.bid;
      column.ask[row.get(tick.ts)] = tick.ask;
    }
    const series = keys.flatMap((key, i) => [
      { label: `${key} bid`, stroke: colorOf(i), width: 1.5, paths: stepped, spanGaps: true, value: price },
      { label: `${key} ask`, stroke: colorOf(i), width: 1.5, dash: [5, 3], paths: stepped, spanGaps: true,
        value: price },
    ]);
    const markers = {
      hooks: {
        draw: [(u) => {
          u.ctx.save();
          u.ctx.font = `${12 * devicePixelRatio}px system-ui, sans-serif`;
          u.ctx.fillStyle = u.ctx.strokeStyle = "#1d2330";
          u.ctx.setLineDash([4, 4]);
          marks.forEach((mark, i) => { // one label a line, so close marks stay legible
            const x = u.valToPos(mark.ts / 1000, "x", true);
            u.ctx.beginPath();
            u.ctx.moveTo(x, u.bbox.top);
            u.ctx.lineTo(x, u.bbox.top + u.bbox.height);
            u.ctx.stroke();
            u.ctx.fillText(mark.label, x + 4, u.bbox.top + 14 * (i + 1) * devicePixelRatio);
          });
          u.ctx.restore();
        }],
      },
    };
    const chart = new Chart(container, { height: 300, ...timeChart("price", markers) });
    chart.draw(series, [times.map((ts) => ts / 1000), ...columns.flatMap((c) => [c.bid, c.ask])]);
    return chart;
  }

  // ---- the outcomes page -----------------------------------------------

  /**
   * Reaction time against profit: per signal type, the share still profitable at each delay
   * (`rows`: the summary rows of /api/analytics/outcomes whose dimension is "type"). The delays sit
   * at equal steps (an ordinal x scale), as they run from milliseconds to seconds.
   */
  function outcomeChart(container, rows, delays) {
    const types = [...new Set(rows.map((r) => r.value))].sort();
    const share = (type, delay) => rows.find((r) => r.value === type && r.delay_ms === delay)?.share_profitable ?? null;
    const series = types.map((type, i) => ({ label: type.replaceAll("_", "-"), stroke: colorOf(i), width: 2,
                                              points: { show: true, size: 7 },
                                              value: (u, v) => (v == null ? "–" : `${(100 * v).toFixed(1)} %`) }));
    const chart = new Chart(container, {
      height: 300,
      x: { label: "reaction time (ms)", value: (u, i) => (i == null ? "–" : `${delays[i]} ms`) },
      uplot: {
        scales: { x: { time: false, distr: 2 }, y: { range: [0, 1.05] } },
        axes: [{ label: "reaction time after the event time (ms)", values: (u, splits) => splits.map((i) => delays[i]) },
               { label: "share still profitable", size: 60,
                 values: (u, splits) => splits.map((v) => `${Math.round(100 * v)} %`) }],
        legend: { live: true },
      },
    });
    chart.draw(series, [delays.map((_, i) => i), ...types.map((type) => delays.map((d) => share(type, d)))]);
    return chart;
  }

  window.AscepCharts = { onTicks, onSignal, quoteChart, outcomeChart };

  document.addEventListener("DOMContentLoaded", () => {
    const root = document.querySelector("#charts");
    if (root) live = setUpLive(root);
  });
})();
