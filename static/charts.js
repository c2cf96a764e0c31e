// What the SVG charts share: round ticks, the voltage axis with its limits, axis titles, legend keys, polylines and
// bands, and the time axis of an hour-by-hour chart. The voltage profile and the time series charts use these.

import { el } from "./dom.js";

/** Round ticks covering lo..hi (about `count` of them): { lo, hi, ticks, step }. */
export function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) { hi = lo + 1; }
  const raw = (hi - lo) / count, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const a = Math.floor(lo / step + 1e-9) * step, b = Math.ceil(hi / step - 1e-9) * step, ticks = [];
  for (let v = a; v <= b + step / 2; v += step) ticks.push(Math.abs(v) < step / 1e6 ? 0 : v);
  return { lo: a, hi: b, ticks, step };
}

/** Decimals that show every multiple of `step` exactly (2.5 → 1). */
export function stepDigits(step) {
  let digits = 0;
  while (digits < 4 && Math.abs(step * 10 ** digits - Math.round(step * 10 ** digits)) > 1e-9) digits++;
  return digits;
}

/** A voltage axis's ends: the voltages shown with a margin, in whole hundredths, and both limits always inside. */
export function voltageSpan(vMin, vMax, [lo, hi]) {
  return [Math.min(lo - 0.01, Math.floor((vMin - 0.005) * 100) / 100),
    Math.max(hi + 0.01, Math.ceil((vMax + 0.005) * 100) / 100)];
}

/** The two voltage limits as dashed lines from x1 to x2, each labelled at its right end. */
export function limitLines(parent, limits, Y, x1, x2) {
  for (const limit of limits) {
    el("line", { class: "limit", x1, x2, y1: Y(limit), y2: Y(limit) }, parent);
    el("text", { class: "limit-label", x: x2 - 4, y: Y(limit) + (limit < 1 ? 14 : -5), "text-anchor": "end" }, parent,
      `${limit.toFixed(2)} pu limit`);
  }
}

/** A vertical axis title at (x, mid), turned by `angle` degrees (-90 reads upwards, 90 downwards). */
export function yTitle(parent, x, mid, text, angle = -90) {
  return el("text", { class: "axis-title", x, y: mid, "text-anchor": "middle", transform: `rotate(${angle} ${x} ${mid})` },
    parent, text);
}

/** One legend entry at `x`: a short line drawn with `attrs` and its label. */
export function legendKey(legend, x, attrs, label) {
  el("line", { x1: x, x2: x + 22, y1: 0, y2: 0, ...attrs }, legend);
  el("text", { x: x + 28, y: 4 }, legend, label);
}

/** SVG "points" of a series, and of a band between two of them (upper edge left to right, lower back). */
export const pointsOf = (points, key, X, Y) => points.map((p) => `${X(p.i).toFixed(1)},${Y(p.v[key]).toFixed(1)}`).join(" ");
export const bandOf = (points, lo, hi, X, Y) => [...points.map((p) => `${X(p.i).toFixed(1)},${Y(hi(p)).toFixed(1)}`),
  ...points.map((p) => `${X(p.i).toFixed(1)},${Y(lo(p)).toFixed(1)}`).reverse()].join(" ");

// ---- the time axis: hours of a 365-day year, as the load and PV shapes have them
export const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const MONTH_START_DAY = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
export const dayLabel = (hourOfYear) => {
  const day = Math.floor(hourOfYear / 24) % 365;
  let m = 11;
  while (MONTH_START_DAY[m] > day) m--;
  return `${day - MONTH_START_DAY[m] + 1} ${MONTHS[m]}`;
};
const clockLabel = (hourOfYear) => `${String(hourOfYear % 24).padStart(2, "0")}:00`;
export const hourLabel = (hourOfYear) => `${dayLabel(hourOfYear)} ${clockLabel(hourOfYear)}`;

/** The hour ticks for `hours` (their hour of the year): clock times for a day, dates for a week, months for a year. */
function hourTicks(hours) {
  const n = hours.length, ticks = [];
  if (n > 24 * 45) {
    const starts = new Set(MONTH_START_DAY.map((d) => d * 24));
    hours.forEach((h, i) => { if (starts.has(h.hour_of_year)) ticks.push([i, MONTHS[MONTH_START_DAY.indexOf(h.hour_of_year / 24)]]); });
    return ticks;
  }
  const step = [1, 3, 6, 12, 24, 48, 168, 336].find((s) => n / s <= 9) || 720;
  hours.forEach((h, i) => {
    const hy = h.hour_of_year;
    if (step < 24 ? hy % step === 0 : hy % 24 === 0 && (hy / 24) % (step / 24) === 0) {
      ticks.push([i, step < 24 && hy % 24 !== 0 ? clockLabel(hy) : dayLabel(hy)]);
    }
  });
  return ticks;
}

/** A chart over `hours`: emptied, sized, with its time axis; returns the width, X (hour index → x) and the axes. */
export function timeFrame(svg, hours, H, M) {
  svg.textContent = "";
  const W = 1000, n = hours.length;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const X = (i) => M.l + (n > 1 ? i / (n - 1) : 0.5) * (W - M.l - M.r);
  const axes = el("g", { class: "axes" }, svg);
  for (const [i, text] of hourTicks(hours)) {
    el("line", { class: "grid", x1: X(i), x2: X(i), y1: M.t, y2: H - M.b }, axes);
    el("text", { class: "tick", x: X(i), y: H - M.b + 15, "text-anchor": "middle" }, axes, text);
  }
  return { W, X, axes };
}
