// Smart inverter gain: hosting capacity with the trial generator as a smart inverter (IEEE 1547-2018 volt-var,
// volt-watt or both, rated at the trial's kW) beside the same study without it (the hosting capacity panel's own
// run, with the same buses, phases, step and hours), and the gain per bus. Running it runs both: its own job, and the
// plain one when the panel has no finished run of the same settings of this state.

import { $, esc, fmt } from "./dom.js";
import { hostingCapacity } from "./hosting.js";
import { LIMIT_WORDS, kwText } from "./hostingmap.js";
import { selectBus } from "./map.js";
import { renderStaleNotes } from "./results.js";
import { S, scenarioName, studyEntry } from "./store.js";

export const MODE_WORDS = { volt_var: "volt-var", volt_watt: "volt-watt", volt_var_volt_watt: "volt-var and volt-watt" };

/** The settings that must agree for two studies to be compared: everything but the trial's inverter. */
function sameStudy(a, b) {
  const strip = ({ inverter, ...rest }) => JSON.stringify(rest);
  return a.scenario === b.scenario && a.sequence === b.sequence && strip(a.criteria) === strip(b.criteria) &&
    JSON.stringify(a.hours ?? null) === JSON.stringify(b.hours ?? null) &&
    JSON.stringify(a.buses.map((r) => r.bus)) === JSON.stringify(b.buses.map((r) => r.bus));
}

/** The plain run to compare with: the hosting capacity panel's result, when it is the same study. */
function plainResult(withInverter) {
  const run = studyEntry("hosting_capacity").run, plain = run && run.result;
  return plain && !plain.criteria.inverter && withInverter && sameStudy(plain, withInverter) ? plain : null;
}

/** Each bus both studies could host at: without, with, the gain; sorted by gain, largest first. */
function gainRows(plain, smart) {
  const withInverter = new Map(smart.buses.map((r) => [r.bus, r]));
  return plain.buses.filter((r) => r.hosting_capacity_kW != null && withInverter.has(r.bus)).map((r) => {
    const s = withInverter.get(r.bus);
    return { bus: r.bus, without: r.hosting_capacity_kW, with: s.hosting_capacity_kW, limit: s.limited_by,
      gain: s.hosting_capacity_kW - r.hosting_capacity_kW };
  }).sort((a, b) => b.gain - a.gain || a.bus.localeCompare(b.bus, "en", { numeric: true }));
}

function gainFigures(rows) {
  const gains = rows.map((r) => r.gain).sort((a, b) => a - b);
  if (!gains.length) return [];
  const median = gains[Math.floor((gains.length - 1) / 2)];
  const signed = (kw) => `${kw > 0 ? "+" : ""}${kwText(kw)}`;
  const least = rows.filter((r) => r.gain === gains[0]).map((r) => r.bus);
  const most = rows.filter((r) => r.gain === gains[gains.length - 1]).map((r) => r.bus);
  const list = (buses) => `${buses.slice(0, 3).join(", ")}${buses.length > 3 ? ` and ${buses.length - 3} more` : ""}`;
  return [["Buses", String(rows.length)], ["Median gain", signed(median)],
    ["Least", `${signed(gains[0])} at ${list(least)}`], ["Most", `${signed(gains[gains.length - 1])} at ${list(most)}`],
    ["Gaining", `${rows.filter((r) => r.gain > 0).length} · losing ${rows.filter((r) => r.gain < 0).length}`]];
}

function gainRow(r) {
  const sel = r.bus === S.selected ? ' class="selected"' : "", cls = r.gain > 0 ? "up" : r.gain < 0 ? "down" : "";
  return `<tr${sel} data-bus="${esc(r.bus)}" data-gain="${r.gain}"><th scope="row">${esc(r.bus)}</th>` +
    `<td class="r">${fmt(r.without, 0)}</td><td class="r">${fmt(r.with, 0)}</td>` +
    `<td class="r ${cls}">${r.gain > 0 ? "+" : ""}${fmt(r.gain, 0)}</td>` +
    `<td>${esc(r.limit ? LIMIT_WORDS[r.limit.kind] || r.limit.kind : "")}</td></tr>`;
}

function renderGain() {
  const run = studyEntry("hosting_gain").run, smart = run && run.result, plain = plainResult(smart);
  $("hcg-results").hidden = !(smart && plain);
  renderStaleNotes();
  const plainRun = studyEntry("hosting_capacity").run;
  const waiting = smart && !plain;
  $("hcg-waiting").hidden = !waiting;
  if (waiting) {
    $("hcg-waiting").textContent = plainRun && !plainRun.result && !plainRun.failure
      ? "Waiting for the same study without the inverter (the hosting capacity panel runs it)…"
      : "The hosting capacity panel's last run is not the same study (settings or state): run this again to run both.";
  }
  if (!(smart && plain)) return;
  const inverter = smart.criteria.inverter;
  $("hcg-note").textContent = `State #${smart.sequence} of “${scenarioName(smart.scenario)}” · trial generator as a ` +
    `${MODE_WORDS[inverter.mode] || inverter.mode} inverter rated at its kW, beside the same study without it ` +
    `(${kwText(smart.criteria.step_kw)} steps).`;
  const rows = gainRows(plain, smart);
  $("hcg-figures").innerHTML = gainFigures(rows).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
  $("hcg-rows").innerHTML = rows.map(gainRow).join("");
}

function wireGain() {
  $("hcg-rows").addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-bus]");
    if (row) selectBus(row.dataset.bus);
  });
}

export const hostingGain = {
  kind: "hosting_gain",
  path: "hosting_capacity",
  follows: "hosting_capacity", // drawn again when that study's run changes
  ui: { section: "hcg-section", form: "hcg-form", run: "hcg-run", cancel: "hcg-cancel", error: "hcg-error",
    row: "hcg-progress-row", bar: "hcg-progress", text: "hcg-progress-text", fields: { inverter: "hcg-mode" } },
  body: () => ({ ...hostingCapacity.body(), inverter: { mode: $("hcg-mode").value } }),
  render: renderGain,
  wire: wireGain,
  /** Both studies at once: the plain one from the hosting capacity panel, unless it has that one already. */
  started() {
    const plain = studyEntry("hosting_capacity").run;
    const same = plain && !plain.failure && plain.job.status !== "cancelled" && plain.result !== undefined &&
      JSON.stringify(hostingCapacity.body()) === JSON.stringify(plain.body || null) &&
      (!plain.result || plain.result.sequence === S.sequence);
    if (!same && !$("hc-run").disabled) $("hc-run").click();
  },
};
