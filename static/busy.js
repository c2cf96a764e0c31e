// One request at a time from the controls: they are locked while it runs, its error is shown next to the control
// that sent it, and body[data-busy] tells when the page is at rest (tests wait on it).

import { $ } from "./dom.js";
import { S, scenarioName } from "./store.js";

/** The input of each field the API may name in an error, so that input can be marked invalid. */
const FIELD_INPUTS = { bus_name: "gen-bus", phases: "gen-phases", phase: "gen-phase", kw: "gen-kw",
  neighbourhood: "nb-select", factor: "nb-factor", name: "scenario-name" };

/** Run `task` for one control: one request at a time with the controls locked, and on failure the API's own
 *  message next to that control (`errorEl`) with the field it names marked. */
export async function act(errorEl, task, statusText = "Solving…") {
  if (S.busy) return;
  S.busy = true;
  lockControls();
  errorEl.textContent = "";
  for (const ok of document.querySelectorAll(".controls .ok")) ok.textContent = "";
  const form = errorEl.closest("form");
  if (form) for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  $("status").textContent = statusText;
  try {
    await task();
  } catch (error) {
    errorEl.textContent = error.message;
    const input = $(FIELD_INPUTS[error.field] || "");
    if (input && form && form.contains(input)) input.setAttribute("aria-invalid", "true");
    $("status").textContent = `${scenarioName()} · state #${S.sequence} · last request refused`;
  } finally {
    S.busy = false;
    lockControls();
  }
}

export function lockControls() {
  showBusy();
  for (const b of document.querySelectorAll(".controls button, #scenario-select, #compare-select")) b.disabled = S.busy;
  // The API refuses to delete the default scenario (409): no point offering it.
  if (!S.busy) $("scenario-delete").disabled = S.scenario === "default";
}

/** body[data-busy] is "true" while a change or a refresh is under way (tests wait on it). */
export function showBusy() {
  document.body.dataset.busy = String(S.busy || S.refreshing || !!S.loadingDiff);
}
