// The map's tooltips: a bus (voltages, or its hosting capacity), a line, a transformer, a generator, a neighbourhood,
// the EV chargers of a failing sample.

import { PHASE_NAMES, esc, fmt, hideTooltip, placeTooltip, signed } from "./dom.js";
import { hostingTooltip } from "./hostingmap.js";
import { S, compareName, shownCapacity, shownGenerators, shownHosting, worstNode } from "./store.js";

function busTooltip(name) {
  const hosting = shownHosting();
  if (hosting) return hostingTooltip(name, hosting, shownCapacity());
  const bus = S.bus.get(name), rows = S.nodes.get(name) || [], delta = S.scene.busIndex.get(name).delta;
  const worst = rows.length ? worstNode(rows) : null;
  const load = rows.reduce((s, r) => s + r.Load_kW, 0), gen = rows.reduce((s, r) => s + r.Gen_kW, 0);
  return `<strong>Bus ${esc(name)}</strong>${bus.neighbourhood != null ? ` · N${bus.neighbourhood}` : ""}<br>` +
    rows.map((r) => `${PHASE_NAMES[r.Node] || r.Node}: ${r.VMag_pu.toFixed(4)} pu ∠${fmt(r.VAngle, 1)}°`).join("<br>") +
    (worst ? `<br>worst ${worst.VMag_pu.toFixed(4)} pu` : "") +
    `<br>load ${fmt(load)} kW · gen ${fmt(gen)} kW<br>${fmt(bus.distance_km, 3)} km from the substation` +
    (delta != null ? `<br>Δ vs ${esc(compareName())}: ${signed(Number(delta), 4)} pu` : "");
}

function lineTooltip(name) {
  const l = S.results.line_flows.find((r) => r.Line === name);
  if (!l) return "";
  const kind = S.stubs.has(l.Bus1) || S.stubs.has(l.Bus2) ? " · normally open tie" : l.Switch ? " · switch" : "";
  return `<strong>${l.Switch ? "Switch" : "Line"} ${esc(l.Line)}</strong>${kind}<br>${esc(l.Bus1)} → ${esc(l.Bus2)} · ${l.Phases}-phase<br>` +
    `P ${fmt(l.P_kW)} kW · Q ${fmt(l.Q_kVAR)} kvar<br>I ${l.I_A.map((a) => fmt(a, 0)).join(" / ")} A<br>` +
    `loading ${fmt(l.Loading_pct)} %${l.Loading_pct > 100 ? " (overloaded)" : ""} · losses ${fmt(l.Losses_kW, 2)} kW`;
}

function transformerTooltip(key) {
  const units = S.transformers.filter((t) => `${t.bus1}-${t.bus2}` === key);
  if (!units.length) return "";
  const regulator = units.some((t) => t.tap != null);
  const kind = (regulator ? "Regulator" : "Transformer") + (units.length > 1 ? "s" : "");
  const tapText = (n) => (n > 0 ? `+${n}` : String(n));
  const losses = units.reduce((s, t) => s + t.losses_kW, 0);
  return `<strong>${kind} ${units.map((t) => esc(t.name)).join(", ")}</strong><br>${esc(units[0].bus1)} → ${esc(units[0].bus2)}<br>` +
    units.map((t) => `${esc(t.name)}: ${fmt(t.kva, 0)} kVA · loading ${fmt(t.loading_pct)} %` +
      `${t.loading_pct > 100 ? " (overloaded)" : ""}${t.tap != null ? ` · tap ${tapText(t.tap)}` : ""}`).join("<br>") +
    `<br>losses ${losses < 1 ? `${fmt(losses * 1000, 1)} W` : `${fmt(losses, 2)} kW`}`;
}

/** The EV chargers the map marks at `bus`: each customer's load, its phases and kW. */
function chargerTooltip(bus) {
  const failure = S.evMarks && S.evMarks.sample.first_failure;
  const here = failure ? failure.chargers.filter((c) => c.bus === bus) : [];
  return `<strong>${here.length} EV charger${here.length === 1 ? "" : "s"} at bus ${esc(bus)}</strong>` +
    `<br>sample ${S.evMarks ? S.evMarks.sample.sample : ""}, first failure at ${failure ? fmt(failure.adoption_pct, 0) : ""} %<br>` +
    here.map((c) => `${esc(c.load)}: ${fmt(c.kW, 1)} kW at pf ${c.pf} on ` +
      `${c.nodes.map((n) => PHASE_NAMES[n] || n).join("")}${c.conn === "delta" ? " (delta)" : ""}`).join("<br>");
}

/** The pointer moved over the map: the numbers of what it is over (`hit`, from the canvas: { kind, id }; or a
 *  generator's or charger's symbol, the event's target), or no tooltip. */
export function showTooltip(event, hit) {
  const symbol = event.target.closest(".map-overlay [data-charger], .map-overlay [data-bus]");
  if ((!symbol && !hit) || !S.results) { hideTooltip(); return; }
  let html;
  if (symbol && symbol.hasAttribute("data-charger")) {
    html = chargerTooltip(symbol.getAttribute("data-charger"));
  } else if (symbol) {
    const gens = shownGenerators().filter((g) => g.bus === symbol.getAttribute("data-bus"));
    html = gens.map((g) => `<strong>${esc(g.name)}</strong>: ${fmt(g.kw)} kW set` +
      (g.preview ? " (preview, not applied)" : `, ${fmt(g.delivered_kW ?? g.kw)} kW delivered`)).join("<br>");
  } else if (hit.kind === "bus") {
    html = busTooltip(hit.id);
  } else if (hit.kind === "line") {
    html = lineTooltip(hit.id);
  } else if (hit.kind === "transformer") {
    html = transformerTooltip(hit.id);
  } else {
    const nb = S.neighbourhoods.find((n) => n.id === hit.id);
    html = `<strong>Neighbourhood ${hit.id}</strong>${nb ? `<br>${nb.buses.length} buses` : ""}`;
  }
  placeTooltip(event, html);
}
