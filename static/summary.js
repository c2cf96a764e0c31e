// The "Summary" panel: the substation, load, generation, losses, voltage extremes and violations of the shown state.

import { $, fmt } from "./dom.js";
import { S } from "./store.js";

/** A number with its text; data-value keeps it exact (tests read it), and a changed one flashes. */
function setNum(id, value, text) {
  const node = $(id);
  const old = node.dataset.value;
  node.dataset.value = String(value);
  node.textContent = text;
  if (old !== undefined && old !== String(value)) {
    node.classList.remove("changed");
    void node.getBoundingClientRect(); // restart the highlight animation
    node.classList.add("changed");
  }
}

export function updateSummary() {
  const ps = S.results.power_summary, vp = S.results.voltage_profile, losses = S.results.losses || {};
  setNum("summary-source-kw", ps.total_circuit_power_kW, `${fmt(ps.total_circuit_power_kW)} kW`);
  $("summary-source-kvar").textContent = `${fmt(ps.total_circuit_power_kVAR)} kvar`;
  setNum("summary-load-kw", ps.total_load_kW, `${fmt(ps.total_load_kW)} kW`);
  setNum("summary-gen-kw", ps.total_generation_kW, `${fmt(ps.total_generation_kW)} kW`);
  setNum("summary-losses-kw", ps.total_losses_kW, `${fmt(ps.total_losses_kW)} kW`);
  $("summary-losses-pct").textContent = losses.percent_of_input == null ? "" : `${fmt(losses.percent_of_input, 2)} % of input`;
  setNum("summary-vmin", vp.min_voltage_pu, `${vp.min_voltage_pu.toFixed(4)} pu`);
  setNum("summary-vmax", vp.max_voltage_pu, `${vp.max_voltage_pu.toFixed(4)} pu`);
  $("summary-vmin").classList.toggle("bad", vp.min_voltage_pu < S.limits[0]);
  $("summary-vmax").classList.toggle("bad", vp.max_voltage_pu > S.limits[1]);
  setNum("summary-voltage-violations", ps.voltage_violations, String(ps.voltage_violations));
  setNum("summary-thermal-violations", ps.thermal_violations, String(ps.thermal_violations));
  const v = $("summary-violations");
  v.dataset.voltage = ps.voltage_violations;
  v.dataset.thermal = ps.thermal_violations;
  v.dataset.reversePower = ps.reverse_power;
  $("summary-reverse-power").textContent = ps.reverse_power ? "yes" : "no";
  $("summary-voltage-violations").classList.toggle("bad", ps.voltage_violations > 0);
  $("summary-thermal-violations").classList.toggle("bad", ps.thermal_violations > 0);
  $("summary-reverse-power").classList.toggle("bad", ps.reverse_power);
}
