// The "Feeder map" panel: the feeder drawn on a canvas (mapview.js: neighbourhoods, lines, transformers, buses,
// names where they fit; zoom and pan), generators and EV chargers as SVG symbols above it, its colouring (voltage,
// voltage change or hosting capacity), line and transformer loading, and the selected bus.

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
import { createMapView } from "./mapview.js";
import { showTooltip } from "./maptips.js";
import { drawProfile } from "./profile.js";
import { S, scoped, shownCapacity, shownGenerators, shownHosting, worstNode } from "./store.js";
import { chargerSymbol, generatorSymbol } from "./symbols.js";

/** The scene once, from the buses, lines and transformers (in map units, 1000 wide); later states only recolour it. */
export function buildMap() {
  const box = $("map");
  const lines = S.results.line_flows;
  S.pairs = transformerPairs(S.transformers);
  const { pos: raw, stubs } = layout(S.buses, lines, S.pairs);
  S.stubs = stubs;
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (const [x, y] of raw.values()) {
    minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
  }
  const W = 1000, PAD = 28, k = (W - 2 * PAD) / (maxX - minX || 1);
  const H = Math.round((maxY - minY) * k + 2 * PAD);
  for (const [name, [x, y]] of raw) S.pos.set(name, [PAD + (x - minX) * k, PAD + (maxY - y) * k]);

  // The buses in the order their names are placed: the main line (highest voltage) first, near the substation first.
  const order = [...S.buses].sort((a, b) => (b.kv_base_ln || 0) - (a.kv_base_ln || 0) || (a.distance_km || 0) - (b.distance_km || 0));
  const buses = order.map((b) => ({ name: b.name, x: S.pos.get(b.name)[0], y: S.pos.get(b.name)[1], neighbourhood: b.neighbourhood,
    fill: "#cccccc", violation: false, selected: false, binding: false }));
  const mid = (a, b) => [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
  const wires = [];
  for (const line of lines) {
    const a = S.pos.get(line.Bus1), b = S.pos.get(line.Bus2);
    if (!a || !b) continue;
    wires.push({ name: line.Line, a, b, mid: mid(a, b), sw: !!line.Switch, open: stubs.has(line.Bus1) || stubs.has(line.Bus2),
      width: lineWidth(0), colour: LINE_COLOUR, overloaded: false, loading: 0, binding: false });
  }
  const transformers = [];
  for (const pair of S.pairs.values()) {
    const a = S.pos.get(pair.bus1), b = S.pos.get(pair.bus2);
    if (!a || !b) continue;
    transformers.push({ key: pair.key, bus1: pair.bus1, bus2: pair.bus2, names: pair.units.map((t) => t.name), a, b, mid: mid(a, b),
      angle: Math.atan2(b[1] - a[1], b[0] - a[0]), regulator: pair.units.some((t) => t.tap != null),
      width: lineWidth(0), colour: LINE_COLOUR, overloaded: false, loading: 0, binding: false });
  }
  S.scene = { W, H, buses, busIndex: new Map(buses.map((b) => [b.name, b])), lines: wires,
    lineIndex: new Map(wires.map((w) => [w.name, w])), transformers, transformerIndex: new Map(transformers.map((t) => [t.key, t])),
    neighbourhoods: neighbourhoodBands(lines), nbLabels: [], selected: null, colourings: 0 };
  if (!S.view) {
    S.view = createMapView(box, { drawn: placeSymbols, click: (hit) => hit.kind === "bus" && selectBus(hit.id),
      hover: (event, hit) => showTooltip(event, hit), leave: hideTooltip });
    // The buttons under the map zoom about its middle, for a keyboard or a screen without a wheel.
    const zoom = (factor) => S.view.zoom(factor, S.view.width / 2, S.view.height / 2);
    $("map-zoom-in").addEventListener("click", () => zoom(2));
    $("map-zoom-out").addEventListener("click", () => zoom(0.5));
    $("map-fit").addEventListener("click", () => S.view.fit());
  }
  S.view.setScene(S.scene);
  placeNeighbourhoodLabels();
  const overlay = box.querySelector(".map-overlay");
  overlay.textContent = "";
  S.layers = { generators: el("g", { class: "layer-generators" }, overlay), chargers: el("g", { class: "layer-chargers" }, overlay) };
  overlay.onclick = (event) => {
    const target = event.target.closest("[data-bus]");
    if (target) selectBus(target.getAttribute("data-bus"));
  };
}

/** Redraw after a layer was shown or hidden. */
export const redrawMap = () => S.view && S.view.request();

/** Mark the neighbourhood the "Scale loads" form names. */
export function setActiveNeighbourhood(id) {
  if (!S.scene) return;
  for (const nb of S.scene.neighbourhoods) nb.active = String(nb.id) === String(id);
  redrawMap();
}

/** Each neighbourhood as a translucent band along its own lines and buses. */
function neighbourhoodBands(lines) {
  const groups = new Map();
  if (S.neighbourhoods.length) {
    for (const nb of S.neighbourhoods) groups.set(nb.id, nb.buses.filter((b) => S.pos.has(b)));
  } else {
    for (const b of S.buses) if (b.neighbourhood != null) {
      if (!groups.has(b.neighbourhood)) groups.set(b.neighbourhood, []);
      groups.get(b.neighbourhood).push(b.name);
    }
  }
  const bands = [];
  for (const [id, names] of groups) {
    if (!names.length) continue;
    const members = new Set(names);
    const segments = lines.filter((l) => members.has(l.Bus1) && members.has(l.Bus2)).map((l) => [S.pos.get(l.Bus1), S.pos.get(l.Bus2)]);
    bands.push({ id, colour: NB_COLOURS[(id - 1) % NB_COLOURS.length], members: names, segments,
      points: names.map((n) => S.pos.get(n)), active: false });
  }
  return bands;
}

/** Put each neighbourhood label at the first spot beside its topmost buses that covers no bus and no other
 *  neighbourhood label (the map is dense around 160 and 300), in map units at the fitted view; the bus names are
 *  then placed around them. */
function placeNeighbourhoodLabels() {
  const view = S.view, k = view.fitK, r = 6;
  const overlaps = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
  const inside = (b) => b.x >= 0 && b.y >= 0 && b.x + b.w <= S.scene.W && b.y + b.h <= S.scene.H;
  const taken = [];
  const offsets = [[-9, -9], [-9, -22], [-12, 4], [-12, 18], [30, -9], [-24, -9]];
  for (const nb of S.scene.neighbourhoods) {
    const text = `N${nb.id}`, w = view.nbTextWidth(text);
    const boxAt = (x, y) => ({ x: x - w / k, y: y - 10 / k, w: w / k, h: 12 / k });
    const near = (b) => [...view.busGrid(b.x - r, b.y - r, b.x + b.w + r, b.y + b.h + r)].some((i) => {
      const bus = S.scene.buses[i];
      return bus.x + r > b.x && bus.x - r < b.x + b.w && bus.y + r > b.y && bus.y - r < b.y + b.h;
    });
    const tops = [...nb.points].sort((a, b) => a[1] - b[1]).slice(0, 4);
    const spots = tops.flatMap(([x, y]) => offsets.map(([dx, dy]) => [x + dx, y + dy]));
    let spot = spots[0];
    for (const [x, y] of spots) {
      const b = boxAt(x, y);
      if (inside(b) && !near(b) && !taken.some((other) => overlaps(b, other))) { spot = [x, y]; break; }
    }
    taken.push(boxAt(...spot));
    S.scene.nbLabels.push({ id: nb.id, text, x: spot[0], y: spot[1], w, colour: nb.colour });
  }
}

/** The SVG symbols above the canvas follow the view: at their bus, a little below and beside it. */
function placeSymbols() {
  const view = S.view, d = view.detail();
  for (const g of $("map").querySelectorAll(".map-overlay [data-at]")) {
    const [dx, dy] = g.dataset.at.split(",").map(Number), bus = S.scene.busIndex.get(g.dataset.bus || g.dataset.charger);
    const [x, y] = view.toScreen([bus.x, bus.y]);
    g.setAttribute("transform", `translate(${(x + dx * d).toFixed(1)},${(y + dy * d).toFixed(1)})`);
  }
  $("map").dataset.drawn = String(view.frames);
  if (view.frames && !performance.getEntriesByName("map-drawn").length) performance.mark("map-drawn");
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
    if (!S.scene.busIndex.has(bus)) continue;
    const cls = `gen-marker${previewed.has(bus) ? " preview" : ""}`;
    const g = generatorSymbol(el("g", { class: cls, "data-bus": bus, "data-at": "9,11" }, layer));
    g.setAttribute("aria-label", `Generator at bus ${bus}: ${fmt(kw)} kW`);
  }
  placeSymbols();
}

