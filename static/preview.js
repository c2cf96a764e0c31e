// "Preview first": a change sent as a dry run is shown, marked as a preview, until Apply or Discard.

import { $ } from "./dom.js";
import { renderDiff } from "./diff.js";
import { describeAction } from "./journal.js";
import { showResults } from "./results.js";
import { S } from "./store.js";

/** Show what a change would do, marked as a preview; the scenario itself is untouched until Apply. */
export function showPreview(preview, results) {
  S.preview = preview;
  $("preview-text").textContent = describeAction(preview.action, true);
  $("preview-error").textContent = "";
  setPreviewMarks(true);
  showResults(results, S.sequence, true);
  renderDiff();
}

export function setPreviewMarks(on) {
  $("preview-banner").hidden = !on;
  document.body.dataset.preview = String(on);
  for (const badge of document.querySelectorAll("[data-preview-badge]")) badge.hidden = !on;
}

/** Forget the preview, if any; whether there was one. */
export function endPreview() {
  if (!S.preview) return false;
  S.preview = null;
  setPreviewMarks(false);
  return true;
}

/** Back to the scenario's own state; whether a preview was shown (polling waits while one is: catch up then). */
export function discardPreview() {
  if (!endPreview()) return false;
  $("preview-error").textContent = "";
  showResults(S.applied.results, S.applied.sequence);
  renderDiff();
  return true;
}
