// Time series: the form's request (a day, a week or a year from a start day), the result's note and totals, and its
// two charts (tscharts.js).

import { dayLabel, hourLabel } from "./charts.js";
import { $, fmt, numberOf } from "./dom.js";
import { renderStaleNotes } from "./results.js";
import { scenarioName, studyEntry } from "./store.js";
import { drawPowerChart, drawVoltageChart } from "./tscharts.js";

const TS_TOTALS = [["energy_imported_kWh", "Energy imported", "kWh"], ["energy_exported_kWh", "Energy exported", "kWh"],
  ["generation_kWh", "Generation", "kWh"], ["losses_kWh", "Losses", "kWh"],
  ["hours_with_voltage_violations", "Hours with voltage violations", ""],
  ["hours_with_thermal_violations", "Hours with thermal violations", ""], ["tap_changes", "Tap changes", ""],
  ["curtailed_kWh", "Curtailed by smart inverters", "kWh"]];  // the last only with inverter generators

function renderStartHint() {
  const day = numberOf("ts-start-day");
  $("ts-start-hint").textContent = Number.isFinite(day) && day >= 1 && day < 366
    ? `Starts at hour ${fmt((day - 1) * 24, 0)} of the year: ${dayLabel(Math.floor(day - 1) * 24)}, 00:00.` : "";
}

function renderTimeSeries() {
  const run = studyEntry("time_series").run, result = run && run.result;
  $("ts-results").hidden = !result;
  renderStaleNotes();
  if (!result) return;
  const hours = result.hours, spec = result.spec || {};
  $("ts-csv").setAttribute("href", `/jobs/${encodeURIComponent(run.job.id)}/result?format=csv`);
  $("ts-csv").setAttribute("download", `time_series-${run.job.id}.csv`);
  const first = hours[0], last = hours[hours.length - 1];
  const shape = (s) => (Array.isArray(s) ? "custom" : s);
  $("ts-note").textContent = `State #${result.sequence} of “${scenarioName(result.scenario)}” · ${fmt(hours.length, 0)} hour` +
    `${hours.length === 1 ? "" : "s"}${first ? `, ${hourLabel(first.hour_of_year)} to ${hourLabel(last.hour_of_year)}` : ""} · ` +
    `${shape(spec.load_shape)} load, generators following the ${shape(spec.generator_shape)} shape` +
    `${spec.neighbourhood_shapes && Object.keys(spec.neighbourhood_shapes).length ? ", some neighbourhoods their own" : ""}.`;
  const t = result.totals;
  $("ts-totals").innerHTML = TS_TOTALS.filter(([key]) => key in t).map(([key, label, unit]) => {
    const v = t[key], bad = !unit && key.startsWith("hours_") && v > 0;
    return `<div><dt>${label}</dt><dd id="ts-total-${key}" data-value="${v}"${bad ? ' class="bad"' : ""}>` +
      `${fmt(v, 0)}${unit ? ` ${unit}` : ""}</dd></div>`;
  }).join("");
  drawPowerChart(hours);
  drawVoltageChart(hours);
}

function wireTimeSeries() {
  $("ts-start-day").addEventListener("input", renderStartHint);
  renderStartHint();
}

export const timeSeries = {
  kind: "time_series",
  ui: { section: "ts-section", form: "ts-form", run: "ts-run", cancel: "ts-cancel", error: "ts-error",
    row: "ts-progress-row", bar: "ts-progress", text: "ts-progress-text",
    fields: { hours: "ts-hours", start_hour: "ts-start-day", load_shape: "ts-load-shape" } },
  body: () => {
    const day = numberOf("ts-start-day");
    return { hours: Number($("ts-hours").value), start_hour: day === null ? null : Math.round((day - 1) * 24 * 1e6) / 1e6,
      load_shape: $("ts-load-shape").value, generator_shape: "pv" };
  },
  render: renderTimeSeries,
  wire: wireTimeSeries,
};
