// The outcomes page: the range in the address (?start=&end=&delays=) is asked of /api/analytics/outcomes,
// and its summary drawn as a chart (share still profitable against the reaction time) and a table.
"use strict";

(() => {
  const { api, countFormat } = window.Ascep;
  const $ = (selector) => document.querySelector(selector);
  const percent = (share) => (share == null ? "–" : `${(100 * share).toFixed(1)} %`);
  const bps = (value) => (value == null ? "–" : value.toFixed(2));

  function say(text) {
    const message = $("#outcomes-message");
    message.textContent = text;
    message.hidden = !text;
  }

  function cell(tr, text, className = "") {
    const td = tr.insertCell();
    td.className = className;
    td.textContent = text;
    return td;
  }

  // One row per group (type, venues, symbol), one column per delay: the share, then the mean profits.
  function showTable(report) {
    const delays = report.delays_ms;
    const head = document.createElement("tr");
    for (const title of ["By", "Group", "Signals", ...delays.map((d) => `${d} ms`)]) {
      const th = document.createElement("th");
      th.textContent = title;
      if (title !== "By" && title !== "Group") th.className = "num";
      head.append(th);
    }
    $("#outcomes-table").tHead.replaceChildren(head);
    const groups = new Map();
    for (const row of report.summary) {
      const key = `${row.dimension}\u0000${row.value}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(row);
    }
    $("#outcomes-table").tBodies[0].replaceChildren(...[...groups.values()].map((rows) => {
      const tr = document.createElement("tr");
      tr.dataset.dimension = rows[0].dimension;
      tr.dataset.value = rows[0].value;
      cell(tr, rows[0].dimension);
      cell(tr, rows[0].value.replaceAll("_", "-"));
      cell(tr, countFormat.format(rows[0].signals), "num");
      for (const delay of delays) {
        const row = rows.find((r) => r.delay_ms === delay);
        const td = cell(tr, percent(row.share_profitable), "num");
        td.dataset.delay = String(delay);
        td.title = `${row.still_profitable} of ${row.priced}; mean ${bps(row.mean_available_bps)} bps available, `
                   + `${bps(row.mean_realised_bps)} bps realised`;
      }
      return tr;
    }));
    const skipped = Object.entries(report.skipped);
    $("#outcomes-skipped").replaceChildren(...skipped.map(([reason, count]) => {
      const li = document.createElement("li");
      li.textContent = `skipped ${countFormat.format(count)}: ${reason}`;
      return li;
    }));
  }

  async function load() {
    const params = new URLSearchParams(location.search);
    for (const name of ["start", "end", "delays"]) {
      if (params.get(name)) $(`#outcomes-${name}`).value = params.get(name);
    }
    if (!params.get("start") || !params.get("end")) {
      say("Choose a range of the lake: the signals that opened in it are followed through the quotes after them.");
      return;
    }
    say("Reading the lake …");
    let report;
    try {
      report = await api("GET", `/api/analytics/outcomes?${params}`);
    } catch (error) {
      say(error.message);
      return;
    }
    say("");
    const skipped = Object.values(report.skipped).reduce((a, b) => a + b, 0);
    const facts = [["signals", countFormat.format(report.signals)], ["followed", countFormat.format(report.followed)],
                   ["skipped", countFormat.format(skipped)], ["horizon", `${report.horizon_ms} ms`]];
    $("#outcomes-facts").replaceChildren(...facts.flatMap(([term, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      return [dt, dd];
    }));
    window.AscepCharts.outcomeChart($("#outcomes-plot"), report.summary.filter((r) => r.dimension === "type"),
                                    report.delays_ms);
    showTable(report);
  }

  document.addEventListener("DOMContentLoaded", load);
})();
