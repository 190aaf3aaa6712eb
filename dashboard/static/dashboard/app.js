// Live dashboard: subscribes on connect, then takes price and signal updates over one WebSocket.
// Updates only touch state; the DOM is redrawn at most every RENDER_EVERY_MS, whatever the message rate.
"use strict";

const RENDER_EVERY_MS = 250;
const AGE_EVERY_MS = 1000;
const HEALTH_EVERY_MS = 2000;
const STALE_AFTER_MS = 10000;
const SIGNALS_SHOWN = 50;

const prices = new Map();        // "venue:symbol" -> tick
const priceRows = new Map();     // "venue:symbol" -> <tr>
const drawnTicks = new Map();    // "venue:symbol" -> the tick its row shows
const dirtyPrices = new Set();
const signals = new Map();       // id -> signal
const shownSignalIds = new Set();
let signalsDirty = false;
let renderScheduled = false;

const $ = (selector) => document.querySelector(selector);
const { numberFormat, sizeFormat, countFormat, formatDuration } = window.Ascep;

function cell(row, className) {
  const td = row.insertCell();
  if (className) td.className = className;
  return td;
}

function spreadBps(tick) {
  return ((tick.ask - tick.bid) / ((tick.ask + tick.bid) / 2)) * 1e4;
}

function scheduleRender() {
  if (renderScheduled) return;
  renderScheduled = true;
  setTimeout(() => requestAnimationFrame(render), RENDER_EVERY_MS);
}

function render() {
  renderScheduled = false;
  renderPrices();
  if (signalsDirty) renderSignals();
}

// ---- prices -------------------------------------------------------------

function newPriceRow(tick) {
  const row = document.createElement("tr");
  row.dataset.key = `${tick.venue}:${tick.symbol}`;
  cell(row).textContent = tick.venue;
  cell(row).textContent = tick.symbol;
  for (let i = 0; i < 4; i++) cell(row, "num");
  return row;
}

const FLASH = { up: "#c9f0da", down: "#f6d0d0" };

// The Web Animations API restarts a flash without forcing a layout, however many cells change at once.
function flash(td, previous, current) {
  if (previous === undefined || previous === current) return;
  const color = current > previous ? FLASH.up : FLASH.down;
  td.animate([{ backgroundColor: color }, { backgroundColor: "transparent" }], { duration: 1000 });
}

function renderPrices() {
  if (!dirtyPrices.size) return;
  const symbols = new Set();
  let added = false;
  for (const key of dirtyPrices) {
    const tick = prices.get(key);
    let row = priceRows.get(key);
    if (!row) {
      row = newPriceRow(tick);
      priceRows.set(key, row);
      added = true;
    }
    const [, , bid, ask, spread] = row.cells;
    const previous = drawnTicks.get(key);
    flash(bid, previous?.bid, tick.bid);
    flash(ask, previous?.ask, tick.ask);
    bid.textContent = numberFormat.format(tick.bid);
    ask.textContent = numberFormat.format(tick.ask);
    spread.textContent = spreadBps(tick).toFixed(2);
    drawnTicks.set(key, tick);
    symbols.add(tick.symbol);
  }
  dirtyPrices.clear();
  if (added) {
    const body = $("#prices tbody");
    const keys = [...priceRows.keys()].sort((a, b) => {
      const [ta, tb] = [prices.get(a), prices.get(b)];
      return ta.symbol.localeCompare(tb.symbol) || ta.venue.localeCompare(tb.venue);
    });
    for (const key of keys) body.appendChild(priceRows.get(key));
    $("#prices-empty").hidden = true;
  }
  markBestQuotes(symbols);
  renderAges();
}

// The best bid and best ask across venues are where a cross-exchange opportunity would show.
function markBestQuotes(symbols) {
  for (const symbol of symbols) {
    const quotes = [...drawnTicks].filter(([, tick]) => tick.symbol === symbol);
    const bestBid = Math.max(...quotes.map(([, tick]) => tick.bid));
    const bestAsk = Math.min(...quotes.map(([, tick]) => tick.ask));
    for (const [key, tick] of quotes) {
      const cells = priceRows.get(key).cells;
      cells[2].classList.toggle("best", quotes.length > 1 && tick.bid === bestBid);
      cells[3].classList.toggle("best", quotes.length > 1 && tick.ask === bestAsk);
    }
  }
}

function renderAges() {
  const now = Date.now();
  for (const [key, row] of priceRows) {
    const age = now - prices.get(key).ts;
    row.cells[5].textContent = formatDuration(Math.max(age, 0));
    row.classList.toggle("stale", age > STALE_AFTER_MS);
  }
}

// ---- signals ------------------------------------------------------------

