// EV adoption (EPRI's stochastic method turned around for new load): the form's request, the feeder's range (the
// least and greatest adoption the samples pass), a chart of the share of samples passing at each adoption with the
// two marked, the CSV tables, and a chosen sample's first failure: its chargers marked on the map.

import { niceTicks, yTitle } from "./charts.js";
import { $, el, esc, fmt, numberOf } from "./dom.js";
import { limitText } from "./hostingmap.js";
import { drawChargers } from "./map.js";
import { renderStaleNotes } from "./results.js";
import { S, scenarioName, studyEntry } from "./store.js";

const KIND = "ev_adoption", H = 260, M = { l: 56, r: 16, t: 14, b: 40 };
const PASSING = "#1a7f37";

/** The share of samples passing against adoption: a line through the levels, min and max as dashed verticals. */
function drawPassingChart(result) {
  const svg = $("ev-chart"), levels = result.levels, n = result.samples.length, W = 1000;
  svg.textContent = "";
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const pcts = levels.map((l) => l.adoption_pct), lo = 0, hi = niceTicks(0, Math.max(...pcts, 1), 8).hi;
  const X = (pct) => M.l + (pct - lo) / (hi - lo) * (W - M.l - M.r);
  const Y = (share) => H - M.b - share * (H - M.t - M.b);
  const axes = el("g", { class: "axes" }, svg);
  for (const t of niceTicks(lo, hi, 8).ticks) {
    el("line", { class: "grid", x1: X(t), x2: X(t), y1: M.t, y2: H - M.b }, axes);
    el("text", { class: "tick", x: X(t), y: H - M.b + 15, "text-anchor": "middle" }, axes, `${fmt(t, 0)} %`);
  }
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    el("line", { class: "grid", x1: M.l, x2: W - M.r, y1: Y(t), y2: Y(t) }, axes);
    el("text", { class: "tick", x: M.l - 6, y: Y(t) + 4, "text-anchor": "end" }, axes, `${fmt(t * 100, 0)} %`);
  }
  yTitle(svg, 14, (H - M.b + M.t) / 2, "samples passing");
  el("text", { class: "axis-title", x: (W + M.l) / 2, y: H - 6, "text-anchor": "middle" }, svg,
    "adoption (% of customers with an EV charger)");
  const d = levels.map((l, i) => `${i ? "L" : "M"}${X(l.adoption_pct).toFixed(1)},${Y(l.samples_passing / n).toFixed(1)}`);
  el("path", { class: "series passing", d: d.join(" "), stroke: PASSING, "stroke-width": 2.5 }, svg);
  for (const l of levels) {
    el("circle", { class: "level", cx: X(l.adoption_pct), cy: Y(l.samples_passing / n), r: 3.5, fill: PASSING,
      "data-pct": l.adoption_pct, "data-passing": l.samples_passing }, svg);
  }
  for (const [key, label] of [["min_adoption_pct", "min"], ["max_adoption_pct", "max"]]) {
    const x = X(result[key]), right = x > W / 2; // a label near the right edge goes to the line's left
    el("line", { class: `marker ${label}`, x1: x, x2: x, y1: M.t, y2: H - M.b, "data-pct": result[key] }, svg);
    el("text", { class: "marker-label", x: right ? x - 4 : x + 4, y: M.t + (label === "min" ? 12 : 28),
      "text-anchor": right ? "end" : "start" }, svg, `${label} ${fmt(result[key], 0)} %`);
  }
}

const chargersKw = (chargers) => chargers.reduce((s, c) => s + c.kW, 0);
/** "60 % (55 chargers, 396.0 kW): every sample passes", from the count of chargers at that adoption. */
const rangeText = (pct, chargers, kwEach, words) => `${fmt(pct, 0)} % (${chargers} charger${chargers === 1 ? "" : "s"}, ` +
  `${fmt(chargers * kwEach, 1)} kW): ${words}`;

/** The samples that failed, earliest failure first: the choices whose chargers the map can mark. */
const failedSamples = (result) => result.samples.filter((s) => s.first_failure)
  .sort((a, b) => a.first_failure.adoption_pct - b.first_failure.adoption_pct || a.sample - b.sample);

