// What the dashboard's pages share: number and time formats, and calls to the JSON API.
"use strict";

(() => {
  const numberFormat = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 8 });
  const sizeFormat = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 6 });
  const countFormat = new Intl.NumberFormat("en-US");

  function formatDuration(ms) {
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
    if (ms < 3600000) return `${(ms / 60000).toFixed(1)} min`;
    if (ms < 86400000) return `${(ms / 3600000).toFixed(1)} h`;
    return `${(ms / 86400000).toFixed(1)} d`;
  }

  // "2025-11-21 04:40:12.345" (UTC, as every time on the dashboard).
  const formatTime = (ms) => new Date(ms).toISOString().replace("T", " ").slice(0, 23);

  const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content ?? "";

  /** An answer of the API that is not a success, with a message fit to show as it is. */
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // What a refusal means to the person at the page; the server's own words follow.
  const REFUSALS = {
    401: "You are not logged in: log in to change rules.",
    403: "Not allowed: your account may only view rules; changing them needs an editor's account.",
    429: "Too many requests: wait a moment and try again.",
  };

  /** The JSON answer of `method path`; throws ApiError naming what went wrong. Writes carry the CSRF token. */
  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRFToken"] = meta("csrf-token");
    let response;
    try {
      response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                     credentials: "same-origin" });
    } catch (error) {
      throw new ApiError(0, `The dashboard cannot be reached (${error.message}).`);
    }
    let answer = null;
    try {
      answer = await response.json();
    } catch (error) {
      if (response.ok) throw new ApiError(response.status, `${method} ${path}: the answer is not JSON.`);
    }
    if (!response.ok) {
      const reason = answer?.error ?? answer?.detail ?? response.statusText;
      const said = typeof reason === "string" ? reason : JSON.stringify(reason);
      const meaning = REFUSALS[response.status];
      throw new ApiError(response.status, meaning ? `${meaning} (${response.status}: ${said})`
                                                  : `${method} ${path} failed (${response.status}): ${said}`);
    }
    return answer;
  }

  window.Ascep = { numberFormat, sizeFormat, countFormat, formatDuration, formatTime, meta, api, ApiError };
})();
