// The scenario picker and the "Compare with" list: the server's scenarios, read again after each change and poll.

import { api } from "./api.js";
import { $, clock } from "./dom.js";
import { S, scenarioById, scenarioName } from "./store.js";

export async function refreshScenarios() {
  try {
    S.scenarios = (await api("GET", "/scenarios")).scenarios;
  } catch (_) { return; } // keep the last list; the next poll reads it again
  renderScenarioPicker();
}

/** Fill a select with [value, text] options, only when they changed (a poll must not close an open list). */
function fillSelect(select, options, value) {
  const key = JSON.stringify(options);
  if (select.dataset.key !== key) {
    select.dataset.key = key;
    select.textContent = "";
    for (const [v, text] of options) select.appendChild(new Option(text, v));
  }
  select.value = value;
}

export function renderScenarioPicker() {
  const count = (n) => `${n} change${n === 1 ? "" : "s"}`;
  const on = (s) => (S.feeders.length > 1 ? ` · ${s.feeder}` : "");
  fillSelect($("scenario-select"), S.scenarios.map((s) => [s.id, `${s.name || s.id} · ${count(s.changes)}${on(s)}`]),
    S.scenario);
  const others = S.scenarios.filter((s) => s.id !== S.scenario && s.feeder === S.feeder) // a diff is within a feeder
    .map((s) => [s.id, `scenario “${s.name || s.id}”`]);
  fillSelect($("compare-select"), [["", "nothing: show voltages"], ["base", "the base case"], ...others], S.compare);
  const s = scenarioById(S.scenario);
  $("scenario-info").textContent = s ? `id ${s.id} · state #${s.sequence} · created ${clock(s.created_at)}` +
    (s.forked_from ? ` · fork of “${scenarioName(s.forked_from)}”` : "") : "";
  if (!S.busy) $("scenario-delete").disabled = S.scenario === "default";
  $("studies-scenario").textContent = `of “${scenarioName()}”`;
}
