// The time series charts: power (substation, generation, losses on their own axis) and the voltage band, hour by
// hour, or day by day for more than a month; hovering tells the numbers of the hour (or day) under the pointer.

import {
  bandOf, dayLabel, hourLabel, legendKey, limitLines, niceTicks, pointsOf, stepDigits, timeFrame, voltageSpan, yTitle,
} from "./charts.js";
import { $, el, esc, fmt, hideTooltip, placeTooltip } from "./dom.js";
import { S } from "./store.js";

const TS_SERIES = [["substation_kW", "Substation", "#1f5fa8"], ["generation_kW", "Generation", "#1a9850"],
  ["losses_kW", "Losses (right axis)", "#d95f02"]];

/** What a chart plots: every hour, or for more than a month of hours one point per day (its mean, and its range
 *  as a band; for the voltages the day's extremes), which a 1000-pixel chart can show. */
const SERIES_KEYS = ["substation_kW", "generation_kW", "losses_kW", "load_kW", "min_voltage_pu", "max_voltage_pu"];
function chartPoints(hours) {
  if (hours.length <= 24 * 31) {
    return { daily: false, points: hours.map((h, i) => ({ i, hours: [h],
      v: Object.fromEntries(SERIES_KEYS.map((k) => [k, h[k]])), lo: {}, hi: {} })) };
  }
  const points = [];
  for (let start = 0; start < hours.length; start += 24) {
    const day = hours.slice(start, start + 24), v = {}, lo = {}, hi = {};
    for (const k of SERIES_KEYS) {
      const values = day.map((h) => h[k]);
      lo[k] = Math.min(...values);
      hi[k] = Math.max(...values);
      v[k] = values.reduce((s, x) => s + x, 0) / values.length;
    }
    v.min_voltage_pu = lo.min_voltage_pu; // the voltages: the day's lowest and highest, not means
    v.max_voltage_pu = hi.max_voltage_pu;
    points.push({ i: start + (day.length - 1) / 2, hours: day, v, lo, hi });
  }
  return { daily: true, points };
}

/** The tooltip's text for one plotted point (an hour, or a day with its ranges). */
function pointText(p, daily) {
  const h = p.hours[0], v = p.v;
  const range = (k, digits = 1) => (daily ? ` (${fmt(p.lo[k], digits)} to ${fmt(p.hi[k], digits)})` : "");
  const worst = (k) => p.hours.reduce((s, r) => s + (r[k] > 0 ? 1 : 0), 0);
  return (daily
    ? `<strong>${esc(dayLabel(h.hour_of_year))}</strong> · daily mean (range)<br>`
    : `<strong>${esc(hourLabel(h.hour_of_year))}</strong> · hour ${h.hour_of_year} of the year<br>`) +
    `substation ${fmt(v.substation_kW)} kW${range("substation_kW")}<br>load ${fmt(v.load_kW)} kW${range("load_kW")}<br>` +
    `generation ${fmt(v.generation_kW)} kW${range("generation_kW")}<br>losses ${fmt(v.losses_kW, 2)} kW${range("losses_kW", 2)}<br>` +
    `voltage ${v.min_voltage_pu.toFixed(4)} – ${v.max_voltage_pu.toFixed(4)} pu` +
    (worst("voltage_violations") || worst("thermal_violations")
      ? `<br>${daily ? "hours with " : ""}violations: ${daily ? `${worst("voltage_violations")} voltage · ${worst("thermal_violations")} thermal`
        : `${h.voltage_violations} voltage · ${h.thermal_violations} thermal`}` : "") +
    (p.hours.some((r) => r.reverse_power) ? `<br>reverse power${daily ? " in some hours" : ""}` : "");
}

/** Pointer over a chart: a cursor at the nearest point and its numbers in the tooltip. */
function chartHover(svg, plotted, M, W, H, X) {
  const cursor = el("line", { class: "cursor", x1: 0, x2: 0, y1: M.t, y2: H - M.b, visibility: "hidden" }, svg);
  const overlay = el("rect", { class: "overlay", x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b }, svg);
  const { daily, points } = plotted;
  overlay.addEventListener("mousemove", (event) => {
    const box = svg.getBoundingClientRect(), x = (event.clientX - box.left) * W / box.width;
    let best = points[0];
    for (const p of points) if (Math.abs(X(p.i) - x) < Math.abs(X(best.i) - x)) best = p;
    cursor.setAttribute("x1", X(best.i));
    cursor.setAttribute("x2", X(best.i));
    cursor.setAttribute("visibility", "visible");
    placeTooltip(event, pointText(best, daily));
  });
  overlay.addEventListener("mouseleave", () => { cursor.setAttribute("visibility", "hidden"); hideTooltip(); });
}