/** The EV chargers of the sample the EV adoption panel marks (S.evMarks: its first failure), one symbol per bus
 *  with their count and kW, and what bound that failure: a line's or transformer's wire, or a node's bus. */
export function drawChargers() {
  const layer = S.layers && S.layers.chargers;
  if (!layer) return;
  layer.textContent = "";
  for (const item of [...S.scene.buses, ...S.scene.lines, ...S.scene.transformers]) item.binding = false;
  S.scene.binding = null;
  const failure = S.evMarks && S.evMarks.sample.first_failure;
  if (!failure) { redrawMap(); return; }
  const byBus = new Map();
  for (const c of failure.chargers) {
    const at = byBus.get(c.bus) || { n: 0, kw: 0 };
    byBus.set(c.bus, { n: at.n + 1, kw: at.kw + c.kW });
  }
  for (const [bus, { n, kw }] of byBus) {
    if (!S.scene.busIndex.has(bus)) continue;
    const g = chargerSymbol(el("g", { class: "ev-charger", "data-charger": bus, "data-count": n, "data-kw": kw, "data-at": "-9,11" }, layer));
    g.setAttribute("aria-label", `${n} EV charger${n === 1 ? "" : "s"} at bus ${bus}: ${fmt(kw)} kW`);
  }
  const bound = failure.limited_by, element = bound && bound.element ? String(bound.element) : "";
  const [cls, name] = element.includes(".") ? [element.split(".")[0].toLowerCase(), element.split(".").slice(1).join(".")] : ["", ""];
  let target = null;
  if (bound && bound.kind.startsWith("voltage")) target = S.scene.busIndex.get(element.replace(/\.\d+$/, ""));
  else if (cls === "line") target = S.scene.lineIndex.get(name);
  else if (cls === "transformer") target = S.scene.transformers.find((t) => t.names.includes(name));
  if (target) {
    target.binding = true;
    S.scene.binding = target.key ? { kind: "transformer", id: target.key } : target.sw !== undefined
      ? { kind: "line", id: target.name } : { kind: "bus", id: target.name };
  }
  placeSymbols();
  redrawMap();
}

