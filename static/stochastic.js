// Stochastic hosting capacity (EPRI's method): the form's request, the feeder's range (min and max) and a chart of the
// share of samples failing at each penetration, with the two marked, and the CSV tables of levels and samples.

import { niceTicks, yTitle } from "./charts.js";
import { $, el, esc, fmt, numberOf } from "./dom.js";
import { renderStaleNotes } from "./results.js";
import { scenarioName, studyEntry } from "./store.js";

const H = 260, M = { l: 56, r: 16, t: 14, b: 40 };

/** The share of samples failing against penetration: a step line, min and max as dashed verticals. */
function drawFailingChart(result) {
  const svg = $("sh-chart"), levels = result.levels, n = result.samples.length;
  svg.textContent = "";
  const W = 1000;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const pcts = levels.map((l) => l.penetration_pct), lo = 0, hi = niceTicks(0, Math.max(...pcts, 1), 8).hi;
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
  yTitle(svg, 14, (H - M.b + M.t) / 2, "samples failing");
  el("text", { class: "axis-title", x: (W + M.l) / 2, y: H - 6, "text-anchor": "middle" }, svg, "penetration (PV kW as % of load)");
  let path = "";
  levels.forEach((l, i) => {
    const share = (n - l.samples_passing) / n;
    path += `${i ? "L" : "M"}${X(l.penetration_pct).toFixed(1)},${Y(share).toFixed(1)} `;
  });
  el("path", { class: "series failing", d: path, stroke: "#b2182b", "stroke-width": 2.5 }, svg);
  for (const l of levels) {
    el("circle", { class: "level", cx: X(l.penetration_pct), cy: Y((n - l.samples_passing) / n), r: 3.5, fill: "#b2182b",
      "data-pct": l.penetration_pct, "data-failing": n - l.samples_passing }, svg);
  }
  for (const [key, label] of [["min_hc_pct", "min"], ["max_hc_pct", "max"]]) {
    const x = X(result[key]);
    el("line", { class: `marker ${label}`, x1: x, x2: x, y1: M.t, y2: H - M.b, "data-pct": result[key] }, svg);
    const right = x > W / 2; // a label near the right edge goes to the line's left
    el("text", { class: "marker-label", x: right ? x - 4 : x + 4, y: M.t + (label === "min" ? 12 : 28),
      "text-anchor": right ? "end" : "start" }, svg, `${label} ${fmt(result[key], 0)} %`);
  }
}

function renderStochastic() {
  const run = studyEntry("stochastic_hosting_capacity").run, result = run && run.result;
  $("sh-results").hidden = !result;
  renderStaleNotes();
  if (!result) return;
  const job = encodeURIComponent(run.job.id);
  for (const table of ["levels", "samples"]) {
    $(`sh-csv-${table}`).setAttribute("href", `/jobs/${job}/result?format=csv&table=${table}`);
    $(`sh-csv-${table}`).setAttribute("download", `stochastic_${table}-${run.job.id}.csv`);
  }
  $("sh-note").textContent = `State #${result.sequence} of “${scenarioName(result.scenario)}” · ` +
    `${result.samples.length} random placements of customer PV, each walked upward to its first failure.`;
  $("sh-figures").innerHTML = [
    ["Minimum hosting capacity", `${fmt(result.min_hc_pct, 0)} % (${fmt(result.min_hc_kW, 0)} kW): every placement passes`],
    ["Maximum hosting capacity", `${fmt(result.max_hc_pct, 0)} % (${fmt(result.max_hc_kW, 0)} kW): some placement passes`],
  ].map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
  drawFailingChart(result);
}

export const stochasticHostingCapacity = {
  kind: "stochastic_hosting_capacity",
  ui: { section: "sh-section", form: "sh-form", run: "sh-run", cancel: "sh-cancel", error: "sh-error",
    row: "sh-progress-row", bar: "sh-progress", text: "sh-progress-text",
    fields: { samples: "sh-samples", penetration_pct: "sh-stop", seed: "sh-seed" } },
  body: () => ({ penetration_pct: { start: numberOf("sh-step"), stop: numberOf("sh-stop"), step: numberOf("sh-step") },
    samples: numberOf("sh-samples"), seed: numberOf("sh-seed") }),
  render: renderStochastic,
  wire: () => {},
};
