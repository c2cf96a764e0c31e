// The "Feeder map" panel: the feeder as SVG (neighbourhoods, lines, transformers, buses, generators, names), its
// colouring (voltage, voltage change or hosting capacity), line and transformer loading, and the selected bus.

import { api } from "./api.js";
import {
  LINE_COLOUR, NB_COLOURS, NO_HOSTING_COLOUR, OVERLOAD_COLOUR, deltaColour, deltaRange, hostingColour, hostingDomain,
  lineWidth, voltageColour,
} from "./colours.js";
import { renderBusDetails } from "./details.js";
import { $, PHASE_NAMES, el, fmt, hideTooltip } from "./dom.js";
import { renderColouringNote } from "./hostingmap.js";
import { layout, transformerPairs } from "./layout.js";
import { drawVoltageLegend } from "./legends.js";
import { showTooltip } from "./maptips.js";
import { drawProfile } from "./profile.js";
import { S, scoped, shownCapacity, shownGenerators, shownHosting, worstNode } from "./store.js";
import { chargerSymbol, generatorSymbol, transformerSymbol } from "./symbols.js";

/** Draw the whole map once, from the buses, lines and transformers; later states only recolour it. */
export function buildMap() {
  const svg = $("map");
  svg.textContent = "";
  const lines = S.results.line_flows;
  S.pairs = transformerPairs(S.transformers);
  const { pos: raw, nudged, stubs } = layout(S.buses, lines, S.pairs);
  S.stubs = stubs;
  const xs = [...raw.values()].map((p) => p[0]), ys = [...raw.values()].map((p) => p[1]);
  const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
  const W = 1000, PAD = 28, k = (W - 2 * PAD) / (maxX - minX || 1);
  const H = Math.round((maxY - minY) * k + 2 * PAD);
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  for (const [name, [x, y]] of raw) S.pos.set(name, [PAD + (x - minX) * k, PAD + (maxY - y) * k]);

  const layers = {};
  for (const name of ["neighbourhoods", "lines", "transformers", "buses", "generators", "chargers", "labels", "nblabels",
    "selection"]) {
    layers[name] = el("g", { class: `layer-${name}` }, svg);
  }
  S.layers = layers;
  drawNeighbourhoods(layers.neighbourhoods, layers.nblabels);

  S.lineEl.clear();
  for (const line of lines) {
    const a = S.pos.get(line.Bus1), b = S.pos.get(line.Bus2);
    if (!a || !b) continue;
    const open = S.stubs.has(line.Bus1) || S.stubs.has(line.Bus2);
    const cls = ["line", line.Switch ? "switch" : "", open ? "open" : ""].filter(Boolean).join(" ");
    const g = el("g", { class: cls, "data-line": line.Line }, layers.lines);
    const ends = { x1: a[0], y1: a[1], x2: b[0], y2: b[1] };
    el("line", { class: "hit", ...ends }, g);
    el("line", { class: "wire", ...ends, ...(open ? { "stroke-dasharray": "5 4" } : {}) }, g);
    if (line.Switch) {
      const mx = (a[0] + b[0]) / 2, my = (a[1] + b[1]) / 2;
      el("rect", { class: "switch-mark", x: mx - 4, y: my - 4, width: 8, height: 8 }, g);
    }
    S.lineEl.set(line.Line, g);
  }

  // One element per transformer bus pair: a short wire (width by loading, like a line) and the symbol.
  S.xfEl.clear();
  for (const pair of S.pairs.values()) {
    const a = S.pos.get(pair.bus1), b = S.pos.get(pair.bus2);
    if (!a || !b) continue;
    const regulator = pair.units.some((t) => t.tap != null);
    const g = el("g", { class: `transformer${regulator ? " regulator" : ""}`, "data-transformer": pair.key,
      "data-bus1": pair.bus1, "data-bus2": pair.bus2, "data-names": pair.units.map((t) => t.name).join(",") }, layers.transformers);
    const ends = { x1: a[0], y1: a[1], x2: b[0], y2: b[1] };
    el("line", { class: "hit", ...ends }, g);
    el("line", { class: "wire", ...ends }, g);
    const angle = Math.atan2(b[1] - a[1], b[0] - a[0]) * 180 / Math.PI;
    transformerSymbol(el("g", { class: "xf-symbol", transform: `translate(${(a[0] + b[0]) / 2},${(a[1] + b[1]) / 2})` }, g), regulator, angle);
    S.xfEl.set(pair.key, g);
  }

  // Names sit above and right of their bus, where a transformer symbol may be: then below (the symbol is to
  // the right) or beside (it is above). A bus nudged off another's place is labelled below too.
  const labelDy = new Map([...nudged].map((name) => [name, 14]));
  for (const { bus1, bus2 } of S.pairs.values()) {
    for (const [from, to] of [[bus1, bus2], [bus2, bus1]]) {
      const a = S.pos.get(from), b = S.pos.get(to);
      if (!a || !b) continue;
      const dx = b[0] - a[0], dy = b[1] - a[1];
      if (dx > 0 && Math.abs(dx) >= Math.abs(dy)) labelDy.set(from, 14);
      else if (dy < 0 && Math.abs(dy) > Math.abs(dx)) labelDy.set(from, 3);
    }
  }
  S.busEl.clear();
  for (const bus of S.buses) {
    const [x, y] = S.pos.get(bus.name);
    const c = el("circle", { class: "bus", "data-bus": bus.name, cx: x, cy: y, r: 5.5 }, layers.buses);
    S.busEl.set(bus.name, c);
    el("text", { class: "bus-label", "data-label": bus.name, x: x + 6, y: y + (labelDy.get(bus.name) ?? -5) }, layers.labels, bus.name);
  }
  placeNeighbourhoodLabels();
  svg.addEventListener("click", (event) => {
    const target = event.target.closest("[data-bus]");
    if (target) selectBus(target.getAttribute("data-bus"));
  });
  svg.addEventListener("mousemove", showTooltip);
  svg.addEventListener("mouseleave", hideTooltip);
}

