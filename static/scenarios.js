// The "Scenario" and "Journal" panels' actions: switch to a scenario, create one from the base case or fork the
// selected one, delete it, undo its last change; and "Compare with".

import { api, request } from "./api.js";
import { act } from "./busy.js";
import { applied, renderGeneratorList } from "./changes.js";
import { refreshDiff, setCompare } from "./diff.js";
import { $ } from "./dom.js";
import { renderJournal } from "./journal.js";
import { updateTransformers } from "./map.js";
import { refreshScenarios, renderScenarioPicker } from "./picker.js";
import { endPreview } from "./preview.js";
import { showResults } from "./results.js";
import { S, scenarioById, scenarioName, scoped } from "./store.js";
import { renderStudies } from "./studies.js";

/** Show scenario `id`: its state, generators, transformers and journal (and the diff, when comparing). */
export async function loadScenario(id) {
  const target = scenarioById(id);
  if (target && target.unavailable) throw new Error(target.unavailable); // kept, but its feeder is not served
  if (target && target.feeder !== S.feeder) { // another feeder: another map, so the page starts again on it
    location.hash = `scenario=${encodeURIComponent(id)}`;
    location.reload();
    return;
  }
  const [state, xf, gens, journal] = await Promise.all([
    request("GET", scoped("/state", id)), api("GET", scoped("/transformers", id)).catch(() => null),
    api("GET", scoped("/generators", id)), api("GET", scoped("/changes", id))]);
  endPreview();
  S.scenario = id;
  S.etag = state.etag;
  S.generators = gens.generators;
  S.journal = journal.changes;
  if (xf) S.transformers = xf.transformers;
  if (S.compare === id) S.compare = "base"; // a scenario compared with itself says nothing
  S.diff = null;
  document.body.dataset.scenario = id;
  history.replaceState(null, "", id === "default" ? location.pathname : `#scenario=${encodeURIComponent(id)}`);
  renderScenarioPicker();
  renderGeneratorList();
  renderJournal();
  updateTransformers();
  showResults(state.data.results, state.data.sequence);
  renderStudies();
  await refreshDiff();
}

function createScenario(from) {
  act($("scenario-error"), async () => {
    const name = $("scenario-name").value.trim();
    const body = name ? { name } : {};
    if (from) body.from = from;
    else if (S.feeders.length > 1) body.feeder = $("scenario-feeder").value;
    const { data } = await request("POST", "/scenarios", body);
    $("scenario-name").value = "";
    await refreshScenarios();
    await loadScenario(data.scenario.id);
    $("scenario-ok").textContent = from ? `Forked “${scenarioName(from)}” as “${scenarioName()}”.`
      : `Created “${scenarioName()}” from the base case.`;
  }, "Creating the scenario…");
}

function deleteScenario() {
  const id = S.scenario, name = scenarioName();
  if (!window.confirm(`Delete scenario “${name}” and its journal? This cannot be undone.`)) return;
  act($("scenario-error"), async () => {
    await api("DELETE", `/scenarios/${encodeURIComponent(id)}`);
    await refreshScenarios();
    await loadScenario("default");
    $("scenario-ok").textContent = `Deleted “${name}”.`;
  }, "Deleting the scenario…");
}

function undo() {
  act($("undo-error"), async () => {
    const { data, etag } = await request("POST", scoped("/undo"), {});
    await applied(data, etag, null);
  }, "Undoing…");
}

export function wireScenarios() {
  $("undo-button").addEventListener("click", undo);
  const picker = $("scenario-select");
  picker.addEventListener("change", async () => {
    const id = picker.value;
    await act($("scenario-error"), () => loadScenario(id), "Loading the scenario…");
    picker.value = S.scenario; // still the old one if that failed
  });
  $("scenario-form").addEventListener("submit", (event) => {
    event.preventDefault();
    createScenario(null);
  });
  $("scenario-fork").addEventListener("click", () => createScenario(S.scenario));
  $("scenario-delete").addEventListener("click", deleteScenario);
  $("compare-select").addEventListener("change", () => setCompare($("compare-select").value));
  $("diff-close").addEventListener("click", () => setCompare(""));
}