export function drawPowerChart(hours) {
  const svg = $("ts-power"), H = 300, M = { l: 66, r: 66, t: 34, b: 40 };
  const { W, X, axes } = timeFrame(svg, hours, H, M);
  const plotted = chartPoints(hours), { daily, points } = plotted;
  const kws = points.flatMap((p) => [p.v.substation_kW, p.v.generation_kW,
    ...(daily ? [p.lo.substation_kW, p.hi.substation_kW, p.hi.generation_kW] : [])]);
  const left = niceTicks(Math.min(0, ...kws), Math.max(0, ...kws));
  const Y = (v) => M.t + (left.hi - v) / (left.hi - left.lo) * (H - M.t - M.b);
  for (const v of left.ticks) {
    el("line", { class: v === 0 ? "zero" : "grid", x1: M.l, x2: W - M.r, y1: Y(v), y2: Y(v) }, axes);
    el("text", { class: "tick", x: M.l - 6, y: Y(v) + 4, "text-anchor": "end" }, axes, fmt(v, stepDigits(left.step)));
  }
  // Losses on the right axis: its 0 on the power's 0, round steps on the same grid lines above it.
  const up = Math.max(1, Math.round(left.hi / left.step));
  const lossMax = Math.max(1e-9, ...points.map((p) => (daily ? p.hi.losses_kW : p.v.losses_kW)));
  const mag = 10 ** Math.floor(Math.log10(lossMax / up));
  const lossStep = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st * up >= lossMax - 1e-12);
  const YR = (v) => Y(v / lossStep * left.step);
  for (let j = 0; j <= up; j++) {
    el("text", { class: "tick loss-axis", x: W - M.r + 6, y: YR(j * lossStep) + 4 }, axes, fmt(j * lossStep, stepDigits(lossStep)));
  }
  const mid = (M.t + H - M.b) / 2;
  yTitle(axes, 14, mid, daily ? "Power (kW), daily mean" : "Power (kW)");
  yTitle(axes, W - 10, mid, "Losses (kW)", 90).classList.add("loss-axis");
  const width = daily ? 1.3 : 2;
  for (const [key, , colour] of TS_SERIES) {
    const y = key === "losses_kW" ? YR : Y;
    if (daily) {
      el("polygon", { class: "band", "data-band": key, fill: colour, "fill-opacity": 0.16,
        points: bandOf(points, (p) => p.lo[key], (p) => p.hi[key], X, y) }, svg);
    }
    el("polyline", { class: `series series-${key}`, "data-series": key, "data-points": points.length, stroke: colour,
      "stroke-width": width, points: pointsOf(points, key, X, y) }, svg);
  }
  const lg = el("g", { class: "chart-legend", transform: `translate(${M.l}, 14)` }, svg);
  let x = 0;
  for (const [, label, colour] of TS_SERIES) {
    legendKey(lg, x, { stroke: colour, "stroke-width": 3 }, label);
    x += 40 + label.length * 7;
  }
  el("text", { x, y: 4 }, lg, daily ? "lines: daily means · bands: each day's range · below 0: power back to the grid"
    : "below 0: power flows back to the grid");
  chartHover(svg, plotted, M, W, H, X);
}

export function drawVoltageChart(hours) {
  const svg = $("ts-voltage"), H = 210, M = { l: 66, r: 66, t: 30, b: 40 };
  const { W, X, axes } = timeFrame(svg, hours, H, M);
  const plotted = chartPoints(hours), { daily, points } = plotted;
  const [lo, hi] = S.limits;
  const vMin = Math.min(...points.map((p) => p.v.min_voltage_pu)), vMax = Math.max(...points.map((p) => p.v.max_voltage_pu));
  const [yMin, yMax] = voltageSpan(vMin, vMax, S.limits);
  const Y = (v) => M.t + (yMax - v) / (yMax - yMin) * (H - M.t - M.b);
  const step = yMax - yMin > 0.12 ? 0.02 : 0.01;
  for (let v = Math.ceil(yMin / step - 1e-9) * step; v <= yMax + 1e-9; v += step) {
    el("line", { class: "grid", x1: M.l, x2: W - M.r, y1: Y(v), y2: Y(v) }, axes);
    el("text", { class: "tick", x: M.l - 6, y: Y(v) + 4, "text-anchor": "end" }, axes, v.toFixed(2));
  }
  yTitle(axes, 14, (M.t + H - M.b) / 2, "Voltage (pu)");
  el("polygon", { class: "band", "data-band": "voltage", fill: "#92c5de", "fill-opacity": 0.45,
    points: bandOf(points, (p) => p.v.min_voltage_pu, (p) => p.v.max_voltage_pu, X, Y) }, svg);
  const width = daily ? 1.3 : 1.8;
  for (const [key, colour] of [["max_voltage_pu", "#b2182b"], ["min_voltage_pu", "#2166ac"]]) {
    el("polyline", { class: `series series-${key}`, "data-series": key, "data-points": points.length, stroke: colour,
      "stroke-width": width, points: pointsOf(points, key, X, Y) }, svg);
  }
  limitLines(svg, [lo, hi], Y, M.l, W - M.r);
  const lg = el("g", { class: "chart-legend", transform: `translate(${M.l}, 12)` }, svg);
  el("rect", { x: 0, y: -6, width: 22, height: 12, fill: "#92c5de", "fill-opacity": 0.45 }, lg);
  el("text", { x: 28, y: 4 }, lg, daily ? "each day, every node's voltage lies in the band:" : "every node's voltage lies in the band:");
  let x = daily ? 330 : 270;
  for (const [label, colour] of [["highest", "#b2182b"], ["lowest", "#2166ac"]]) {
    legendKey(lg, x, { stroke: colour, "stroke-width": 3 }, label);
    x += 100;
  }
  legendKey(lg, x, { class: "limit" }, `limits ${lo.toFixed(2)} / ${hi.toFixed(2)} pu`);
  chartHover(svg, plotted, M, W, H, X);
}