function drawNeighbourhoods(layer, labels) {
  // Each neighbourhood as a translucent band along its own lines and buses (group opacity keeps the band even).
  layer.textContent = "";
  labels.textContent = "";
  const groups = new Map();
  if (S.neighbourhoods.length) {
    for (const nb of S.neighbourhoods) groups.set(nb.id, nb.buses.filter((b) => S.pos.has(b)));
  } else {
    for (const b of S.buses) if (b.neighbourhood != null) {
      if (!groups.has(b.neighbourhood)) groups.set(b.neighbourhood, []);
      groups.get(b.neighbourhood).push(b.name);
    }
  }
  for (const [id, names] of groups) {
    if (!names.length) continue;
    const members = new Set(names);
    const colour = NB_COLOURS[(id - 1) % NB_COLOURS.length];
    const g = el("g", { class: "neighbourhood", "data-neighbourhood": id, stroke: colour, fill: colour }, layer);
    for (const line of S.results.line_flows) {
      if (!members.has(line.Bus1) || !members.has(line.Bus2)) continue;
      const [x1, y1] = S.pos.get(line.Bus1), [x2, y2] = S.pos.get(line.Bus2);
      el("line", { x1, y1, x2, y2 }, g);
    }
    for (const name of names) {
      const [cx, cy] = S.pos.get(name);
      el("circle", { cx, cy, r: 11, stroke: "none" }, g);
    }
    const top = names.map((n) => S.pos.get(n)).reduce((best, p) => (p[1] < best[1] ? p : best));
    const label = el("text", { class: "nb-label", x: top[0] - 9, y: top[1] - 9, fill: colour, "data-neighbourhood": id }, labels, `N${id}`);
    label._members = names;
  }
}

/** Move each neighbourhood label to the first spot beside its topmost buses that covers no bus, no bus name and
 *  no other neighbourhood label (the map is dense around 160 and 300). Run once the bus names are drawn. */
function placeNeighbourhoodLabels() {
  const overlaps = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
  const [, , W, H] = $("map").getAttribute("viewBox").split(" ").map(Number);
  const inside = (b) => b.x >= 0 && b.y >= 0 && b.x + b.width <= W && b.y + b.height <= H;
  const taken = [...S.layers.labels.children].map((t) => t.getBBox());
  for (const [x, y] of S.pos.values()) taken.push({ x: x - 6, y: y - 6, width: 12, height: 12 });
  const offsets = [[-9, -9], [-9, -22], [-12, 4], [-12, 18], [30, -9], [-24, -9]];
  for (const label of S.layers.nblabels.children) {
    const buses = label._members.map((n) => S.pos.get(n)).sort((a, b) => a[1] - b[1]).slice(0, 4);
    const spots = buses.flatMap(([x, y]) => offsets.map(([dx, dy]) => [x + dx, y + dy]));
    for (const [x, y] of spots) {
      label.setAttribute("x", x);
      label.setAttribute("y", y);
      const box = label.getBBox();
      if (inside(box) && !taken.some((other) => overlaps(box, other))) break;
    }
    taken.push(label.getBBox());
  }
}

