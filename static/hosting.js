// Hosting capacity: the form's request, the result's note, figures and sortable table, and the map coloured by it.
// Its colours, words, legend and tooltip are in hostingmap.js, which the map uses too. Load hosting capacity
// (loadhosting.js) draws its table, figures and lists with the helpers exported here.

import { NO_HOSTING_COLOUR, hostingColour, hostingDomain } from "./colours.js";
import { renderBusDetails } from "./details.js";
import { setCompare } from "./diff.js";
import { $, esc, fmt, numberOf, paintSwatches } from "./dom.js";
import { LIMIT_WORDS, TRIAL_WORDS, hourText, kwText, renderHostingToggle } from "./hostingmap.js";
import { selectBus, updateMap } from "./map.js";
import { renderStaleNotes } from "./results.js";
import { S, scenarioName, studyEntry, studyResult } from "./store.js";

/** Colour the map by the result of `kind` ("hosting_capacity" or "load_hosting_capacity"), or back to voltages
 *  (""). One bus colouring at a time: a comparison ends. */
export async function showOnMap(kind) {
  S.mapStudy = kind && studyResult(kind) ? kind : "";
  renderHostingToggle();
  if (S.mapStudy && S.compare) await setCompare(""); // redraws the map too
  else if (S.results) updateMap();
  if (S.mapStudy && S.selected) renderBusDetails();
}

/** A new study of a kind the map shows: the map stops showing the previous one's result. */
export function mapForgets(run) {
  if (S.mapStudy !== run.kind) return;
  S.mapStudy = "";
  renderHostingToggle();
  if (run.scenario === S.scenario) updateMap();
}

const SORTS = {
  bus: (a, b) => a.bus.localeCompare(b.bus, "en", { numeric: true }),
  phases: (a, b) => (a.phases ?? 0) - (b.phases ?? 0),
  kw: (a, b) => a.hosting_capacity_kW - b.hosting_capacity_kW,
  kind: (a, b) => (LIMIT_WORDS[a.limited_by.kind] || "").localeCompare(LIMIT_WORDS[b.limited_by.kind] || ""),
};

/** The rows in the table's order: by the chosen column (`sort`), ties by capacity then bus; buses that cannot
 *  host last. */
export function sortedHostingRows(rows, sort) {
  const { key, dir } = sort;
  const able = rows.filter((r) => r.hosting_capacity_kW != null), unable = rows.filter((r) => r.hosting_capacity_kW == null);
  able.sort((a, b) => dir * SORTS[key](a, b) || SORTS.kw(a, b) || SORTS.bus(a, b));
  unable.sort(SORTS.bus);
  return [...able, ...unable];
}

/** The figures beside the table: the extremes, the median and what bound how many buses. */
export function hostingFigures(result, capacity = "generation") {
  const able = result.buses.filter((r) => r.hosting_capacity_kW != null).sort(SORTS.kw);
  const median = able.length ? able[Math.floor((able.length - 1) / 2)].hosting_capacity_kW : null;
  const counts = new Map();
  for (const r of able) counts.set(r.limited_by.kind, (counts.get(r.limited_by.kind) || 0) + 1);
  const figures = [["Buses", `${result.buses.length} (${able.length} can ${capacity === "load" ? "take a load" : "host"})`]];
  if (able.length) {
    const least = able.filter((r) => r.hosting_capacity_kW === able[0].hosting_capacity_kW);
    figures.push(["Least", `${kwText(able[0].hosting_capacity_kW)} at ` +
      `${least.slice(0, 4).map((r) => r.bus).join(", ")}${least.length > 4 ? ` and ${least.length - 4} more` : ""}`],
      ["Median", kwText(median)], ["Most", kwText(hostingDomain(result.buses).hi)]);
  }
  for (const [kind, n] of [...counts].sort((a, b) => b[1] - a[1])) figures.push([`Limited by ${LIMIT_WORDS[kind] || kind}`, `${n} bus${n === 1 ? "" : "es"}`]);
  const unable = result.buses.length - able.length;
  if (unable) figures.push([capacity === "load" ? "Cannot take a load" : "Cannot host", `${unable} bus${unable === 1 ? "" : "es"}`]);
  return figures;
}

/** A violation set apart before any trial: an element's loading in %, or a node's voltage in pu. */
function preexistingText(result, e) {
  const c = result.criteria || {}, voltage = e.limit === c.voltage_high_pu || e.limit === c.voltage_low_pu;
  const at = voltage ? `node ${e.element} at ${Number(e.value).toFixed(4)} pu (limit ${e.limit} pu)`
    : `${e.element} at ${fmt(e.value, 1)} % (limit ${fmt(e.limit, 0)} %)`;
  return `${at}${e.hour_of_year != null ? ` · ${hourText(result, e.hour_of_year)}` : ""}`;
}

/** The hours a study resolved, and the violations it set apart as there before any trial (ids `<prefix>-…`). */
export function renderHoursAndPreexisting(result, prefix = "hc") {
  const hours = result.hours || [];
  $(`${prefix}-hours-list`).hidden = !hours.length;
  $(`${prefix}-hours-rows`).innerHTML = hours.map((h) => `<li>${esc(h.name ? `hour ${h.hour_of_year} (${h.name.replace("_", " ")})`
    : hourText(result, h.hour_of_year))}: ${esc(kwText(Math.round(h.load_kW)))} of load</li>`).join("");
  const pre = result.preexisting || [];
  $(`${prefix}-preexisting-list`).hidden = !pre.length;
  $(`${prefix}-preexisting-rows`).innerHTML = pre.map((e) => `<li>${esc(preexistingText(result, e))}</li>`).join("");
}

