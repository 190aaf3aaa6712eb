// The rule editor page: the rules kept, one rule in a CodeMirror editor checked by the server as you type,
// a trial on recent ticks, and the built-in templates. Everything goes through the JSON API (/api/rules...).
"use strict";

(() => {
  const { api, countFormat, formatDuration, formatTime, meta } = window.Ascep;
  const $ = (selector) => document.querySelector(selector);
  const LIST_EVERY_MS = 2000;
  const TRIAL_ROWS = 200;

  const page = $("#rules-page");
  const language = { keywords: page.dataset.keywords.split(" "), functions: page.dataset.functions.split(" ") };
  const rules = new Map(); // id -> entry, as GET /api/rules gave it
  let current = null;      // the entry in the editor; null while it holds a new rule
  let busy = false;

  const ruleUrl = (id) => `/api/rules/${encodeURIComponent(id)}`;

  function show(selector, text, isError = false) {
    const element = $(selector);
    element.textContent = text;
    element.classList.toggle("error", isError);
    element.hidden = !text;
  }

  // ---- checking as you type ---------------------------------------------

  function showErrors(errors) {
    $("#rule-errors").replaceChildren(...errors.map((error) => {
      const item = document.createElement("li");
      const link = document.createElement("button");
      link.type = "button";
      link.className = "link";
      link.textContent = `line ${error.line}, column ${error.column}: ${error.message}`;
      link.addEventListener("click", () => editor.goTo(error.line, error.column));
      item.appendChild(link);
      return item;
    }));
  }

  // The editor's lint source: CodeMirror calls it 250 ms after the last change and drops what it returns
  // for a text that has changed since; the list under the editor follows the same rule.
  async function check(text) {
    if (!text.trim()) {
      show("#check-status", "No text yet.");
      showErrors([]);
      return [];
    }
    show("#check-status", "Checking…");
    let answer;
    try {
      answer = await api("POST", "/api/rules/check", { text });
    } catch (error) {
      if (text === editor.getText()) show("#check-status", `Could not check the rule: ${error.message}`, true);
      return [];
    }
    const errors = answer.ok ? [] : answer.errors;
    if (text === editor.getText()) {
      show("#check-status", errors.length ? `${errors.length} error${errors.length === 1 ? "" : "s"}:`
                                          : "No errors.", errors.length > 0);
      showErrors(errors);
    }
    return errors;
  }

  const editor = window.AscepEditor.create({
    parent: $("#editor"), nonce: meta("csp-nonce"), language, check, onChange: showState,
  });

  // ---- the rules kept -----------------------------------------------------

  // What the job does with the rule: a save takes effect once the running job has taken that version.
  function stateOf(entry) {
    if (!entry.enabled) return entry.in_force ? ["pending", "disabled; the job still runs it"] : ["off", "disabled"];
    if (entry.in_force && entry.in_force_version === entry.version) return ["live", "in force"];
    if (entry.in_force) return ["pending", "saved; the job still runs an older version"];
    return ["pending", "saved; not in force yet"];
  }

  function renderList() {
    const rows = [...rules.values()].sort((a, b) => a.id.localeCompare(b.id)).map((entry) => {
      const row = document.createElement("tr");
      row.dataset.rule = entry.id;
      row.classList.toggle("current", current?.id === entry.id);
      const name = row.insertCell();
      const open = document.createElement("button");
      open.type = "button";
      open.className = "link";
      open.textContent = entry.id;
      open.addEventListener("click", () => openRule(entry.id));
      name.appendChild(open);
      const [kind, text] = stateOf(entry);
      const state = row.insertCell();
      state.className = `state ${kind}`;
      state.textContent = text;
      const matches = row.insertCell();
      matches.className = "num";
      matches.textContent = entry.stats?.matches == null ? "–" : countFormat.format(entry.stats.matches);
      return row;
    });
    $("#rule-list tbody").replaceChildren(...rows);
    $("#rule-list-empty").hidden = rows.length > 0;
  }

  async function refreshList() {
    let listed;
    try {
      listed = (await api("GET", "/api/rules")).rules;
    } catch (error) {
      show("#rule-list-error", `Could not list the rules: ${error.message}`, true);
      return;
    }
    show("#rule-list-error", "");
    rules.clear();
    for (const entry of listed) rules.set(entry.id, entry);
    if (current && rules.has(current.id)) current = rules.get(current.id);
    renderList();
    showState();
  }

  // ---- the rule in the editor ---------------------------------------------

  function showState() {
    const state = $("#rule-state");
    if (!current) {
      state.className = "state";
      state.textContent = "not saved yet";
      return;
    }
    const [kind, text] = stateOf(current);
    const edited = editor.getText() !== current.text;
    state.className = `state ${edited ? "pending" : kind}`;
    state.textContent = `version ${current.version}: ${text}${edited ? " · unsaved changes" : ""}`;
  }

  function load(entry, text, id) {
    current = entry;
    const idInput = $("#rule-id");
    idInput.value = id;
    idInput.readOnly = entry !== null;
    $("#editor-title").textContent = entry ? `Rule ${entry.id}` : "New rule";
    $("#toggle-rule").hidden = $("#delete-rule").hidden = entry === null;
    $("#delete-confirm").hidden = true;
    if (entry) $("#toggle-rule").textContent = entry.enabled ? "Disable" : "Enable";
    editor.setText(text);
    renderList();
    showState();
  }

  const openRule = (id) => load(rules.get(id), rules.get(id).text, id);
  const newRule = (text = "", id = "") => load(null, text, id);

  // Runs one write at a time; its answer, or why it failed, goes under the buttons.
  async function write(action) {
    if (busy) return;
    busy = true;
    for (const button of document.querySelectorAll("#editor-card button")) button.disabled = true;
    try {
      show("#rule-message", await action());
    } catch (error) {
      show("#rule-message", error.message, true);
    } finally {
      busy = false;
      for (const button of document.querySelectorAll("#editor-card button")) button.disabled = false;
    }
  }

  function save() {
    return write(async () => {
      const id = $("#rule-id").value.trim();
      if (!id) throw new Error("Give the rule an id first.");
      const text = editor.getText();
      const entry = current ? await api("PUT", ruleUrl(id), { text })
                            : await api("POST", "/api/rules", { id, text, enabled: true });
      rules.set(entry.id, entry);
      load(entry, entry.text, entry.id);
      refreshList();
      return `Saved ${entry.id}, version ${entry.version}.`;
    });
  }

  function toggle() {
    return write(async () => {
      const entry = await api("PUT", ruleUrl(current.id), { text: current.text, enabled: !current.enabled });
      rules.set(entry.id, entry);
      const edited = editor.getText();
      load(entry, edited, entry.id); // keeps unsaved edits: only the switch was written
      refreshList();
      return `${entry.id} ${entry.enabled ? "enabled" : "disabled"}.`;
    });
  }

  function remove() {
    return write(async () => {
      const id = current.id;
      await api("DELETE", ruleUrl(id));
      rules.delete(id);
      newRule();
      refreshList();
      return `Deleted ${id}.`;
    });
  }

  // ---- trying it on recent ticks ----------------------------------------

  function trialRow(signal) {
    const row = document.createElement("tr");
    const values = [
      signal.name ?? signal.type, signal.status, formatTime(signal.event_time),
      formatDuration(Math.max((signal.closed_at ?? signal.updated_at) - signal.event_time, 0)),
      signal.key ?? (signal.events ? Object.entries(signal.events).map(([s, t]) => `${s}: ${t.length}`).join(", ")
                                   : ""),
    ];
    values.forEach((value, i) => {
      const td = row.insertCell();
      if (i === 3) td.className = "num";
      td.textContent = value;
    });
    return row;
  }

  async function tryIt() {
    const minutes = Number($("#trial-minutes").value);
    const table = $("#trial-signals");
    if (!Number.isInteger(minutes) || minutes < 1) {
      show("#trial-summary", "Minutes: a whole number from 1.", true);
      return;
    }
    const id = $("#rule-id").value.trim() || "draft";
    show("#trial-summary", `Running the rule over the last ${minutes} min of ticks…`);
    table.hidden = true;
    let result;
    try {
      result = await api("POST", `${ruleUrl(id)}/backtest`, { text: editor.getText(), minutes });
    } catch (error) {
      show("#trial-summary", error.message, true);
      return;
    }
    const signals = result.signals;
    const source = result.source ? ` from ${result.source}` : "";
    const count = `${countFormat.format(signals.length)} signal${signals.length === 1 ? "" : "s"}`;
    const cut = signals.length > TRIAL_ROWS ? `, the first ${TRIAL_ROWS} below` : "";
    show("#trial-summary", `${countFormat.format(result.ticks)} ticks${source} over the last ${minutes} min`
         + ` (${countFormat.format(result.late ?? 0)} late): ${count}${cut}.`);
    table.tBodies[0].replaceChildren(...signals.slice(0, TRIAL_ROWS).map(trialRow));
    table.hidden = signals.length === 0;
  }

  // ---- templates ----------------------------------------------------------

  function templateCard(template) {
    const item = document.createElement("li");
    item.dataset.template = template.name;
    const title = document.createElement("h3");
    title.textContent = template.name;
    if (template.partitioned) {
      const badge = document.createElement("span");
      badge.className = "badge partitioned";
      badge.textContent = "partitioned";
      badge.title = "PARTITION BY symbol: runs for each symbol it covers";
      title.append(" ", badge);
    }
    const doc = document.createElement("p");
    doc.textContent = template.doc;
    const params = document.createElement("p");
    params.className = "params";
    params.textContent = template.params.map((p) => `${p.name} = ${JSON.stringify(p.default)}`).join(", ");
    const preview = document.createElement("pre");
    window.AscepEditor.highlightInto(preview, template.text, language);
    const use = document.createElement("button");
    use.type = "button";
    use.textContent = "Use";
    use.addEventListener("click", () => {
      newRule(template.text, template.name.replaceAll("_", "-"));
      show("#rule-message", `Template ${template.name} in the editor: change its numbers, then save.`);
      editor.focus();
    });
    item.append(title, doc, params, preview, use);
    return item;
  }

  async function loadTemplates() {
    try {
      const { templates } = await api("GET", "/api/rules/templates");
      $("#templates").replaceChildren(...templates.map(templateCard));
    } catch (error) {
      show("#templates-error", `Could not load the templates: ${error.message}`, true);
    }
  }

  // ---- wiring -------------------------------------------------------------

  $("#new-rule").addEventListener("click", () => newRule());
  $("#save-rule").addEventListener("click", save);
  $("#toggle-rule").addEventListener("click", toggle);
  $("#delete-rule").addEventListener("click", () => {
    $("#delete-name").textContent = current.id;
    $("#delete-confirm").hidden = false;
  });
  $("#delete-no").addEventListener("click", () => { $("#delete-confirm").hidden = true; });
  $("#delete-yes").addEventListener("click", remove);
  $("#try-rule").addEventListener("click", tryIt);
  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key === "s") {
      event.preventDefault();
      save();
    }
  });

  newRule();
  refreshList();
  setInterval(refreshList, LIST_EVERY_MS);
  loadTemplates();
})();
