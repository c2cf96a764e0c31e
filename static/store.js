// What the page knows: the selected scenario, its solved state, the selection, the preview, the comparison and the
// studies. One object, `S`, that every view reads and writes; views import this module, never the other way.

export const S = {
  buses: [], bus: new Map(), pos: new Map(), results: null, sequence: -1, limits: [0.95, 1.05],
  selected: null, generators: [], neighbourhoods: [], busy: false, refreshing: false,
  nodes: new Map(), transformers: [], pairs: new Map(), stubs: new Set(),
  // The map: its scene (what is drawn, in map units: map.js) and its view (zoom, pan, what is under the pointer: mapview.js).
  scene: null, view: null, layers: null,
  // Scenarios: every read and change goes to /scenarios/<scenario>/…; `etag` is the last ETag of its state.
  scenario: "default", scenarios: [], etag: null, journal: [], renders: 0,
  // Feeders (GET /feeders) and the one the page shows: the map is of one feeder, so a scenario on another reloads.
  feeders: [], feeder: null,
  applied: null,  // { results, sequence } of the scenario's real state, kept while a preview is shown
  preview: null,  // { method, path, body, etag, action, okEl } of the change being previewed
  compare: "", diff: null, diffOther: new Map(), deltaRange: 0.01, diffToken: 0,
  // Studies, per scenario: { <kind>: entry }, an entry { run, error, field } where
  // run = { kind, scenario, url, job, result, failure, cancelling }. mapStudy: the study whose result colours the
  // map ("hosting_capacity" or "load_hosting_capacity"; "" for none). evMarks: { run, sample } whose first failure's
  // EV chargers the map marks, or null.
  studies: new Map(), mapStudy: "", hcScale: null, hcSort: { key: "kw", dir: 1 }, lhcSort: { key: "kw", dir: 1 },
  evMarks: null,
};

/** The URL of a grid route in the selected scenario (the old top-level routes are the "default" one). */
export const scoped = (path, id = S.scenario) => `/scenarios/${encodeURIComponent(id)}${path}`;

export const scenarioById = (id) => S.scenarios.find((s) => s.id === id);
export const scenarioName = (id = S.scenario) => (scenarioById(id) && scenarioById(id).name) || id;
export const compareName = () => (S.compare === "base" ? "the base case" : `“${scenarioName(S.compare)}”`);

/** The node rows of each bus, by bus name. */
export function indexNodes(results) {
  const nodes = new Map();
  for (const row of results.bus_details) {
    if (!nodes.has(row.Bus)) nodes.set(row.Bus, []);
    nodes.get(row.Bus).push(row);
  }
  return nodes;
}

/** The node furthest from 1.0 pu: the bus's worst-phase voltage. */
export function worstNode(rows) {
  return rows.reduce((w, r) => (Math.abs(r.VMag_pu - 1) > Math.abs(w.VMag_pu - 1) ? r : w), rows[0]);
}

/** The scenario's last run of one kind of study: { run, error, field }, made on first use. */
export function studyEntry(kind, id = S.scenario) {
  if (!S.studies.has(id)) S.studies.set(id, {});
  const slot = S.studies.get(id);
  if (!slot[kind]) slot[kind] = { run: null, error: "", field: null };
  return slot[kind];
}

/** The selected scenario's last result of one kind of study, or null. */
export const studyResult = (kind) => { const run = studyEntry(kind).run; return (run && run.result) || null; };
/** The selected scenario's hosting capacity result (generation), and the result that colours the map. */
export const hostingResult = () => studyResult("hosting_capacity");
export const shownHosting = () => (S.mapStudy ? studyResult(S.mapStudy) : null);
/** Which capacity the map shows: "load" (new load), "generation" or "" (none). */
export const shownCapacity = () => (!shownHosting() ? "" : S.mapStudy === "load_hosting_capacity" ? "load" : "generation");

/** The generators as shown: GET …/generators, with a previewed add, update or removal made on top. */
export function shownGenerators() {
  const a = S.preview && S.preview.action;
  if (!a) return S.generators;
  if (a.type === "reset") return [];
  if (a.type === "remove_generator") return S.generators.filter((g) => g.name !== a.name);
  if (a.type === "add_generator") {
    return [...S.generators.filter((g) => g.name !== a.generator), { name: a.generator, bus: a.bus, kw: a.kw, preview: true }];
  }
  return S.generators;
}
