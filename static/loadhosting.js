// Load hosting capacity: how much new load (EV chargers, heat pumps) each bus takes before a limit is crossed. The
// form's request, the result's note, figures, sortable table and lists, and the map coloured by load capacity on
// hosting capacity's scale (hostingmap.js words it as load, not generation). Table and lists: hosting.js's helpers.

import { hostingDomain } from "./colours.js";
import { $, esc, numberOf, paintSwatches } from "./dom.js";
import { hostingFigures, hostingRow, mapForgets, renderHoursAndPreexisting, showOnMap, sortedHostingRows } from "./hosting.js";
import { kwText, renderHostingToggle } from "./hostingmap.js";
import { selectBus, updateMap } from "./map.js";
import { renderStaleNotes } from "./results.js";
import { S, scenarioName, studyEntry } from "./store.js";

const KIND = "load_hosting_capacity";

/** The request from the form: every bus; phases, step, power factor, hours and the pre-existing rule as chosen. */
function loadHostingBody() {
  const body = { buses: ["all"], phases: Number($("lhc-phases").value), step_kw: numberOf("lhc-step"), pf: numberOf("lhc-pf") };
  if ($("lhc-preexisting").value !== "exclude") body.limits = { preexisting: $("lhc-preexisting").value };
  const choice = $("lhc-hours-choice").value;
  if (choice === "named") body.hours = ["peak_load", "evening_peak"];
  if (choice === "list") {
    body.hours = $("lhc-hours").value.split(",").map((t) => t.trim()).filter((t) => t)
      .map((t) => (/^\d+$/.test(t) ? Number(t) : t));
  }
  return body;
}

function renderLoadHosting() {
  renderHostingToggle();
  const run = studyEntry(KIND).run, result = run && run.result;
  $("lhc-results").hidden = !result;
  renderStaleNotes();
  if (!result) { if (S.results) updateMap(); return; }
  const c = result.criteria, { lo, hi } = hostingDomain(result.buses);
  $("lhc-csv").setAttribute("href", `/jobs/${encodeURIComponent(run.job.id)}/result?format=csv`);
  $("lhc-csv").setAttribute("download", `load_hosting_capacity-${run.job.id}.csv`);
  $("lhc-note").textContent = `State #${result.sequence} of “${scenarioName(result.scenario)}” · constant-power loads at ` +
    `pf ${c.pf} lagging, ${c.phases === 3 ? "3-phase where the bus has A, B and C, else 1-phase" : "1-phase"} · ` +
    `${kwText(c.step_kw)} steps up to ${kwText(c.max_kw)} · limits ${c.voltage_low_pu}–${c.voltage_high_pu} pu, ` +
    `${c.thermal_pct} % thermal.`;
  $("lhc-figures").innerHTML = hostingFigures(result, "load").map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
  for (const th of document.querySelectorAll("#lhc-table th[data-sort]")) {
    th.setAttribute("aria-sort", th.dataset.sort === S.lhcSort.key ? (S.lhcSort.dir > 0 ? "ascending" : "descending") : "none");
  }
  $("lhc-table").classList.toggle("with-hours", !!(result.hours && result.hours.length));
  renderHoursAndPreexisting(result, "lhc");
  $("lhc-rows").innerHTML = sortedHostingRows(result.buses, S.lhcSort).map((r) => hostingRow(r, lo, hi, "load")).join("");
  paintSwatches($("lhc-rows"));
  if (S.results) updateMap();
}

function wireLoadHosting() {
  $("lhc-hours-choice").addEventListener("change", () => { $("lhc-hours").hidden = $("lhc-hours-choice").value !== "list"; });
  $("lhc-show").addEventListener("click", () => showOnMap(KIND));
  for (const th of document.querySelectorAll("#lhc-table th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const key = th.dataset.sort;
      S.lhcSort = { key, dir: S.lhcSort.key === key ? -S.lhcSort.dir : 1 };
      renderLoadHosting();
    });
  }
  $("lhc-rows").addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-bus]");
    if (row) selectBus(row.dataset.bus);
  });
}

export const loadHostingCapacity = {
  kind: KIND,
  ui: { section: "lhc-section", form: "lhc-form", run: "lhc-run", cancel: "lhc-cancel", error: "lhc-error",
    row: "lhc-progress-row", bar: "lhc-progress", text: "lhc-progress-text",
    fields: { phases: "lhc-phases", step_kw: "lhc-step", pf: "lhc-pf", hours: "lhc-hours", limits: "lhc-preexisting" } },
  body: loadHostingBody,
  render: renderLoadHosting,
  wire: wireLoadHosting,
  started: mapForgets,
  /** The answer to "where does new load fit": on the map straight away. */
  async finished(run) {
    if (run.result) await showOnMap(KIND);
  },
};