/** Colour the buses (one colouring at a time: hosting capacity, Δ voltage or voltage) and size the lines. */
export function updateMap() {
  const [lo, hi] = S.limits;
  const hosting = shownHosting();
  const deltas = !hosting && S.compare && S.diff ? busDeltas() : null;
  if (deltas) S.deltaRange = deltaRange([...deltas.values()].reduce((m, d) => Math.max(m, Math.abs(d)), 0));
  const colouring = hosting ? (shownCapacity() === "load" ? "load_hosting" : "hosting") : deltas ? "delta" : "voltage";
  $("map").dataset.colouring = colouring;
  $("map").setAttribute("aria-label", `Feeder map: buses coloured by ${{ hosting: "hosting capacity in kW",
    load_hosting: "load hosting capacity (new load) in kW", delta: "voltage change", voltage: "worst-phase voltage" }[colouring]}` +
    ", lines and transformers sized by loading");
  const hcRows = hosting ? new Map(hosting.buses.map((r) => [r.bus, r])) : null;
  if (hosting) S.hcScale = hostingDomain(hosting.buses);
  for (const bus of S.scene.buses) {
    const rows = S.nodes.get(bus.name);
    bus.violation = !hosting && !!rows && rows.some((r) => r.VMag_pu < lo || r.VMag_pu > hi);
    bus.hostingKw = bus.delta = undefined;
    if (hosting) {
      const row = hcRows.get(bus.name), kw = row ? row.hosting_capacity_kW : null;
      bus.fill = kw == null ? NO_HOSTING_COLOUR : hostingColour(kw, S.hcScale.lo, S.hcScale.hi);
      bus.hostingKw = kw;
    } else if (deltas) {
      const d = deltas.get(bus.name);
      bus.fill = d === undefined ? "#cccccc" : deltaColour(d, S.deltaRange);
      bus.delta = d === undefined ? null : d;
    } else {
      bus.fill = rows && rows.length ? voltageColour(worstNode(rows).VMag_pu) : "#cccccc";
    }
  }
  drawVoltageLegend();
  renderColouringNote();
  for (const line of S.results.line_flows) {
    const wire = S.scene.lineIndex.get(line.Line);
    if (wire) loadWire(wire, line.Loading_pct);
  }
  S.scene.colourings++;
  redrawMap();
}

/** A wire's width and colour by its loading, as the legend shows them. */
function loadWire(wire, pct) {
  wire.loading = pct;
  wire.width = lineWidth(pct);
  wire.overloaded = pct > 100;
  wire.colour = pct > 100 ? OVERLOAD_COLOUR : LINE_COLOUR;
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

/** Transformer wires by their most loaded unit, like the lines. */
export function updateTransformers() {
  const pairs = transformerPairs(S.transformers);
  for (const t of S.scene.transformers) {
    const pair = pairs.get(t.key);
    loadWire(t, pair ? Math.max(...pair.units.map((u) => u.loading_pct)) : 0);
  }
  redrawMap();
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
  for (const bus of S.scene.buses) bus.selected = bus.name === name;
  S.scene.selected = name;
  redrawMap();
  if ($("gen-bus").value.trim().toLowerCase() !== name) $("gen-bus").value = name;
  const phases = S.bus.get(name).nodes.filter((n) => n <= 3).map((n) => PHASE_NAMES[n]);
  $("gen-bus-phases").textContent = `Bus ${name} has phase${phases.length > 1 ? "s" : ""} ${phases.join(", ")}` +
    (phases.length === 3 ? "." : ": 1-phase generators only.");
  renderBusDetails();
  drawProfile();
  for (const row of document.querySelectorAll("#hc-rows tr, #lhc-rows tr")) row.classList.toggle("selected", row.dataset.bus === name);
}
