// A signal's page: its legs (or a rule's pattern events), its lifecycle from every state the job wrote,
// and the quotes around it. /history and /quotes may be missing (no lake): the page then says so and
// shows what the signal's own document tells.
"use strict";

(() => {
  const { api, formatDuration, formatTime, numberFormat, sizeFormat } = window.Ascep;
  const $ = (selector) => document.querySelector(selector);
  const signalId = $("#signal-page").dataset.signalId;
  const base = `/api/signals/${encodeURIComponent(signalId)}`;

  function facts(dl, pairs) {
    dl.replaceChildren(...pairs.flatMap(([term, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      return [dt, dd];
    }));
  }

  function row(values, classes = []) {
    const tr = document.createElement("tr");
    values.forEach((value, i) => {
      const td = tr.insertCell();
      if (classes[i]) td.className = classes[i];
      td.textContent = value;
    });
    return tr;
  }

  function head(table, titles, classes = []) {
    const tr = row(titles, classes);
    table.tHead.replaceChildren(tr);
    for (const td of [...tr.cells]) {
      const th = document.createElement("th");
      th.className = td.className;
      th.textContent = td.textContent;
      td.replaceWith(th);
    }
  }

  const isRule = (signal) => signal.type === "rule";
  const profit = (signal) => (isRule(signal) ? "–" : signal.profit_bps.toFixed(2));
  const lasted = (signal) => (signal.closed_at ?? signal.updated_at) - signal.event_time;

  function showSummary(signal) {
    const what = isRule(signal) ? [["rule", signal.rule_id ?? "?"], ["name", signal.name ?? "?"],
                                   ...(signal.key ? [["key", signal.key]] : [])]
                                : [["profit bps (peak)", profit(signal)],
                                   ["size", signal.size == null ? "–" : sizeFormat.format(signal.size)]];
    facts($("#signal-facts"), [
      ["type", signal.type.replaceAll("_", "-")], ...what, ["status", signal.status],
      ["opened (UTC)", formatTime(signal.event_time)],
      ["closed (UTC)", signal.closed_at == null ? "still open" : formatTime(signal.closed_at)],
      ["detected after", signal.detected_at == null ? "–" : formatDuration(Math.max(signal.detected_at
                                                                                     - signal.event_time, 0))],
    ]);
  }

  // A trade signal's legs; a rule's match has no legs but the ticks each stage took.
  function showLegs(signal) {
    const table = $("#legs");
    if (!isRule(signal)) {
      // a leg's VWAP at the signal's size, where the detector walked a book (docs/signals.md)
      head(table, ["Side", "Venue", "Symbol", "Price", "VWAP at size"], ["", "", "", "num", "num"]);
      table.tBodies[0].replaceChildren(...(signal.legs ?? []).map((leg) => {
        const tr = row([leg.side, leg.venue, leg.symbol, numberFormat.format(leg.price),
                        leg.vwap == null ? "–" : numberFormat.format(leg.vwap)], ["side", "", "", "num", "num"]);
        tr.cells[0].classList.add(leg.side);
        return tr;
      }));
      return;
    }
    $("#legs-title").textContent = "Pattern events";
    const stages = Object.entries(signal.events ?? {});
    head(table, ["Stage", "Venue", "Symbol", "Bid", "Ask", "At (UTC)"], ["", "", "", "num", "num", ""]);
    table.tBodies[0].replaceChildren(...stages.flatMap(([stage, ticks]) => ticks.map((tick) => row(
      [stage, tick.venue ?? "", tick.symbol ?? "", tick.bid == null ? "–" : numberFormat.format(tick.bid),
       tick.ask == null ? "–" : numberFormat.format(tick.ask), tick.ts == null ? "" : formatTime(tick.ts)],
      ["", "", "", "num", "num", ""]))));
    const empty = $("#legs-empty");
    empty.hidden = stages.length > 0;
    empty.textContent = "A condition's signal: no pattern events.";
  }

  // open, then updates, then close: the kind of each state from where it stands in the list.
  function stateName(state, i) {
    if (state.status === "closed") return "close";
    return i === 0 ? "open" : "update";
  }

  // `complete`: the states are every one the job wrote (from /history), not the latest alone.
  function showLifecycle(signal, states, complete) {
    const peak = Math.max(...states.map((s) => s.profit_bps ?? -Infinity));
    const updates = states.filter((s, i) => stateName(s, i) === "update").length;
    facts($("#lifecycle-facts"), [
      ["opened (UTC)", formatTime(signal.event_time)],
      ["updates", complete ? String(updates) : "unknown"],
      ["closed (UTC)", signal.closed_at == null ? "still open" : formatTime(signal.closed_at)],
      ["peak profit bps", isRule(signal) || !Number.isFinite(peak) ? "–" : peak.toFixed(2)],
      ["duration", (signal.closed_at == null ? "≥ " : "") + formatDuration(lasted(signal))],
    ]);
    $("#states tbody").replaceChildren(...states.map((state, i) => {
      const at = state.status === "closed" ? state.closed_at : state.updated_at ?? state.event_time;
      const prices = (state.legs ?? []).map((leg) => `${leg.side} ${leg.venue} ${numberFormat.format(leg.price)}`);
      return row([stateName(state, i), formatTime(at), formatDuration(Math.max(at - signal.event_time, 0)),
                  profit(state), state.size == null ? "–" : sizeFormat.format(state.size), prices.join(" → ")],
                 ["", "", "num", "num", "num", ""]);
    }));
  }

  function note(selector, text) {
    const element = $(selector);
    element.textContent = text;
    element.hidden = false;
  }

  async function showQuotes(signal) {
    let ticks;
    try {
      ticks = (await api("GET", `${base}/quotes`)).ticks;
    } catch (error) {
      note("#quotes-note", `No quotes to show: ${error.message}`);
      return;
    }
    if (!ticks.length) {
      note("#quotes-note", "No quotes to show: the lake holds none of its legs' venues and symbols around it.");
      return;
    }
    const marks = [{ label: "open", ts: signal.event_time }];
    if (signal.closed_at != null) marks.push({ label: "close", ts: signal.closed_at });
    window.AscepCharts.quoteChart($("#quotes-plot"), ticks, marks);
  }

  async function load() {
    let signal;
    try {
      signal = await api("GET", base);
    } catch (error) {
      note("#signal-message", error.status === 404 ? `No signal with id ${signalId}: Redis keeps the newest only.`
                                                   : error.message);
      return;
    }
    let [states, complete] = [[signal], false];
    try {
      const history = await api("GET", `${base}/history`);
      if (history.states.length) [signal, states, complete] = [history.signal ?? signal, history.states, true];
    } catch (error) {
      note("#states-note", `Only the latest state is shown: ${error.message}`);
    }
    showSummary(signal);
    showLegs(signal);
    showLifecycle(signal, states, complete);
    await showQuotes(signal);
  }

  load();
})();
