// The "Journal" panel: the selected scenario's changes, newest first, in words; an undone change struck through.

import { api } from "./api.js";
import { $, PHASE_NAMES, clock, esc, fmt } from "./dom.js";
import { S, scenarioById, scenarioName, scoped } from "./store.js";

/** One line per action, as the change's answer and the journal report it; `preview` words it as a proposal. */
export function describeAction(a, preview = false) {
  const phases = (nodes) => `phase${nodes.length > 1 ? "s" : ""} ${nodes.map((n) => PHASE_NAMES[n] || n).join("")}`;
  switch (a.type) {
    case "add_generator":
      return `${preview ? (a.created ? "Add" : "Update") : (a.created ? "Added" : "Updated")} ${a.generator}: ` +
        `${fmt(a.kw)} kW at bus ${a.bus}, ${phases(a.nodes)}.`;
    case "modify_load_neighbourhood":
      return `Neighbourhood ${a.neighbourhood} loads ×${a.factor} (${preview ? "would be" : "now"} ` +
        `×${fmt(a.cumulative_factor, 3)} of base, ${a.loads_changed.length} loads).`;
    case "remove_generator":
      return `${preview ? "Remove" : "Removed"} ${a.name}${a.kw != null ? ` (${fmt(a.kw)} kW at bus ${a.bus})` : ""}.`;
    case "reset":
      return "Reset to the base case.";
    case "undo":
      return `${preview ? "Undo" : "Undid"} change #${a.undid}.`;
    default:
      return a.type;
  }
}

export async function refreshJournal() {
  const id = S.scenario;
  try {
    const changes = (await api("GET", scoped("/changes", id))).changes;
    if (id !== S.scenario) return;
    S.journal = changes;
  } catch (_) { return; } // keep the last list; the next change or poll reads it again
  renderJournal();
}

/** Newest first; a change an undo took back is struck through. */
export function renderJournal() {
  const list = $("journal");
  list.textContent = "";
  const undone = new Set(S.journal.filter((c) => c.action.type === "undo").map((c) => c.action.undid));
  for (const entry of [...S.journal].reverse()) {
    const li = document.createElement("li");
    li.dataset.sequence = entry.sequence;
    li.dataset.type = entry.action.type;
    li.classList.toggle("undone", undone.has(entry.sequence));
    li.innerHTML = `<span class="seq">#${entry.sequence}</span> <span class="what"></span>` +
      `<time datetime="${esc(entry.at)}" title="${esc(entry.at)}">${esc(clock(entry.at))}</time>`;
    li.querySelector(".what").textContent = describeAction(entry.action) + (undone.has(entry.sequence) ? " (undone)" : "");
    list.appendChild(li);
  }
  const s = scenarioById(S.scenario);
  const origin = s && s.forked_from ? `as a fork of “${scenarioName(s.forked_from)}”` : "from the base case";
  $("journal-start").textContent = `${S.journal.length ? "" : "No changes yet. "}#0: started ${origin}` +
    (s ? ` at ${clock(s.created_at)}` : "") + ".";
}
