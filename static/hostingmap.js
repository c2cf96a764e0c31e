// Hosting capacity on the map: its words ("thermal, Line.l117 at 100.2 %"), the bus tooltip, the legend, the note
// above the map and the buttons that bring the colouring back. The map and the hosting capacity panels use these,
// for generation (hosting capacity) and for new load (load hosting capacity) alike: one scale, their own words.

import { HC_STOPS, NO_HOSTING_COLOUR, hostingPosition } from "./colours.js";
import { $, PHASE_NAMES, el, esc, fmt } from "./dom.js";
import { S, scenarioName, shownCapacity, shownHosting, studyResult } from "./store.js";

export const LIMIT_WORDS = { voltage_high: "voltage high", voltage_low: "voltage low", thermal: "thermal",
  reverse_power: "reverse power", max_kw: "no limit reached", not_converged: "no convergence" };
export const kwText = (kw) => `${fmt(kw, Number.isInteger(kw) ? 0 : 1)} kW`;

/** What bound a bus, in words and numbers: "thermal, Line.l117 at 100.2 %". */
export function limitText(bound) {
  if (!bound) return "";
  const words = LIMIT_WORDS[bound.kind] || bound.kind;
  switch (bound.kind) {
    case "thermal": return `${words}, ${bound.element} at ${fmt(bound.value, 1)} %`;
    case "voltage_high": case "voltage_low": return `${words}, node ${bound.element} at ${Number(bound.value).toFixed(4)} pu`;
    case "reverse_power": return `${words}, ${bound.element} at ${fmt(bound.value, 1)} kW`;
    case "max_kw": return `${words}: the study's largest size`;
    case "not_converged": return `${words}: the power flow failed at ${kwText(bound.value)}`;
    default: return `${words}${bound.element ? `, ${bound.element}` : ""}`;
  }
}

/** What a trial is, in words: a generator (hosting capacity) or a new load (load hosting capacity). */
export const TRIAL_WORDS = { generation: { trial: "generator", cannot: "cannot host a generator", capacity: "hosting capacity" },
  load: { trial: "load", cannot: "cannot take a load", capacity: "load hosting capacity" } };

/** "67: 4,210 kW — thermal, Line.l117 at 100.2 %", or why the bus cannot host a generator (or take a load). */
export function hostingText(row, capacity = "generation") {
  if (row.hosting_capacity_kW == null) return `${row.bus}: ${TRIAL_WORDS[capacity].cannot} — ${row.reason || "no capacity"}`;
  return `${row.bus}: ${kwText(row.hosting_capacity_kW)}${capacity === "load" ? " of new load" : ""} — ` +
    limitText(row.limited_by);
}

/** An hour of the year in words: "hour 6803 (daytime minimum)", from the result's resolved hours; two names that
 *  resolved to the same hour are both given: "hour 1266 (peak load, evening peak)". */
export function hourText(result, hour) {
  if (hour == null) return "";
  const names = (result.hours || []).filter((h) => h.hour_of_year === hour && h.name).map((h) => h.name.replace("_", " "));
  return `hour ${hour}${names.length ? ` (${[...new Set(names)].join(", ")})` : ""}`;
}

export function hostingTooltip(name, result, capacity = "generation") {
  const row = result.buses.find((r) => r.bus === name);
  if (!row) return `<strong>Bus ${esc(name)}</strong><br>not in this study`;
  const bus = S.bus.get(name), phases = (row.nodes || []).map((n) => PHASE_NAMES[n] || n).join("");
  const words = TRIAL_WORDS[capacity];
  return `<strong class="hc-tip">${esc(hostingText(row, capacity))}</strong>` +
    (row.phases ? `<br>${row.phases}-phase ${words.trial}${capacity === "load" ? ` at pf ${result.criteria.pf}` : ""}` +
      ` on ${phases ? `phase${phases.length > 1 ? "s" : ""} ${phases}` : "its phases"}` +
      ` · ${row.trials} trial${row.trials === 1 ? "" : "s"}` : "") +
    (row.binding_hour != null ? `<br>binding at ${esc(hourText(result, row.binding_hour))}` +
      (row.by_hour && Object.keys(row.by_hour).length > 1 ? ` (${Object.entries(row.by_hour)
        .map(([h, kw]) => `${h}: ${kwText(kw)}`).join(", ")})` : "") : "") +
    (bus && bus.neighbourhood != null ? `<br>neighbourhood N${bus.neighbourhood}` : "") +
    `<br>study of state #${result.sequence} · ${kwText(result.criteria.step_kw)} steps`;
}