/** The hosting study's request from its form: hours and the pre-existing rule as chosen. */
function hostingBody() {
  const body = { buses: ["all"], phases: Number($("hc-phases").value), step_kw: numberOf("hc-step") };
  if ($("hc-preexisting").value !== "exclude") body.limits = { preexisting: $("hc-preexisting").value };
  const choice = $("hc-hours-choice").value;
  if (choice === "named") body.hours = ["peak_load", "daytime_minimum"];
  if (choice === "list") {
    body.hours = $("hc-hours").value.split(",").map((t) => t.trim()).filter((t) => t)
      .map((t) => (/^\d+$/.test(t) ? Number(t) : t));
  }
  return body;
}

/** One bus's table row: swatch and bus, phases, capacity, what bound it, where, at what value, the binding hour. */
export function hostingRow(r, lo, hi, capacity = "generation") {
  const kw = r.hosting_capacity_kW, b = r.limited_by, sel = r.bus === S.selected ? " selected" : "";
  if (kw == null) {
    return `<tr class="cannot${sel}" data-bus="${esc(r.bus)}" data-kw=""><th scope="row"><span class="sw" data-swatch="${NO_HOSTING_COLOUR}"></span>${esc(r.bus)}</th>` +
      `<td></td><td class="r">—</td><td colspan="4">${capacity === "load" ? TRIAL_WORDS.load.cannot : "cannot host"}: ` +
      `${esc(r.reason || "")}</td></tr>`;
  }
  const at = !b ? "" : b.kind === "thermal" ? `${fmt(b.value, 1)} %` : b.kind.startsWith("voltage") ? `${Number(b.value).toFixed(4)} pu`
    : b.kind === "reverse_power" ? `${fmt(b.value, 1)} kW` : "";
  return `<tr class="${sel.trim()}" data-bus="${esc(r.bus)}" data-kw="${kw}" data-kind="${esc(b ? b.kind : "")}">` +
    `<th scope="row"><span class="sw" data-swatch="${hostingColour(kw, lo, hi)}"></span>${esc(r.bus)}</th>` +
    `<td>${r.phases ?? ""}</td><td class="r">${fmt(kw, Number.isInteger(kw) ? 0 : 1)}</td>` +
    `<td>${esc(b ? LIMIT_WORDS[b.kind] || b.kind : "")}</td><td class="where">${esc(b && b.element ? b.element : "")}</td>` +
    `<td class="r">${at}</td><td class="r hc-hour-col">${r.binding_hour ?? ""}</td></tr>`;
}

function renderHosting() {
  renderHostingToggle();
  const run = studyEntry("hosting_capacity").run, result = run && run.result;
  $("hc-results").hidden = !result;
  renderStaleNotes();
  if (!result) { if (S.results) updateMap(); return; }
  const c = result.criteria, { lo, hi } = hostingDomain(result.buses);
  const csv = `/jobs/${encodeURIComponent(run.job.id)}/result?format=csv`;
  $("hc-csv").setAttribute("href", csv);
  $("hc-csv").setAttribute("download", `hosting_capacity-${run.job.id}.csv`);
  $("hc-note").textContent = `State #${result.sequence} of “${scenarioName(result.scenario)}” · ` +
    `${c.phases === 3 ? "3-phase generators where the bus has A, B and C, else 1-phase" : "1-phase generators"} · ` +
    `${kwText(c.step_kw)} steps up to ${kwText(c.max_kw)} · limits ${c.voltage_low_pu}–${c.voltage_high_pu} pu, ` +
    `${c.thermal_pct} % thermal${c.reverse_power ? ", no reverse power" : ""}.`;
  $("hc-figures").innerHTML = hostingFigures(result).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
  for (const th of document.querySelectorAll("#hc-table th[data-sort]")) {
    th.setAttribute("aria-sort", th.dataset.sort === S.hcSort.key ? (S.hcSort.dir > 0 ? "ascending" : "descending") : "none");
  }
  $("hc-table").classList.toggle("with-hours", !!(result.hours && result.hours.length));
  renderHoursAndPreexisting(result);
  $("hc-rows").innerHTML = sortedHostingRows(result.buses, S.hcSort).map((r) => hostingRow(r, lo, hi)).join("");
  paintSwatches($("hc-rows"));
  if (S.results) updateMap();
}

function wireHosting() {
  $("hc-hours-choice").addEventListener("change", () => { $("hc-hours").hidden = $("hc-hours-choice").value !== "list"; });
  $("hc-show").addEventListener("click", () => showOnMap("hosting_capacity"));
  $("hc-map-off").addEventListener("click", () => showOnMap(""));
  for (const th of document.querySelectorAll("#hc-table th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const key = th.dataset.sort;
      S.hcSort = { key, dir: S.hcSort.key === key ? -S.hcSort.dir : 1 };
      renderHosting();
    });
  }
  $("hc-rows").addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-bus]");
    if (row) selectBus(row.dataset.bus);
  });
}

export const hostingCapacity = {
  kind: "hosting_capacity",
  ui: { section: "hc-section", form: "hc-form", run: "hc-run", cancel: "hc-cancel", error: "hc-error",
    row: "hc-progress-row", bar: "hc-progress", text: "hc-progress-text",
    fields: { phases: "hc-phases", step_kw: "hc-step", hours: "hc-hours", limits: "hc-preexisting" } },
  body: hostingBody,
  render: renderHosting,
  wire: wireHosting,
  started: mapForgets,
  /** The answer to "where does generation fit": on the map straight away. */
  async finished(run) {
    if (run.result) await showOnMap("hosting_capacity");
  },
};