// "BTC/USDT  buy kraken 97,012 → sell binance 97,020.1"; the symbol goes on each leg only when they differ.
function routeCell(td, legs) {
  const sharedSymbol = legs.every((leg) => leg.symbol === legs[0].symbol) ? legs[0].symbol : null;
  if (sharedSymbol) {
    const symbol = document.createElement("span");
    symbol.className = "symbol";
    symbol.textContent = sharedSymbol;
    td.appendChild(symbol);
  }
  legs.forEach((leg, i) => {
    if (i > 0) td.append(" → ");
    const span = document.createElement("span");
    span.className = "leg";
    const side = document.createElement("span");
    side.className = `side ${leg.side}`;
    side.textContent = leg.side;
    const where = sharedSymbol ? leg.venue : `${leg.venue} ${leg.symbol}`;
    span.append(side, ` ${where} ${numberFormat.format(leg.price)}`);
    td.appendChild(span);
  });
}

// A rule signal has no legs: show what fired ("WIDE  rule wide-btc") and how many events a pattern match took.
function ruleCell(td, signal) {
  const name = document.createElement("span");
  name.className = "rule-name";
  name.textContent = signal.name ?? "?";
  const rule = document.createElement("span");
  rule.className = "rule-id";
  rule.textContent = `rule ${signal.rule_id ?? "?"}`;
  td.append(name, rule);
  if (signal.events && typeof signal.events === "object") { // stage name -> the ticks it took
    const stages = Object.entries(signal.events);
    const count = stages.reduce((n, [, ticks]) => n + ticks.length, 0);
    const events = document.createElement("span");
    events.className = "events";
    events.textContent = `${count} event${count === 1 ? "" : "s"}`;
    events.title = stages.map(([stage, ticks]) => `${stage}: ${ticks.length}`).join(", ");
    td.appendChild(events);
  }
}

function signalRow(signal, isNew) {
  const row = document.createElement("tr");
  row.dataset.id = signal.id;
  if (isNew) row.className = "new";
  const link = document.createElement("a");
  link.href = `/signals/${encodeURIComponent(signal.id)}`;
  link.textContent = signal.type.replaceAll("_", "-");
  cell(row).appendChild(link);
  if (signal.type === "rule") ruleCell(cell(row, "route"), signal);
  else routeCell(cell(row, "route"), signal.legs || []);
  // A rule says that something happened, not how to trade it: its profit of 0 means "none", not "break-even".
  cell(row, "num").textContent = signal.type === "rule" ? "–" : signal.profit_bps.toFixed(2);
  cell(row, "num").textContent = signal.size == null ? "–" : sizeFormat.format(signal.size);
  const badge = document.createElement("span");
  badge.className = `badge ${signal.status}`;
  badge.textContent = signal.status;
  cell(row).appendChild(badge);
  const closed = signal.status === "closed";
  const lasted = (closed ? signal.closed_at : signal.updated_at) - signal.event_time;
  // An open signal has lasted at least until its latest update.
  cell(row, "num").textContent = (closed ? "" : "≥ ") + formatDuration(lasted);
  const when = new Date(signal.event_time).toISOString();
  const timeCell = cell(row);
  timeCell.textContent = when.slice(11, 23);
  timeCell.title = when;
  return row;
}

function renderSignals() {
  signalsDirty = false;
  const newest = [...signals.values()].sort((a, b) => b.event_time - a.event_time).slice(0, SIGNALS_SHOWN);
  const kept = new Set(newest.map((s) => s.id));
  for (const id of signals.keys()) if (!kept.has(id)) signals.delete(id);
  const fragment = document.createDocumentFragment();
  for (const signal of newest) {
    fragment.appendChild(signalRow(signal, shownSignalIds.size > 0 && !shownSignalIds.has(signal.id)));
  }
  shownSignalIds.clear();
  newest.forEach((s) => shownSignalIds.add(s.id));
  $("#signals tbody").replaceChildren(fragment);
  $("#signals-empty").hidden = newest.length > 0;
}

// ---- rules --------------------------------------------------------------

function formatNanos(ns) {
  return ns < 1e6 ? `${(ns / 1e3).toFixed(1)} µs` : formatDuration(ns / 1e6);
}

async function refreshRules() {
  let rules;
  try {
    const response = await fetch("/api/rules/stats");
    if (!response.ok) return; // the health badge already says Redis is away
    rules = (await response.json()).rules;
  } catch (error) {
    return;
  }
  const rows = rules.map((rule) => {
    const row = document.createElement("tr");
    row.dataset.rule = rule.rule_id;
    cell(row).textContent = rule.rule_id;
    cell(row, "version").textContent = rule.version ?? "–";
    for (const key of ["evaluations", "matches", "errors"]) {
      cell(row, "num").textContent = rule[key] == null ? "–" : countFormat.format(rule[key]);
    }
    cell(row, "num").textContent = rule.time_ns == null ? "–" : formatNanos(rule.time_ns);
    cell(row, "error").textContent = rule.last_error ?? "";
    return row;
  });
  $("#rules tbody").replaceChildren(...rows);
  $("#rules-empty").hidden = rows.length > 0;
}