export function drawGenerators() {
  const layer = S.layers.generators;
  layer.textContent = "";
  const byBus = new Map(), previewed = new Set();
  for (const g of shownGenerators()) {
    byBus.set(g.bus, (byBus.get(g.bus) || 0) + g.kw);
    if (g.preview) previewed.add(g.bus);
  }
  for (const [bus, kw] of byBus) {
    const p = S.pos.get(bus);
    if (!p) continue;
    const cls = `gen-marker${previewed.has(bus) ? " preview" : ""}`;
    const g = generatorSymbol(el("g", { class: cls, "data-bus": bus, transform: `translate(${p[0] + 9},${p[1] + 11})` }, layer));
    g.setAttribute("aria-label", `Generator at bus ${bus}: ${fmt(kw)} kW`);
  }
}

/** The EV chargers of the sample the EV adoption panel marks (S.evMarks: its first failure), one symbol per bus
 *  with their count and kW, and what bound that failure: a line's or transformer's wire, or a node's bus. */
export function drawChargers() {
  const layer = S.layers && S.layers.chargers;
  if (!layer) return;
  layer.textContent = "";
  for (const node of $("map").querySelectorAll(".ev-binding")) node.classList.remove("ev-binding");
  const failure = S.evMarks && S.evMarks.sample.first_failure;
  if (!failure) return;
  const byBus = new Map();
  for (const c of failure.chargers) {
    const at = byBus.get(c.bus) || { n: 0, kw: 0 };
    byBus.set(c.bus, { n: at.n + 1, kw: at.kw + c.kW });
  }
  for (const [bus, { n, kw }] of byBus) {
    const p = S.pos.get(bus);
    if (!p) continue;
    const g = chargerSymbol(el("g", { class: "ev-charger", "data-charger": bus, "data-count": n, "data-kw": kw,
      transform: `translate(${p[0] - 9},${p[1] + 11})` }, layer));
    g.setAttribute("aria-label", `${n} EV charger${n === 1 ? "" : "s"} at bus ${bus}: ${fmt(kw)} kW`);
  }
  const bound = failure.limited_by, element = bound && bound.element ? String(bound.element) : "";
  const [cls, name] = element.includes(".") ? [element.split(".")[0].toLowerCase(), element.split(".").slice(1).join(".")] : ["", ""];
  let target = null;
  if (bound && bound.kind.startsWith("voltage")) target = S.busEl.get(element.replace(/\.\d+$/, ""));
  else if (cls === "line") target = S.lineEl.get(name);
  else if (cls === "transformer") {
    target = [...S.xfEl.values()].find((g) => g.dataset.names.split(",").includes(name));
  }
  if (target) target.classList.add("ev-binding");
}

