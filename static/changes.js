// The "Change the grid" panel: add or update a generator, scale a neighbourhood, delete a generator, reset; each
// applied, or with "Preview first" ticked sent as a dry run and applied later with If-Match.

import { request, api } from "./api.js";
import { act } from "./busy.js";
import { refreshDiff } from "./diff.js";
import { renderBusDetails } from "./details.js";
import { $, esc, fmt } from "./dom.js";
import { describeAction, refreshJournal } from "./journal.js";
import { drawGenerators, refreshTransformers, selectBus, setActiveNeighbourhood } from "./map.js";
import { refreshScenarios } from "./picker.js";
import { endPreview, showPreview } from "./preview.js";
import { showResults } from "./results.js";
import { S, scoped } from "./store.js";

/** A change from one of the grid controls: applied, or with "Preview first" ticked only previewed (dry run). */
export function change(errorEl, okEl, method, path, body) {
  const preview = $("preview-toggle").checked;
  return act(errorEl, async () => {
    const { data, etag } = await request(method, scoped(path) + (preview ? "?dry_run=true" : ""), body);
    if (preview) showPreview({ method, path, body, etag, action: data.action, okEl }, data.results);
    else await applied(data, etag, okEl);
  });
}

/** After the server made a change (or an undo): its results, then what else it changed. */
export async function applied(data, etag, okEl) {
  endPreview();
  S.etag = etag;
  showResults(data.results, data.action.sequence);
  if (okEl) okEl.textContent = describeAction(data.action);
  await Promise.all([refreshTransformers(), refreshGenerators(), refreshJournal(), refreshScenarios(), refreshDiff()]);
}

/** The previewed request again, without dry_run; If-Match makes sure it meets the state that was previewed. */
function applyPreview() {
  const p = S.preview;
  if (!p) return;
  act($("preview-error"), async () => {
    const { data, etag } = await request(p.method, scoped(p.path), p.body, p.etag ? { "If-Match": p.etag } : {});
    await applied(data, etag, p.okEl);
  });
}

export async function refreshGenerators() {
  const id = S.scenario;
  try {
    const generators = (await api("GET", scoped("/generators", id))).generators;
    if (id !== S.scenario) return; // another scenario was picked meanwhile
    S.generators = generators;
    $("gen-delete-error").textContent = "";
  } catch (error) {
    if (id === S.scenario) $("gen-delete-error").textContent = error.message;
  }
  renderGeneratorList();
  if (S.layers) drawGenerators();
  renderBusDetails();
}

export function renderGeneratorList() {
  const body = $("gen-list");
  body.textContent = "";
  for (const g of S.generators) {
    const tr = document.createElement("tr");
    tr.dataset.generator = g.name;
    tr.innerHTML = `<td>${esc(g.name)}</td><td>${esc(g.bus)}</td><td class="r">${fmt(g.kw)}</td><td class="r"></td>`;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "small delete-generator";
    button.textContent = "Delete";
    button.setAttribute("aria-label", `Delete generator ${g.name}`);
    button.disabled = S.busy;
    button.addEventListener("click", () => change($("gen-delete-error"), null, "DELETE",
      `/generators/${encodeURIComponent(g.name)}`));
    tr.lastElementChild.appendChild(button);
    body.appendChild(tr);
  }
  $("gen-list-empty").hidden = S.generators.length > 0;
}

export function fillNeighbourhoodSelect() {
  const select = $("nb-select");
  const ids = S.neighbourhoods.length ? S.neighbourhoods.map((n) => n.id)
    : [...new Set(S.buses.map((b) => b.neighbourhood).filter((n) => n != null))].sort((a, b) => a - b);
  select.textContent = "";
  for (const id of ids) {
    const nb = S.neighbourhoods.find((n) => n.id === id);
    const option = new Option(nb ? `${id} (${nb.buses.length} buses)` : String(id), String(id));
    select.appendChild(option);
  }
  highlightNeighbourhood();
}

function highlightNeighbourhood() {
  setActiveNeighbourhood($("nb-select").value);
}

export function wireChanges() {
  const phases = $("gen-phases"), phase = $("gen-phase");
  const syncPhase = () => { phase.disabled = phases.value === "3"; };
  phases.addEventListener("change", syncPhase);
  syncPhase();
  $("gen-bus").addEventListener("change", () => {
    const name = $("gen-bus").value.trim().toLowerCase();
    if (S.bus.has(name)) selectBus(name);
  });
  $("gen-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const kwText = $("gen-kw").value.trim();
    const body = { bus_name: $("gen-bus").value.trim(), phases: Number(phases.value), kw: kwText === "" ? null : Number(kwText) };
    if (phases.value === "1" && phase.value) body.phase = Number(phase.value);
    change($("gen-error"), $("gen-ok"), "POST", "/add_generator", body);
  });
  $("nb-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const factorText = $("nb-factor").value.trim();
    const body = { neighbourhood: Number($("nb-select").value), factor: factorText === "" ? null : Number(factorText) };
    change($("nb-error"), $("nb-ok"), "POST", "/modify_load_neighbourhood", body);
  });
  $("nb-select").addEventListener("change", highlightNeighbourhood);
  $("reset-button").addEventListener("click", () => {
    for (const id of ["gen-error", "nb-error", "gen-delete-error"]) $(id).textContent = "";
    change($("reset-error"), null, "POST", "/reset", {});
  });
  $("preview-apply").addEventListener("click", applyPreview);
}
