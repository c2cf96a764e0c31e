// The "Selected bus" panel: the bus's node voltages, loads and generators, and its hosting capacity once studied.

import { voltageColour } from "./colours.js";
import { $, PHASE_NAMES, esc, fmt, paintSwatches } from "./dom.js";
import { hostingText } from "./hostingmap.js";
import { S, hostingResult, shownGenerators, studyResult, worstNode } from "./store.js";

export function renderBusDetails() {
  const box = $("bus-details");
  const name = S.selected;
  if (!name || !S.results) return;
  const bus = S.bus.get(name), rows = S.nodes.get(name) || [];
  const worst = rows.length ? worstNode(rows) : null;
  const gens = shownGenerators().filter((g) => g.bus === name);
  const html = [];
  html.push(`<p class="bus-head"><span class="swatch" data-swatch="${worst ? voltageColour(worst.VMag_pu) : "#ccc"}"></span>
    <strong>Bus ${esc(name)}</strong></p>
    <p class="muted">Neighbourhood ${bus.neighbourhood ?? "none"} · ${fmt(bus.distance_km, 3)} km from the substation · ${fmt(bus.kv_base_ln, 3)} kV line-to-neutral base</p>`);
  if (worst) html.push(`<p>Worst phase: ${PHASE_NAMES[worst.Node] || worst.Node} at <strong id="selected-worst-vpu" data-value="${worst.VMag_pu}">${worst.VMag_pu.toFixed(4)} pu</strong></p>`);
  html.push(`<table class="nodes"><thead><tr><th scope="col">Phase</th><th scope="col" class="r">V (pu)</th><th scope="col" class="r">Angle</th>
    <th scope="col" class="r">Load kW</th><th scope="col" class="r">Gen kW</th></tr></thead><tbody>`);
  for (const r of rows) {
    html.push(`<tr><td>${PHASE_NAMES[r.Node] || r.Node}</td><td class="r">${r.VMag_pu.toFixed(4)}</td><td class="r">${fmt(r.VAngle, 1)}°</td>
      <td class="r">${fmt(r.Load_kW)}</td><td class="r">${fmt(r.Gen_kW)}</td></tr>`);
  }
  html.push("</tbody></table>");
  const hcRow = hostingResult() && hostingResult().buses.find((r) => r.bus === name);
  if (hcRow) html.push(`<p id="selected-hosting">Hosting capacity: ${esc(hostingText(hcRow).replace(/^[^:]*: /, ""))}</p>`);
  const load = studyResult("load_hosting_capacity"), lhcRow = load && load.buses.find((r) => r.bus === name);
  if (lhcRow) {
    html.push(`<p id="selected-load-hosting">Load hosting capacity: ${esc(hostingText(lhcRow, "load").replace(/^[^:]*: /, ""))}</p>`);
  }
  html.push(`<p class="muted">Loads: ${bus.loads && bus.loads.length ? bus.loads.map(esc).join(", ") : "none"} · Generators: ${gens.length ? gens.map((g) => esc(g.name)).join(", ") : "none"}</p>`);
  box.innerHTML = html.join("");
  paintSwatches(box);
}