/** Colour the buses (one colouring at a time: hosting capacity, Δ voltage or voltage) and size the lines. */
export function updateMap() {
  const [lo, hi] = S.limits;
  const hosting = shownHosting();
  const deltas = !hosting && S.compare && S.diff ? busDeltas() : null;
  if (deltas) S.deltaRange = deltaRange(Math.max(0, ...[...deltas.values()].map(Math.abs)));
  const colouring = hosting ? (shownCapacity() === "load" ? "load_hosting" : "hosting") : deltas ? "delta" : "voltage";
  $("map").dataset.colouring = colouring;
  $("map").setAttribute("aria-label", `Feeder map: buses coloured by ${{ hosting: "hosting capacity in kW",
    load_hosting: "load hosting capacity (new load) in kW", delta: "voltage change", voltage: "worst-phase voltage" }[colouring]}` +
    ", lines and transformers sized by loading");
  const hcRows = hosting ? new Map(hosting.buses.map((r) => [r.bus, r])) : null;
  if (hosting) S.hcScale = hostingDomain(hosting.buses);
  for (const [name, circle] of S.busEl) {
    const rows = S.nodes.get(name);
    circle.classList.toggle("violation", !hosting && !!rows && rows.some((r) => r.VMag_pu < lo || r.VMag_pu > hi));
    if (hosting) {
      const row = hcRows.get(name), kw = row ? row.hosting_capacity_kW : null;
      circle.setAttribute("fill", kw == null ? NO_HOSTING_COLOUR : hostingColour(kw, S.hcScale.lo, S.hcScale.hi));
      circle.dataset.hostingKw = kw == null ? "" : String(kw);
      delete circle.dataset.delta;
      continue;
    }
    delete circle.dataset.hostingKw;
    if (deltas) {
      const d = deltas.get(name);
      circle.setAttribute("fill", d === undefined ? "#cccccc" : deltaColour(d, S.deltaRange));
      circle.dataset.delta = d === undefined ? "" : String(d);
    } else {
      delete circle.dataset.delta;
      circle.setAttribute("fill", rows && rows.length ? voltageColour(worstNode(rows).VMag_pu) : "#cccccc");
    }
  }
  drawVoltageLegend();
  renderColouringNote();
  for (const line of S.results.line_flows) {
    const g = S.lineEl.get(line.Line);
    if (!g) continue;
    const wire = g.querySelector(".wire");
    wire.setAttribute("stroke-width", lineWidth(line.Loading_pct).toFixed(2));
    wire.setAttribute("stroke", line.Loading_pct > 100 ? OVERLOAD_COLOUR : LINE_COLOUR);
    g.classList.toggle("overloaded", line.Loading_pct > 100);
  }
}

/** Each bus's largest node voltage change (signed) against the compared state. The API's own deltas for the
 *  applied state; during a preview, the previewed voltages against the same "other" voltages. */
function busDeltas() {
  const rows = S.preview
    ? S.results.bus_details.map((r) => [r.Bus, r.VMag_pu - S.diffOther.get(`${r.Bus}.${r.Node}`)])
    : S.diff.buses.map((r) => [r.Bus, r.delta_pu]);
  const deltas = new Map();
  for (const [bus, d] of rows) {
    if (Number.isFinite(d) && (!deltas.has(bus) || Math.abs(d) > Math.abs(deltas.get(bus)))) deltas.set(bus, d);
  }
  return deltas;
}

/** Transformer wires by their most loaded unit, like the lines; data-loading for tests. */
export function updateTransformers() {
  const pairs = transformerPairs(S.transformers);
  for (const [key, g] of S.xfEl) {
    const pair = pairs.get(key);
    const pct = pair ? Math.max(...pair.units.map((t) => t.loading_pct)) : 0;
    g.dataset.loading = String(pct);
    const wire = g.querySelector(".wire");
    wire.setAttribute("stroke-width", lineWidth(pct).toFixed(2));
    wire.setAttribute("stroke", pct > 100 ? OVERLOAD_COLOUR : LINE_COLOUR);
    g.classList.toggle("overloaded", pct > 100);
  }
}

export async function refreshTransformers() {
  const id = S.scenario;
  try {
    const transformers = (await api("GET", scoped("/transformers", id))).transformers;
    if (id !== S.scenario) return;
    S.transformers = transformers;
  } catch (_) { return; } // keep the last numbers until the next change or new state
  updateTransformers();
}

/** Select a bus: marked on the map and the profile, its details shown, the generator form's bus filled in. */
export function selectBus(name) {
  if (!S.bus.has(name)) return;
  S.selected = name;
  for (const [n, c] of S.busEl) c.classList.toggle("selected", n === name);
  for (const label of S.layers.labels.children) label.classList.toggle("hidden", label.dataset.label === name);
  const sel = S.layers.selection;
  sel.textContent = "";
  const [x, y] = S.pos.get(name);
  el("circle", { class: "halo", cx: x, cy: y, r: 10 }, sel);
  el("text", { class: "selected-label", x: x + 12, y: y - 10 }, sel, name);
  if ($("gen-bus").value.trim().toLowerCase() !== name) $("gen-bus").value = name;
  const phases = S.bus.get(name).nodes.filter((n) => n <= 3).map((n) => PHASE_NAMES[n]);
  $("gen-bus-phases").textContent = `Bus ${name} has phase${phases.length > 1 ? "s" : ""} ${phases.join(", ")}` +
    (phases.length === 3 ? "." : ": 1-phase generators only.");
  renderBusDetails();
  drawProfile();
  for (const row of document.querySelectorAll("#hc-rows tr, #lhc-rows tr")) row.classList.toggle("selected", row.dataset.bus === name);
}
