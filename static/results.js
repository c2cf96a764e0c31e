// A solved state, shown: every panel that draws one is redrawn from here. A new panel that shows something of
// each state adds one call to showResults.

import { renderBusDetails } from "./details.js";
import { $ } from "./dom.js";
import { drawGenerators, updateMap } from "./map.js";
import { drawProfile } from "./profile.js";
import { S, indexNodes, scenarioName, studyEntry } from "./store.js";
import { updateSummary } from "./summary.js";

/** Show a solved state: the scenario's own (and remember it), or a preview's (`preview`), which leaves the
 *  sequence alone: the scenario has not changed. */
export function showResults(results, sequence, preview = false) {
  if (!preview) S.applied = { results, sequence };
  S.results = results;
  S.limits = (results.violations && results.violations.voltage_limits_pu) || S.limits;
  S.nodes = indexNodes(results);
  S.renders++;
  updateMap();
  updateSummary();
  drawProfile();
  renderBusDetails();
  if (S.layers) drawGenerators();
  const when = new Date().toLocaleTimeString("en-GB");
  const solved = results.power_summary.converged ? "converged" : "NOT converged";
  $("status").textContent = preview
    ? `${scenarioName()} · PREVIEW of a change to state #${S.sequence} (not applied) · ${solved}`
    : `${scenarioName()} · state #${sequence} · ${solved} · updated ${when}`;
  if (!preview) {
    S.sequence = sequence;
    document.body.dataset.sequence = String(sequence);
    renderStaleNotes();
  }
}

/** Under each study's result (a `section.study[data-kind]` with a `.stale` note): "this study read an older state",
 *  after any change of the scenario. */
export function renderStaleNotes() {
  for (const section of document.querySelectorAll("section.study[data-kind]")) {
    const run = studyEntry(section.dataset.kind).run, result = run && run.result, node = section.querySelector(".stale");
    node.hidden = !result || result.sequence === S.sequence;
    node.textContent = node.hidden ? "" : `This study read state #${result.sequence}; the scenario is now at state ` +
      `#${S.sequence}. Run it again for the current state.`;
  }
}
