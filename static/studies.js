// The "Studies" panel: background jobs. POST …/studies/<kind> answers 202 with the job and its Location; GET /jobs/<id>
// tells its progress and, once done, its result. Each scenario keeps its own last run of each kind, so switching
// scenarios loses nothing. What is particular to a kind (its form, its result) lives in its own module, listed in
// KINDS: a new kind of study is a section in index.html, a module like hosting.js, and one line here.

import { api, request } from "./api.js";
import { $, fmt, sleep } from "./dom.js";
import { hostingCapacity } from "./hosting.js";
import { evAdoption } from "./evadoption.js";
import { hostingGain } from "./hostinggain.js";
import { loadHostingCapacity } from "./loadhosting.js";
import { updateMap } from "./map.js";
import { S, scenarioName, scoped, studyEntry } from "./store.js";
import { stochasticHostingCapacity } from "./stochastic.js";
import { timeSeries } from "./timeseries.js";

/** Each kind: { kind, ui: { section, form, run, cancel, error, row, bar, text, fields: { API field: input id } },
 *  body() → the request body from the form, render() → its result, wire() → its own controls,
 *  and optionally started(run) and finished(run) (awaited before the panel is drawn), path (the study's route,
 *  default its kind) and follows (another kind whose runs it is drawn again after). */
const KINDS = new Map([hostingCapacity, hostingGain, stochasticHostingCapacity, loadHostingCapacity, evAdoption, timeSeries]
  .map((k) => [k.kind, k]));
const JOB_POLL_MS = 300;
const FINISHED = new Set(["done", "failed", "cancelled"]);

const isCurrent = (run) => run.scenario === S.scenario && studyEntry(run.kind, run.scenario).run === run;
const isActive = (run) => !!run && !run.failure && !FINISHED.has(run.job.status);

async function startStudy(kind) {
  const id = S.scenario, entry = studyEntry(kind, id), study = KINDS.get(kind);
  if (isActive(entry.run)) return;
  entry.error = "";
  entry.field = null;
  $(study.ui.run).disabled = true;
  try {
    const body = study.body();
    const { data, location } = await request("POST", scoped(`/studies/${study.path || kind}`, id), body);
    entry.run = { kind, scenario: id, url: location || `/jobs/${encodeURIComponent(data.job.id)}`, job: data.job,
      body, result: null, failure: "", cancelling: false };
    if (study.started) study.started(entry.run);
    renderStudy(kind);
    pollJob(entry.run);
  } catch (error) {
    entry.error = error.message;
    entry.field = error.field || null;
    renderStudy(kind);
  }
}

/** Ask for the job until it has finished (and, when done, until its answer carries the result). */
async function pollJob(run) {
  while (!FINISHED.has(run.job.status) || (run.job.status === "done" && !run.job.result)) {
    await sleep(JOB_POLL_MS);
    try {
      run.job = (await api("GET", run.url)).job;
    } catch (error) {
      run.failure = error.message; // e.g. the server restarted and no longer knows the job
      break;
    }
    if (isCurrent(run)) renderStudyProgress(run.kind);
  }
  if (run.job.status === "done" && run.job.result) {
    run.result = run.job.result;
    delete run.job.result;
  }
  run.cancelling = false;
  if (!isCurrent(run)) return;
  const study = KINDS.get(run.kind);
  if (study.finished) await study.finished(run);
  renderStudy(run.kind);
}

async function cancelStudy(kind) {
  const entry = studyEntry(kind), run = entry.run;
  if (!isActive(run)) return;
  run.cancelling = true;
  renderStudyProgress(kind);
  try {
    const job = (await api("DELETE", `/jobs/${encodeURIComponent(run.job.id)}`)).job;
    if (!FINISHED.has(run.job.status)) run.job = { ...run.job, ...job, result: run.job.result };
  } catch (error) {
    entry.error = error.message;
    run.cancelling = false;
  }
  if (isCurrent(run)) renderStudy(kind);
}

/** Every study of the selected scenario (after switching scenarios). */
export function renderStudies() {
  $("studies-scenario").textContent = `of “${scenarioName()}”`;
  for (const kind of KINDS.keys()) renderStudy(kind);
  if (S.results) updateMap();
}

function renderStudy(kind) {
  renderStudyProgress(kind);
  KINDS.get(kind).render();
  for (const study of KINDS.values()) if (study.follows === kind) study.render();
}

const seconds = (job) => (job.started_at && job.finished_at
  ? (new Date(job.finished_at) - new Date(job.started_at)) / 1000 : null);

/** Buttons, progress bar, its words and the API's error for one kind of study in the selected scenario. */
function renderStudyProgress(kind) {
  const ui = KINDS.get(kind).ui, entry = studyEntry(kind), run = entry.run;
  const status = run ? (run.failure ? "failed" : run.job.status) : "idle";
  const section = $(ui.section);
  section.dataset.status = status;
  section.dataset.job = run ? run.job.id : "";
  $(ui.run).disabled = isActive(run);
  $(ui.cancel).hidden = !isActive(run);
  $(ui.cancel).disabled = !!(run && run.cancelling);
  $(ui.row).hidden = !run;
  const form = $(ui.form);
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const invalid = entry.field && (ui.fields[entry.field] || ui.fields[entry.field.split(/[.[]/)[0]]);
  if (invalid) $(invalid).setAttribute("aria-invalid", "true");
  $(ui.error).textContent = entry.error || (run && (run.failure || (status === "failed" && run.job.error))) || "";
  if (!run) return;
  const job = run.job, bar = $(ui.bar), pct = `${Math.floor(job.progress * 100)} %`;
  bar.value = job.progress;
  bar.setAttribute("aria-valuetext", `${status}, ${pct}`);
  const tasks = `${job.tasks.done} of ${job.tasks.total} task${job.tasks.total === 1 ? "" : "s"}`;
  const took = seconds(job);
  $(ui.text).textContent = run.cancelling && isActive(run) ? "Cancelling…"
    : status === "queued" ? "Queued: waiting for a free worker…"
    : status === "running" ? `Running: ${tasks} · ${pct}`
    : status === "done" ? `Done: ${tasks}${took != null ? ` in ${fmt(took, 1)} s` : ""}`
    : status === "cancelled" ? `Cancelled at ${pct} (${tasks}).`
    : `Failed at ${pct}.`;
}

export function wireStudies() {
  for (const [kind, study] of KINDS) {
    $(study.ui.form).addEventListener("submit", (event) => { event.preventDefault(); startStudy(kind); });
    $(study.ui.cancel).addEventListener("click", () => cancelStudy(kind));
    study.wire();
  }
}