// ---- connection ---------------------------------------------------------

function takePrices(ticks) {
  window.AscepCharts.onTicks(ticks);
  for (const tick of ticks) {
    const key = `${tick.venue}:${tick.symbol}`;
    const known = prices.get(key);
    if (known && known.ts > tick.ts) continue; // an older quote must not overwrite a newer one
    prices.set(key, tick);
    dirtyPrices.add(key);
  }
}

function takeSignal(signal) {
  window.AscepCharts.onSignal(signal);
  const known = signals.get(signal.id);
  if (known && known.updated_at > signal.updated_at) return;
  signals.set(signal.id, signal);
  signalsDirty = true;
}

// The live protocol (docs/live-protocol.md): the page subscribes to everything; each subscription's reply
// carries what matches now, then updates follow.
const SUBSCRIPTIONS = [{ kind: "subscribe_prices" }, { kind: "subscribe_signals" }];
const handlers = {
  subscribed(message) {
    if (message.prices) takePrices(message.prices);
    if (message.signals) message.signals.forEach(takeSignal);
    signalsDirty = true;
  },
  price_update(message) { takePrices(message.data); },
  arbitrage_signal(message) { takeSignal(message.data); },
  rule_signal(message) { takeSignal(message.data); },
  error(message) { console.warn("the live socket refused a request:", message.error); },
};

// The badge shows the worst of: the socket to the dashboard, the dashboard's view of Redis, and /api/health's
// verdict on the pipeline (degraded or down, its reasons in the badge's title).
const connection = { socketOpen: false, redisReachable: true, retryMs: 1000, everOpened: false, health: "ok",
                     reasons: [] };

function showStatus() {
  const status = $("#status");
  let [kind, text, title] = ["live", "live", ""];
  if (!connection.redisReachable) [kind, text] = ["down", "Redis unreachable"];
  else if (!connection.socketOpen && connection.everOpened) {
    [kind, text] = ["down", `disconnected, retrying in ${connection.retryMs / 1000} s`];
  } else if (!connection.socketOpen) [kind, text] = ["connecting", "connecting…"];
  else if (connection.health !== "ok") [kind, text, title] = [connection.health, connection.health,
                                                               connection.reasons.join("\n")];
  status.className = `status ${kind}`;
  status.textContent = text;
  status.title = title;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/live`);
  socket.onopen = () => {
    Object.assign(connection, { socketOpen: true, everOpened: true, retryMs: 1000 });
    for (const request of SUBSCRIPTIONS) socket.send(JSON.stringify(request));
    showStatus();
  };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    const handle = handlers[message.kind];
    if (!handle) {
      console.warn("ignored live message of unknown kind", message.kind);
      return;
    }
    handle(message);
    scheduleRender();
  };
  socket.onclose = () => {
    connection.socketOpen = false;
    connection.everOpened = true;
    showStatus();
    setTimeout(connect, connection.retryMs);
    connection.retryMs = Math.min(connection.retryMs * 2, 15000);
  };
}

async function refreshCounters() {
  try {
    const response = await fetch("/api/health");
    const health = await response.json();
    const values = { ...(health.counters || {}), ...health };
    const redisReachable = health.status !== "unavailable";
    for (const dd of document.querySelectorAll("[data-counter]")) {
      // A counter the job has not written yet is zero; with Redis down it is unknown.
      const value = values[dd.dataset.counter] ?? (redisReachable ? 0 : null);
      dd.textContent = value == null ? "–" : countFormat.format(value);
    }
    Object.assign(connection, { redisReachable, health: health.status, reasons: health.reasons || [] });
  } catch (error) {
    connection.redisReachable = true; // the socket's state already tells that the dashboard is gone
  }
  showStatus();
}

// A click anywhere on a signal's row opens its page (the type cell's link, for the keyboard).
$("#signals tbody").addEventListener("click", (event) => {
  const row = event.target.closest("tr[data-id]");
  if (row && !event.target.closest("a")) location.assign(row.querySelector("a").href);
});

connect();
refreshCounters();
setInterval(refreshCounters, HEALTH_EVERY_MS);
refreshRules();
setInterval(refreshRules, HEALTH_EVERY_MS);
setInterval(renderAges, AGE_EVERY_MS);