function sampleOption(s) {
  const f = s.first_failure;
  return `<option value="${s.sample}">Sample ${s.sample}: fails at ${fmt(f.adoption_pct, 0)} % ` +
    `(${f.chargers.length} chargers) — ${esc(limitText(f.limited_by))}</option>`;
}

/** The chosen sample's first failure on the map while "Mark" is ticked; nothing otherwise. */
function markChosenSample() {
  const run = studyEntry(KIND).run, result = run && run.result;
  const chosen = result && $("ev-mark").checked && result.samples.find((s) => String(s.sample) === $("ev-sample").value);
  S.evMarks = chosen && chosen.first_failure ? { run, sample: chosen } : null;
  const f = S.evMarks && chosen.first_failure;
  $("ev-mark-note").textContent = f ? `On the map: sample ${chosen.sample}'s ${f.chargers.length} chargers at ` +
    `${fmt(f.adoption_pct, 0)} % (${fmt(chargersKw(f.chargers), 1)} kW), what bound it outlined: ${limitText(f.limited_by)}.` : "";
  drawChargers();
}

function renderEvAdoption() {
  const run = studyEntry(KIND).run, result = run && run.result;
  $("ev-results").hidden = !result;
  renderStaleNotes();
  if (S.evMarks && S.evMarks.run !== run) { S.evMarks = null; drawChargers(); } // another scenario's or an older run
  if (!result) { $("ev-mark-note").textContent = ""; return; }
  const job = encodeURIComponent(run.job.id), spec = result.spec;
  for (const table of ["levels", "samples"]) {
    $(`ev-csv-${table}`).setAttribute("href", `/jobs/${job}/result?format=csv&table=${table}`);
    $(`ev-csv-${table}`).setAttribute("download", `ev_adoption_${table}-${run.job.id}.csv`);
  }
  $("ev-note").textContent = `State #${result.sequence} of “${scenarioName(result.scenario)}” · ${result.samples.length} ` +
    `random orders of the ${spec.customers} customers, chargers of ${fmt(spec.charger_kW, 1)} kW × coincidence ` +
    `${spec.coincidence} = ${fmt(spec.charger_kW_each, 2)} kW at pf ${spec.pf}, each walked upward to its first failure.`;
  $("ev-figures").innerHTML = [
    ["Minimum adoption", rangeText(result.min_adoption_pct, result.min_adoption_chargers, spec.charger_kW_each, "every sample passes")],
    ["Maximum adoption", rangeText(result.max_adoption_pct, result.max_adoption_chargers, spec.charger_kW_each, "some sample passes")],
  ].map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
  drawPassingChart(result);
  const failed = failedSamples(result), keep = $("ev-sample").value;
  $("ev-sample").innerHTML = failed.map(sampleOption).join("");
  if (failed.some((s) => String(s.sample) === keep)) $("ev-sample").value = keep;
  $("ev-sample-row").hidden = !failed.length;
  markChosenSample();
}

export const evAdoption = {
  kind: KIND,
  ui: { section: "ev-section", form: "ev-form", run: "ev-run", cancel: "ev-cancel", error: "ev-error",
    row: "ev-progress-row", bar: "ev-progress", text: "ev-progress-text",
    fields: { charger_kW: "ev-charger", coincidence: "ev-coincidence", "adoption_pct.start": "ev-start",
      "adoption_pct.stop": "ev-stop", "adoption_pct.step": "ev-step", adoption_pct: "ev-stop", samples: "ev-samples",
      seed: "ev-seed" } },
  body: () => ({ adoption_pct: { start: numberOf("ev-start"), stop: numberOf("ev-stop"), step: numberOf("ev-step") },
    samples: numberOf("ev-samples"), seed: numberOf("ev-seed"), charger_kW: numberOf("ev-charger"),
    coincidence: numberOf("ev-coincidence") }),
  render: renderEvAdoption,
  wire: () => {
    $("ev-sample").addEventListener("change", markChosenSample);
    $("ev-mark").addEventListener("change", markChosenSample);
  },
};
