// "Compare with": the diff of the selected scenario against the base case or another scenario. The map colours the
// buses by voltage change; the diff panel lists the summary's changes and the new and cleared violations.

import { api } from "./api.js";
import { showBusy } from "./busy.js";
import { $, PHASE_NAMES, fmt, signed } from "./dom.js";
import { renderHostingToggle } from "./hostingmap.js";
import { updateMap } from "./map.js";
import { renderScenarioPicker } from "./picker.js";
import { S, compareName, scenarioName, scoped } from "./store.js";

/** Compare with `against` ("base", a scenario id, or "" for none); one bus colouring at a time. */
export async function setCompare(against) {
  if (against && S.mapStudy) { S.mapStudy = ""; renderHostingToggle(); }
  S.compare = against;
  S.diff = null;
  $("compare-error").textContent = "";
  await refreshDiff();
}

/** GET …/diff against the compared state; the map shows it as Δ voltage, the diff panel lists the rest. */
export async function refreshDiff() {
  const token = ++S.diffToken, id = S.scenario, against = S.compare;
  if (against) {
    S.loadingDiff = true;
    showBusy();
    try {
      const data = await api("GET", scoped(`/diff?against=${encodeURIComponent(against)}`, id));
      if (token !== S.diffToken) return; // a newer diff is on its way
      S.diff = data;
      S.diffOther = new Map(data.buses.map((r) => [`${r.Bus}.${r.Node}`, r.other_VMag_pu]));
    } catch (error) {
      if (token !== S.diffToken) return;
      $("compare-error").textContent = error.message;
      S.compare = "";
      S.diff = null;
    } finally {
      if (token === S.diffToken) S.loadingDiff = false;
      showBusy();
    }
  } else {
    S.diff = null;
  }
  renderScenarioPicker();
  renderDiff();
  if (S.results) updateMap();
}

const DIFF_ROWS = [["Substation", "total_circuit_power_kW", " kW"], ["Load", "total_load_kW", " kW"],
  ["Generation", "total_generation_kW", " kW"], ["Losses", "total_losses_kW", " kW"],
  ["Voltage violations", "voltage_violations", ""], ["Thermal violations", "thermal_violations", ""]];

export function renderDiff() {
  const d = S.diff;
  $("diff-panel").hidden = !d;
  $("layout").classList.toggle("comparing", !!d);
  $("diff-panel").dataset.against = d ? d.against : "";
  if (!d) return;
  $("diff-title").textContent = `“${scenarioName()}” compared with ${compareName()}`;
  $("diff-this-head").textContent = scenarioName();
  $("diff-other-head").textContent = d.against === "base" ? "base case" : scenarioName(d.against);
  $("diff-summary").innerHTML = DIFF_ROWS.map(([label, key, unit]) => {
    const row = d.summary[key], digits = unit ? 1 : 0;
    return `<tr data-key="${key}"><th scope="row">${label}</th><td class="r">${fmt(row.this, digits)}</td>` +
      `<td class="r">${fmt(row.other, digits)}</td><td class="r delta">${signed(row.delta, digits)}${unit}</td></tr>`;
  }).join("");
  for (const kind of ["new", "cleared"]) {
    const list = $(`diff-${kind}`), items = d.violations[kind];
    list.textContent = "";
    for (const v of items) {
      const li = document.createElement("li");
      li.className = `violation-${v.type}`;
      li.dataset.type = v.type;
      li.dataset.element = v.element || "";
      if (v.node != null) li.dataset.node = v.node;
      li.textContent = describeViolation(v);
      list.appendChild(li);
    }
    if (!items.length) list.innerHTML = `<li class="none">none</li>`;
    $(`diff-${kind}-count`).textContent = `(${items.length})`;
  }
  const top = d.buses[0];
  $("diff-note").textContent = `State #${d.sequence} against ${d.against === "base" ? "the base case" : `its state #${d.other_sequence}`}` +
    (top && Math.abs(top.delta_pu) >= 5e-5
      ? ` · largest voltage change: bus ${top.Bus} phase ${PHASE_NAMES[top.Node] || top.Node}, ${signed(top.delta_pu, 4)} pu`
      : " · no voltage differs") +
    (S.preview ? ". The map shows the preview against it; the numbers here are for the applied state." : ".");
}

function describeViolation(v) {
  const where = String(v.element || "").replace(/^(\w+)\./, "$1 "); // "Bus.114" → "Bus 114"
  if (v.type === "voltage") {
    return `${where} phase ${PHASE_NAMES[v.node] || v.node}: ${v.value_pu.toFixed(4)} pu, ${v.kind} (limit ${v.limit_pu.toFixed(2)})`;
  }
  if (v.type === "thermal") return `${where}: ${fmt(v.value_pct)} % of its rating`;
  if (v.type === "reverse_power") return `Reverse power at ${where}: ${fmt(v.value_kW)} kW`;
  return `${v.type} ${where}`;
}
