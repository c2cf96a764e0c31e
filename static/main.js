// The dashboard for the power-flow API (our IEEE 123-bus feeder, or the one served with --feeder): it loads the feeder, wires the panels together and polls for
// changes made elsewhere. Plain ES modules, SVG and a canvas (the map), no build step; everything it shows comes from the same JSON API
// the scripts use. How the modules depend on each other: static/README.md.

import { api, request, setApiKey } from "./api.js";
import { lockControls, showBusy } from "./busy.js";
import { fillNeighbourhoodSelect, refreshGenerators, wireChanges } from "./changes.js";
import { deltaColour, hostingColour, voltageColour } from "./colours.js";
import { refreshDiff } from "./diff.js";
import { $, esc } from "./dom.js";
import { refreshJournal } from "./journal.js";
import { drawLegends } from "./legends.js";
import { buildMap, redrawMap, refreshTransformers, updateTransformers } from "./map.js";
import { refreshScenarios, renderScenarioPicker } from "./picker.js";
import { discardPreview, setPreviewMarks } from "./preview.js";
import { showResults } from "./results.js";
import { loadScenario, wireScenarios } from "./scenarios.js";
import { S, indexNodes, scenarioById, scoped } from "./store.js";
import { renderStudies, wireStudies } from "./studies.js";

const POLL_MS = 5000;
const API_KEY_STORE = "ieee123-api-key";

// For tests and the curious: the state, and the colour scales the map uses.
window.dashboard = S;
Object.assign(window, { voltageColour, deltaColour, hostingColour });

/** Every few seconds: has the scenario changed (another tab, a script)? A conditional GET answers 304 while
 *  it has not, so an idle page costs the server almost nothing and the page redraws nothing. */
async function poll() {
  if (S.polling || S.busy || S.refreshing || S.preview || document.visibilityState !== "visible") return;
  S.polling = true;
  const id = S.scenario;
  try {
    await refreshScenarios(); // other clients may add, change or delete scenarios
    let answer;
    try {
      answer = await request("GET", scoped("/state", id), undefined, S.etag ? { "If-None-Match": S.etag } : {});
    } catch (error) {
      if (error.status === 404 && id === S.scenario && !S.busy) { // deleted elsewhere: back to default
        S.refreshing = true;
        showBusy();
        $("scenario-error").textContent = error.message;
        await loadScenario("default");
      }
      return;
    }
    if (S.busy || S.preview || id !== S.scenario) return; // the page moved on while we asked
    if (answer.status !== 304) {
      S.refreshing = true;
      showBusy();
      S.etag = answer.etag;
      showResults(answer.data.results, answer.data.sequence);
      await Promise.all([refreshTransformers(), refreshGenerators(), refreshJournal(), refreshDiff()]);
    } else if (S.diff && S.compare !== "base") {
      const other = scenarioById(S.compare); // the other side of the diff may have changed
      if (!other || other.sequence !== S.diff.other_sequence) await refreshDiff();
    }
  } catch (_) { /* the next poll tries again */ } finally {
    S.polling = false;
    S.refreshing = false;
    showBusy();
  }
}
S.poll = poll; // tests call it rather than wait for the timer

/** The controls that belong to no panel: the map's layer toggles, the API key, Discard (which polls at once). */
function wirePage() {
  const toggle = (id, cls) => {
    const box = $(id);
    const apply = () => { $("map").classList.toggle(cls, !box.checked); redrawMap(); };
    box.addEventListener("change", apply);
    apply();
  };
  toggle("toggle-neighbourhoods", "hide-neighbourhoods");
  toggle("toggle-generators", "hide-generators");
  toggle("toggle-labels", "hide-labels");
  $("key-form").addEventListener("submit", (event) => event.preventDefault());
  const key = $("api-key");
  key.value = sessionStorage.getItem(API_KEY_STORE) || "";
  setApiKey(key.value);
  key.addEventListener("input", () => {
    sessionStorage.setItem(API_KEY_STORE, key.value.trim());
    setApiKey(key.value);
  });
  $("preview-discard").addEventListener("click", () => {
    if (discardPreview()) poll(); // polling waits while a preview is shown: catch up now
  });
}

/** The page names the feeder it shows (the scenario's); our IEEE 123-bus deck keeps its long name. With several
 * feeders, the new-scenario form offers them (its feeder first). */
function showFeeder(feeders, name) {
  S.feeders = feeders;
  S.feeder = name;
  if (name !== "ieee123") {
    document.title = `${name} feeder dashboard`;
    document.querySelector("h1").textContent = `Feeder ${name}`;
  }
  const chooser = $("scenario-feeder");
  chooser.innerHTML = feeders.map((f) => `<option value="${esc(f.name)}">${esc(f.name)}</option>`).join("");
  chooser.value = name;
  $("scenario-feeder-row").hidden = feeders.length < 2;
}

async function start() {
  wireChanges();
  wireScenarios();
  wirePage();
  wireStudies();
  try {
    // The scenario in the address (#scenario=<id>) if it still exists, else the default one.
    S.scenarios = (await api("GET", "/scenarios")).scenarios;
    const wanted = new URLSearchParams(location.hash.slice(1)).get("scenario");
    if (wanted && scenarioById(wanted) && !scenarioById(wanted).unavailable) S.scenario = wanted;
    const [buses, state, xf, nbs, feeders] = await Promise.all([api("GET", scoped("/buses")),
      request("GET", scoped("/state")), api("GET", scoped("/transformers")).catch(() => ({ transformers: [] })),
      api("GET", scoped("/neighbourhoods")).catch(() => ({ neighbourhoods: [] })), api("GET", "/feeders")]);
    const shown = scenarioById(S.scenario);
    showFeeder(feeders.feeders, shown ? shown.feeder : feeders.feeders.find((feeder) => feeder.default).name);
    S.buses = buses.buses;
    S.transformers = xf.transformers;
    S.neighbourhoods = nbs.neighbourhoods;
    S.etag = state.etag;
    for (const b of S.buses) S.bus.set(b.name, b);
    $("bus-names").innerHTML = S.buses.map((b) => `<option value="${esc(b.name)}"></option>`).join("");
    S.results = state.data.results;
    S.nodes = indexNodes(state.data.results);
    S.limits = state.data.results.violations.voltage_limits_pu;
    buildMap();
    drawLegends();
    fillNeighbourhoodSelect();
    showResults(state.data.results, state.data.sequence);
    updateTransformers();
    document.body.dataset.scenario = S.scenario;
    renderScenarioPicker();
    renderStudies();
    await Promise.all([refreshGenerators(), refreshJournal()]);
    setPreviewMarks(false);
    lockControls();
    document.body.dataset.ready = "true";
    setInterval(poll, POLL_MS);
  } catch (error) {
    $("status").textContent = `Could not load the grid: ${error.message}`;
    $("status").classList.add("bad");
  }
}

start();
