// The map's legends: the bus colour (voltage, voltage change or hosting capacity) and the line and symbol key.

import { LINE_COLOUR, NB_COLOURS, OVERLOAD_COLOUR, V_MAX, V_MIN, deltaColour, lineWidth, voltageColour } from "./colours.js";
import { $, el } from "./dom.js";
import { drawHostingLegend } from "./hostingmap.js";
import { S, compareName } from "./store.js";
import { generatorSymbol, transformerSymbol } from "./symbols.js";

export function drawLegends() {
  drawVoltageLegend();
  drawLinesLegend();
}

/** The bus colour legend: voltages, Δ voltage while comparing, or hosting capacity (generation or load). */
export function drawVoltageLegend() {
  const lv = $("legend-voltage");
  lv.textContent = "";
  const W = 430, x0 = 14, x1 = W - 14, barY = 24, barH = 14;
  lv.setAttribute("viewBox", `0 0 ${W} 70`);
  if (["hosting", "load_hosting"].includes($("map").dataset.colouring)) { drawHostingLegend(lv); return; }
  lv.setAttribute("aria-label", "Legend: bus colour by worst-phase voltage in pu");
  const delta = $("map").dataset.colouring === "delta";
  const [lowEnd, highEnd] = delta ? [-S.deltaRange, S.deltaRange] : [V_MIN, V_MAX];
  const X = (v) => x0 + (v - lowEnd) / (highEnd - lowEnd) * (x1 - x0);
  const colour = delta ? (v) => deltaColour(v, S.deltaRange) : voltageColour;
  const grad = el("linearGradient", { id: "vgrad", x1: "0", x2: "1", y1: "0", y2: "0" }, el("defs", {}, lv));
  for (let i = 0; i <= 40; i++) {
    el("stop", { offset: `${(i / 40) * 100}%`, "stop-color": colour(lowEnd + (highEnd - lowEnd) * i / 40) }, grad);
  }
  el("text", { class: "legend-title", x: x0, y: 13 }, lv,
    delta ? `Bus colour: Δ voltage vs ${compareName()} (pu)` : "Bus colour: worst-phase voltage (pu)");
  el("rect", { x: x0, y: barY, width: x1 - x0, height: barH, fill: "url(#vgrad)", stroke: "#888", "stroke-width": 0.5 }, lv);
  if (delta) {
    const r = S.deltaRange, digits = r < 0.01 ? 3 : r < 0.1 ? 2 : 1;
    for (const v of [-r, -r / 2, 0, r / 2, r]) {
      el("line", { class: "tick-line", x1: X(v), x2: X(v), y1: barY, y2: barY + barH + 4 }, lv);
      const text = v === 0 ? "0 (no change)" : `${v > 0 ? "+" : "−"}${Math.abs(v).toFixed(digits + 1)}`;
      const anchor = v === -r ? "start" : v === r ? "end" : "middle"; // the ends stay inside the legend
      el("text", { class: "tick", x: X(v), y: barY + barH + 16, "text-anchor": anchor }, lv, text);
    }
    el("text", { class: "tick", x: x0, y: barY + barH + 30 }, lv, "← lower");
    el("text", { class: "tick", x: x1, y: barY + barH + 30, "text-anchor": "end" }, lv, "higher →");
    el("circle", { cx: W / 2 - 52, cy: barY + barH + 26, r: 5, fill: "#f7f7f7", class: "legend-violation" }, lv);
    el("text", { class: "tick", x: W / 2 - 42, y: barY + barH + 30 }, lv, "ring: outside limits");
    return;
  }
  for (const v of [0.90, 0.95, 1.0, 1.05, 1.10]) {
    const isLimit = Math.abs(v - S.limits[0]) < 1e-9 || Math.abs(v - S.limits[1]) < 1e-9;
    el("line", { class: isLimit ? "limit-tick" : "tick-line", x1: X(v), x2: X(v), y1: barY - (isLimit ? 4 : 0), y2: barY + barH + 4 }, lv);
    el("text", { class: isLimit ? "tick limit-text" : "tick", x: X(v), y: barY + barH + 16, "text-anchor": "middle" }, lv,
      v.toFixed(2) + (isLimit ? " limit" : ""));
  }
  el("circle", { cx: x1 - 118, cy: 9, r: 5, fill: voltageColour(0.93), class: "legend-violation" }, lv);
  el("text", { class: "tick", x: x1 - 108, y: 13 }, lv, "ring: outside limits");
}

function drawLinesLegend() {
  const ll = $("legend-lines");
  ll.textContent = "";
  ll.setAttribute("viewBox", "0 0 430 94");
  el("text", { class: "legend-title", x: 14, y: 13 }, ll, "Line width: loading (% of normal rating)");
  let x = 14;
  for (const pct of [0, 50, 100, 150]) {
    el("line", { x1: x, x2: x + 30, y1: 28, y2: 28, stroke: pct > 100 ? OVERLOAD_COLOUR : LINE_COLOUR, "stroke-width": lineWidth(pct) }, ll);
    el("text", { class: "tick", x: x + 34, y: 32 }, ll, pct > 100 ? `>100 %` : `${pct} %`);
    x += 80;
  }
  const row2 = 56;
  el("line", { x1: 14, x2: 44, y1: row2, y2: row2, stroke: LINE_COLOUR, "stroke-width": 2 }, ll);
  el("rect", { class: "switch-mark", x: 25, y: row2 - 4, width: 8, height: 8 }, ll);
  el("text", { class: "tick", x: 48, y: row2 + 4 }, ll, "switch");
  el("line", { x1: 100, x2: 130, y1: row2, y2: row2, stroke: LINE_COLOUR, "stroke-width": 2, "stroke-dasharray": "5 4" }, ll);
  el("rect", { class: "switch-mark open-mark", x: 111, y: row2 - 4, width: 8, height: 8 }, ll);
  el("text", { class: "tick", x: 134, y: row2 + 4 }, ll, "open tie");
  generatorSymbol(el("g", { class: "gen-marker", transform: `translate(200, ${row2})` }, ll));
  el("text", { class: "tick", x: 211, y: row2 + 4 }, ll, "generator");
  el("line", { x1: 286, x2: 302, y1: row2, y2: row2, stroke: NB_COLOURS[0], "stroke-opacity": 0.3, "stroke-width": 20, "stroke-linecap": "round" }, ll);
  el("text", { class: "tick", x: 318, y: row2 + 4 }, ll, "neighbourhood");
  const row3 = 80;
  for (const [x, regulator, text] of [[14, false, "transformer"], [130, true, "voltage regulator (tap changer)"]]) {
    el("line", { x1: x, x2: x + 30, y1: row3, y2: row3, stroke: LINE_COLOUR, "stroke-width": 2 }, ll);
    transformerSymbol(el("g", { class: "xf-symbol", transform: `translate(${x + 15}, ${row3})` }, ll), regulator);
    el("text", { class: "tick", x: x + 34, y: row3 + 4 }, ll, text);
  }
}
