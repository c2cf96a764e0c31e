// The "Voltage profile" panel: every node's voltage against its distance from the substation, one segment per line
// and phase (as OpenDSS's plot profile draws it), the limits, and the selected bus.

import { legendKey, limitLines, voltageSpan, yTitle } from "./charts.js";
import { $, PHASE_COLOURS, PHASE_NAMES, el } from "./dom.js";
import { S } from "./store.js";

export function drawProfile() {
  const svg = $("profile");
  svg.textContent = "";
  const W = 1000, H = 330, M = { l: 62, r: 18, t: 34, b: 44 };
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const dist = new Map(S.buses.map((b) => [b.name, b.distance_km]));
  const vs = S.results.bus_details.map((r) => r.VMag_pu);
  const [lo, hi] = S.limits;
  const [yMin, yMax] = voltageSpan(Math.min(...vs), Math.max(...vs), S.limits);
  const dMax = Math.max(0.5, Math.ceil(Math.max(...[...dist.values()].filter(Number.isFinite)) * 4) / 4);
  const X = (d) => M.l + (d / dMax) * (W - M.l - M.r);
  const Y = (v) => M.t + (yMax - v) / (yMax - yMin) * (H - M.t - M.b);

  const axes = el("g", { class: "axes" }, svg);
  for (let v = Math.ceil(yMin * 100) / 100; v <= yMax + 1e-9; v += 0.01) {
    const y = Y(v);
    el("line", { class: "grid", x1: M.l, x2: W - M.r, y1: y, y2: y }, axes);
    el("text", { class: "tick", x: M.l - 6, y: y + 4, "text-anchor": "end" }, axes, v.toFixed(2));
  }
  const xStep = dMax > 2 ? 0.5 : 0.25;
  for (let d = 0; d <= dMax + 1e-9; d += xStep) {
    const x = X(d);
    el("line", { class: "grid", x1: x, x2: x, y1: M.t, y2: H - M.b }, axes);
    el("text", { class: "tick", x, y: H - M.b + 16, "text-anchor": "middle" }, axes, d.toFixed(2));
  }
  el("text", { class: "axis-title", x: (M.l + W - M.r) / 2, y: H - 6, "text-anchor": "middle" }, axes,
    "Distance from the substation (km)");
  yTitle(axes, 14, (M.t + H - M.b) / 2, "Voltage (pu)");
  limitLines(axes, [lo, hi], Y, M.l, W - M.r);

  // One segment per line and phase, from bus1's distance and voltage to bus2's, like OpenDSS's plot profile.
  const series = el("g", { class: "series" }, svg);
  for (const line of S.results.line_flows) {
    const d1 = dist.get(line.Bus1), d2 = dist.get(line.Bus2);
    const n1 = S.nodes.get(line.Bus1) || [], n2 = S.nodes.get(line.Bus2) || [];
    if (!Number.isFinite(d1) || !Number.isFinite(d2)) continue;
    for (const a of n1) {
      const b = n2.find((r) => r.Node === a.Node);
      if (!b || a.Node > 3) continue;
      el("line", { class: `seg phase-${a.Node}`, "data-seg": line.Line, "data-phase": a.Node, stroke: PHASE_COLOURS[a.Node],
        x1: X(d1).toFixed(1), y1: Y(a.VMag_pu).toFixed(1), x2: X(d2).toFixed(1), y2: Y(b.VMag_pu).toFixed(1) }, series);
    }
  }

  if (S.selected && S.nodes.has(S.selected) && Number.isFinite(dist.get(S.selected))) {
    const x = X(dist.get(S.selected));
    const g = el("g", { class: "profile-selected" }, svg);
    el("line", { class: "cursor", x1: x, x2: x, y1: M.t, y2: H - M.b }, g);
    for (const r of S.nodes.get(S.selected)) {
      if (r.Node > 3) continue;
      el("circle", { cx: x, cy: Y(r.VMag_pu), r: 4.5, fill: PHASE_COLOURS[r.Node] }, g);
    }
    el("text", { class: "cursor-label", x: x + 5, y: M.t + 12 }, g, `bus ${S.selected}`);
  }

  // Legend: phases and limits.
  const lg = el("g", { class: "profile-legend", transform: `translate(${M.l}, 12)` }, svg);
  let x = 0;
  for (const node of [1, 2, 3]) {
    legendKey(lg, x, { stroke: PHASE_COLOURS[node], "stroke-width": 3 }, `Phase ${PHASE_NAMES[node]} (node ${node})`);
    x += 150;
  }
  legendKey(lg, x, { class: "limit" }, `ANSI limits ${lo.toFixed(2)} / ${hi.toFixed(2)} pu`);
}