/** The buttons that colour the map by a study: each shown while its result exists and the map shows another. */
export function renderHostingToggle() {
  $("hc-show").hidden = S.mapStudy === "hosting_capacity" || !studyResult("hosting_capacity");
  $("lhc-show").hidden = S.mapStudy === "load_hosting_capacity" || !studyResult("load_hosting_capacity");
}

export function renderColouringNote() {
  const hosting = shownHosting(), capacity = shownCapacity();
  $("colouring-note").hidden = !hosting;
  $("colouring-text").textContent = !hosting ? ""
    : capacity === "load" ? `Buses coloured by load hosting capacity (new load, not generation): the study of state ` +
      `#${hosting.sequence} of “${scenarioName()}”.`
    : `Buses coloured by hosting capacity: the study of state #${hosting.sequence} of “${scenarioName()}”.`;
}

/** 1-2-5 steps between the ends of the log scale, for the legend's ticks. */
function logTicks(lo, hi) {
  const ticks = [];
  for (let e = Math.floor(Math.log10(Math.max(lo, 1e-6))); 10 ** e <= hi; e++) {
    for (const m of [1, 2, 5]) { const v = m * 10 ** e; if (v > lo && v < hi) ticks.push(v); }
  }
  return ticks;
}

export function drawHostingLegend(lv) {
  const result = shownHosting(), { lo, hi } = S.hcScale, load = shownCapacity() === "load";
  const W = 430, x0 = 14, x1 = W - 14, barY = 24, barH = 14;
  const X = (kw) => x0 + hostingPosition(kw, lo, hi) * (x1 - x0);
  lv.setAttribute("aria-label", `Legend: bus colour by ${load ? "load hosting capacity (new load)" : "hosting capacity"}, ` +
    `${kwText(lo)} to ${kwText(hi)} on a log scale; grey: ${load ? "cannot take a load" : "cannot host"}`);
  const grad = el("linearGradient", { id: "hcgrad", x1: "0", x2: "1", y1: "0", y2: "0" }, el("defs", {}, lv));
  HC_STOPS.forEach(([r, g, b], i) => el("stop", { offset: `${(i / (HC_STOPS.length - 1)) * 100}%`, "stop-color": `rgb(${r}, ${g}, ${b})` }, grad));
  el("text", { class: "legend-title", x: x0, y: 13 }, lv, load
    ? `Bus colour: load capacity (new load, kW, log), state #${result.sequence}`
    : `Bus colour: hosting capacity (kW, log scale), state #${result.sequence}`);
  el("rect", { class: "hc-bar", x: x0, y: barY, width: x1 - x0, height: barH, fill: "url(#hcgrad)", stroke: "#888", "stroke-width": 0.5 }, lv);
  const label = (kw) => (kw >= 1000 ? `${fmt(kw / 1000, kw % 1000 ? 1 : 0)} MW` : `${fmt(kw, kw % 1 ? 1 : 0)} kW`);
  // Each label's extent (about 6.5 px a character at 11 px), so that no tick label runs into another.
  const span = (x, text, anchor) => {
    const w = 6.5 * text.length + 6;
    return anchor === "start" ? [x, x + w] : anchor === "end" ? [x - w, x] : [x - w / 2, x + w / 2];
  };
  const placed = [];
  for (const [kw, anchor] of [[lo, "start"], [hi, "end"]]) {
    el("line", { class: "limit-tick", x1: X(kw), x2: X(kw), y1: barY - 3, y2: barY + barH + 4 }, lv);
    el("text", { class: "tick limit-text", x: X(kw), y: barY + barH + 16, "text-anchor": anchor }, lv, label(kw));
    placed.push(span(X(kw), label(kw), anchor));
  }
  for (const kw of logTicks(lo, hi)) {
    const x = X(kw), [a, b] = span(x, label(kw), "middle");
    if (placed.some(([c, d]) => a < d && c < b)) continue;
    placed.push([a, b]);
    el("line", { class: "tick-line", x1: x, x2: x, y1: barY, y2: barY + barH + 4 }, lv);
    el("text", { class: "tick", x, y: barY + barH + 16, "text-anchor": "middle" }, lv, label(kw));
  }
  el("text", { class: "tick", x: x0, y: barY + barH + 30 }, lv, "← least (limits first)");
  el("text", { class: "tick", x: x1, y: barY + barH + 30, "text-anchor": "end" }, lv, "most →");
  el("circle", { cx: W / 2 - 46, cy: barY + barH + 26, r: 5, fill: NO_HOSTING_COLOUR, stroke: "#3d4650" }, lv);
  el("text", { class: "tick", x: W / 2 - 37, y: barY + barH + 30 }, lv, TRIAL_WORDS[load ? "load" : "generation"].cannot);
}
