// Dashboard for the IEEE 123-bus power-flow API: a feeder map, a voltage profile, a summary and the controls.
// Plain JS and SVG; everything it shows comes from the same JSON API the scripts use.
"use strict";

(() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const PHASE_NAMES = { 1: "A", 2: "B", 3: "C" };
  const PHASE_COLOURS = { 1: "#222222", 2: "#d95f02", 3: "#1f78b4" };
  const POLL_MS = 5000;

  // ------------------------------------------------------------------ colour scales
  // Diverging about 1.0 pu (ColorBrewer RdBu): blue below, red above; the ANSI limits sit at the mid-dark stops
  // and everything beyond them darkens further, so a violation stands out.
  const V_MIN = 0.90, V_MAX = 1.10;
  const V_STOPS = [
    [0.90, [5, 48, 97]], [0.95, [33, 102, 172]], [0.975, [146, 197, 222]], [1.0, [247, 247, 247]],
    [1.025, [244, 165, 130]], [1.05, [178, 24, 43]], [1.10, [103, 0, 31]],
  ];

  /** Fill colour of a bus whose worst-phase voltage is `vpu` (clamped to 0.90–1.10 pu), as "rgb(r, g, b)". */
  function voltageColour(vpu) {
    const v = Math.min(V_MAX, Math.max(V_MIN, Number(vpu)));
    let i = 1;
    while (i < V_STOPS.length - 1 && v > V_STOPS[i][0]) i++;
    const [v0, c0] = V_STOPS[i - 1], [v1, c1] = V_STOPS[i];
    const t = (v - v0) / (v1 - v0);
    const [r, g, b] = c0.map((c, k) => Math.round(c + (c1[k] - c) * t));
    return `rgb(${r}, ${g}, ${b})`;
  }
  window.voltageColour = voltageColour;

  // The diff view's Δ voltage: another diverging scale (ColorBrewer PuOr) so it is not read as voltages: purple
  // where the voltage fell, orange where it rose, the same pale middle at no change. `range` is the legend's end.
  const D_STOPS = [[-1, [84, 39, 136]], [-0.5, [153, 142, 195]], [0, [247, 247, 247]], [0.5, [241, 163, 64]], [1, [179, 88, 6]]];

  /** Fill colour of a bus whose voltage changed by `delta` pu, on a scale from −range to +range. */
  function deltaColour(delta, range) {
    const t = Math.min(1, Math.max(-1, Number(delta) / range));
    let i = 1;
    while (i < D_STOPS.length - 1 && t > D_STOPS[i][0]) i++;
    const [t0, c0] = D_STOPS[i - 1], [t1, c1] = D_STOPS[i];
    const [r, g, b] = c0.map((c, k) => Math.round(c + (c1[k] - c) * (t - t0) / (t1 - t0)));
    return `rgb(${r}, ${g}, ${b})`;
  }
  window.deltaColour = deltaColour;

  /** The legend's end: the first round step at or above the largest change, so small changes still show. */
  function deltaRange(largest) {
    return [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2].find((r) => r >= largest - 1e-12) || 0.5;
  }

  const OVERLOAD_COLOUR = "#7b3294", LINE_COLOUR = "#56616b";
  const lineWidth = (pct) => 1.2 + 4.8 * Math.min(Math.max(pct, 0), 150) / 150;
  const NB_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
    "#1f78b4", "#b15928", "#6a3d9a", "#33a02c", "#fb9a99", "#666666", "#17becf"];

  // ------------------------------------------------------------------ state
  const S = {
    buses: [], bus: new Map(), pos: new Map(), results: null, sequence: -1, limits: [0.95, 1.05],
    selected: null, generators: [], neighbourhoods: [], busy: false, refreshing: false,
    busEl: new Map(), lineEl: new Map(), nodes: new Map(),
    transformers: [], pairs: new Map(), xfEl: new Map(), stubs: new Set(),
    // Scenarios: every read and change goes to /scenarios/<scenario>/…; `etag` is the last ETag of its state.
    scenario: "default", scenarios: [], etag: null, journal: [], renders: 0,
    applied: null,  // { results, sequence } of the scenario's real state, kept while a preview is shown
    preview: null,  // { method, path, body, etag, action, okEl } of the change being previewed
    compare: "", diff: null, diffOther: new Map(), deltaRange: 0.01, diffToken: 0,
    // Studies, per scenario: { hosting_capacity: entry, time_series: entry }, an entry { run, error, field } where
    // run = { kind, scenario, url, job, result, failure, cancelling }. showHosting: the map shows hosting capacity.
    studies: new Map(), showHosting: false, hcScale: null, hcSort: { key: "kw", dir: 1 },
  };
  window.dashboard = S; // for tests and the curious

  const $ = (id) => document.getElementById(id);
  const fmt = (x, digits = 1) => Number(x).toLocaleString("en-GB", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const signed = (x, digits = 1) => (x > 0 ? "+" : x < 0 ? "−" : "±") + fmt(Math.abs(x), digits);

  function el(tag, attrs = {}, parent = null, text = null) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== null) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  // ------------------------------------------------------------------ API
  /** One request: { status, data, etag, location }. A 304 comes back with data null; any other non-success answer throws
   *  an Error carrying the API's own message (and the field it names, and the HTTP status). */
  async function request(method, path, body, headers = {}) {
    // no-store: the browser's cache must not answer for us, nor turn our own conditional requests into 200s.
    const options = { method, cache: "no-store", headers: { Accept: "application/json", ...headers } };
    if (method !== "GET") {
      options.headers["Content-Type"] = "application/json";
      const key = $("api-key").value.trim();
      if (key) options.headers.Authorization = `Bearer ${key}`;
      options.body = JSON.stringify(body ?? {});
    }
    const response = await fetch(path, options);
    const etag = response.headers.get("ETag"), location = response.headers.get("Location");
    if (response.status === 304) return { status: 304, data: null, etag, location };
    let data = null;
    try { data = await response.json(); } catch (_) { /* not JSON */ }
    if (!response.ok || !data || data.status !== "success") {
      const error = new Error(data && data.message ? data.message : `${method} ${path}: HTTP ${response.status}`);
      error.field = data && data.field;
      error.status = response.status;
      throw error;
    }
    return { status: response.status, data, etag, location };
  }

  async function api(method, path, body) {
    return (await request(method, path, body)).data;
  }

  /** The URL of a grid route in the selected scenario (the old top-level routes are the "default" one). */
  const scoped = (path, id = S.scenario) => `/scenarios/${encodeURIComponent(id)}${path}`;

  // ------------------------------------------------------------------ map
  /** The transformers grouped by bus pair ("25-25r" holds reg3a and reg3c), in the API's order. */
  function transformerPairs(transformers) {
    const pairs = new Map();
    for (const t of transformers) {
      const key = `${t.bus1}-${t.bus2}`;
      if (!pairs.has(key)) pairs.set(key, { key, bus1: t.bus1, bus2: t.bus2, units: [] });
      pairs.get(key).units.push(t);
    }
    return pairs;
  }

  function layout(buses, lines, pairs) {
    const pos = new Map(), stubs = new Set();
    for (const b of buses) {
      // The open side of a tie ("94_open", "300_open") has no coordinates: the API sends x and y as null.
      if (b.x === null || b.y === null) stubs.add(b.name);
      else if (Number.isFinite(b.x) && Number.isFinite(b.y)) pos.set(b.name, [b.x, b.y]);
    }
    const neighbours = (name) => lines.filter((l) => l.Bus1 === name || l.Bus2 === name)
      .map((l) => (l.Bus1 === name ? l.Bus2 : l.Bus1));
    const placed = [...pos.values()];
    const minX = Math.min(...placed.map((p) => p[0])), minY = Math.min(...placed.map((p) => p[1]));
    const step = 0.035 * (Math.max(...placed.map((p) => p[0])) - minX || 1000);
    // Those stubs: a short step from their neighbour towards the bus their name points at ("94"),
    // or just beside the neighbour.
    for (const name of stubs) {
      const near = neighbours(name).find((n) => pos.has(n));
      if (!near) continue;
      const [x0, y0] = pos.get(near);
      const [x1, y1] = pos.get(name.replace(/_open$/, "")) || [x0 + step, y0 + step];
      const len = Math.hypot(x1 - x0, y1 - y0) || 1, t = Math.min(step, len / 2) / len;
      pos.set(name, [x0 + (x1 - x0) * t, y0 + (y1 - y0) * t]);
    }
    for (const b of buses) if (!pos.has(b.name)) pos.set(b.name, [minX, minY]);

    // A transformer's two buses sit on top of each other (the regulators) or very close (XFM1): move one side
    // so the transformer symbol fits between them. A side with no lines of its own (150, 610) moves away from
    // the other; otherwise the secondary side moves along its own line, at most 45 % of the way.
    const gap = 0.9 * step;
    const unit = (dx, dy) => { const len = Math.hypot(dx, dy); return len ? [dx / len, dy / len] : [1, 0]; };
    const awayFromLines = (name) => { // direction from `name`'s line neighbour to `name`
      const [x, y] = pos.get(name);
      const n = neighbours(name).map((m) => pos.get(m)).find((p) => p && (p[0] !== x || p[1] !== y));
      return n ? unit(x - n[0], y - n[1]) : [1, 0];
    };
    for (const { bus1, bus2 } of pairs.values()) {
      const a = pos.get(bus1), b = pos.get(bus2);
      const d = Math.hypot(b[0] - a[0], b[1] - a[1]);
      if (d >= gap) continue;
      if (!neighbours(bus2).length || !neighbours(bus1).length) {
        const [mover, anchor, other] = neighbours(bus2).length ? [bus1, b, bus2] : [bus2, a, bus1];
        const p = pos.get(mover);
        const [ux, uy] = d > 0 ? unit(p[0] - anchor[0], p[1] - anchor[1]) : awayFromLines(other);
        pos.set(mover, [anchor[0] + gap * ux, anchor[1] + gap * uy]);
      } else {
        const n = neighbours(bus2).map((m) => pos.get(m)).find((p) => p && (p[0] !== b[0] || p[1] !== b[1]));
        if (!n) continue;
        const len = Math.hypot(n[0] - b[0], n[1] - b[1]), [ux, uy] = unit(n[0] - b[0], n[1] - b[1]);
        const move = Math.min(gap - d, 0.45 * len);
        pos.set(bus2, [b[0] + move * ux, b[1] + move * uy]);
      }
    }

    // Any other buses at the same place: nudge the second towards its own line neighbour.
    const seen = new Map(), nudged = new Set();
    for (const b of buses) {
      const [x, y] = pos.get(b.name), key = `${x},${y}`;
      if (!seen.has(key)) { seen.set(key, b.name); continue; }
      const other = neighbours(b.name).map((n) => pos.get(n)).find((p) => p && (p[0] !== x || p[1] !== y));
      const [dx, dy] = other ? [other[0] - x, other[1] - y] : [1, 0];
      const len = Math.hypot(dx, dy) || 1;
      pos.set(b.name, [x + 55 * dx / len, y + 55 * dy / len]);
      nudged.add(b.name);
    }
    return { pos, nudged, stubs };
  }

  function buildMap() {
    const svg = $("map");
    svg.textContent = "";
    const lines = S.results.line_flows;
    S.pairs = transformerPairs(S.transformers);
    const { pos: raw, nudged, stubs } = layout(S.buses, lines, S.pairs);
    S.stubs = stubs;
    const xs = [...raw.values()].map((p) => p[0]), ys = [...raw.values()].map((p) => p[1]);
    const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
    const W = 1000, PAD = 28, k = (W - 2 * PAD) / (maxX - minX || 1);
    const H = Math.round((maxY - minY) * k + 2 * PAD);
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    for (const [name, [x, y]] of raw) S.pos.set(name, [PAD + (x - minX) * k, PAD + (maxY - y) * k]);

    const layers = {};
    for (const name of ["neighbourhoods", "lines", "transformers", "buses", "generators", "labels", "nblabels", "selection"]) {
      layers[name] = el("g", { class: `layer-${name}` }, svg);
    }
    S.layers = layers;
    drawNeighbourhoods(layers.neighbourhoods, layers.nblabels);

    S.lineEl.clear();
    for (const line of lines) {
      const a = S.pos.get(line.Bus1), b = S.pos.get(line.Bus2);
      if (!a || !b) continue;
      const open = S.stubs.has(line.Bus1) || S.stubs.has(line.Bus2);
      const cls = ["line", line.Switch ? "switch" : "", open ? "open" : ""].filter(Boolean).join(" ");
      const g = el("g", { class: cls, "data-line": line.Line }, layers.lines);
      const ends = { x1: a[0], y1: a[1], x2: b[0], y2: b[1] };
      el("line", { class: "hit", ...ends }, g);
      el("line", { class: "wire", ...ends, ...(open ? { "stroke-dasharray": "5 4" } : {}) }, g);
      if (line.Switch) {
        const mx = (a[0] + b[0]) / 2, my = (a[1] + b[1]) / 2;
        el("rect", { class: "switch-mark", x: mx - 4, y: my - 4, width: 8, height: 8 }, g);
      }
      S.lineEl.set(line.Line, g);
    }

    // One element per transformer bus pair: a short wire (width by loading, like a line) and the symbol.
    S.xfEl.clear();
    for (const pair of S.pairs.values()) {
      const a = S.pos.get(pair.bus1), b = S.pos.get(pair.bus2);
      if (!a || !b) continue;
      const regulator = pair.units.some((t) => t.tap != null);
      const g = el("g", { class: `transformer${regulator ? " regulator" : ""}`, "data-transformer": pair.key,
        "data-bus1": pair.bus1, "data-bus2": pair.bus2, "data-names": pair.units.map((t) => t.name).join(",") }, layers.transformers);
      const ends = { x1: a[0], y1: a[1], x2: b[0], y2: b[1] };
      el("line", { class: "hit", ...ends }, g);
      el("line", { class: "wire", ...ends }, g);
      const angle = Math.atan2(b[1] - a[1], b[0] - a[0]) * 180 / Math.PI;
      transformerSymbol(el("g", { class: "xf-symbol", transform: `translate(${(a[0] + b[0]) / 2},${(a[1] + b[1]) / 2})` }, g), regulator, angle);
      S.xfEl.set(pair.key, g);
    }

    // Names sit above and right of their bus, where a transformer symbol may be: then below (the symbol is to
    // the right) or beside (it is above). A bus nudged off another's place is labelled below too.
    const labelDy = new Map([...nudged].map((name) => [name, 14]));
    for (const { bus1, bus2 } of S.pairs.values()) {
      for (const [from, to] of [[bus1, bus2], [bus2, bus1]]) {
        const a = S.pos.get(from), b = S.pos.get(to);
        if (!a || !b) continue;
        const dx = b[0] - a[0], dy = b[1] - a[1];
        if (dx > 0 && Math.abs(dx) >= Math.abs(dy)) labelDy.set(from, 14);
        else if (dy < 0 && Math.abs(dy) > Math.abs(dx)) labelDy.set(from, 3);
      }
    }
    S.busEl.clear();
    for (const bus of S.buses) {
      const [x, y] = S.pos.get(bus.name);
      const c = el("circle", { class: "bus", "data-bus": bus.name, cx: x, cy: y, r: 5.5 }, layers.buses);
      S.busEl.set(bus.name, c);
      el("text", { class: "bus-label", "data-label": bus.name, x: x + 6, y: y + (labelDy.get(bus.name) ?? -5) }, layers.labels, bus.name);
    }
    placeNeighbourhoodLabels();
    svg.addEventListener("click", (event) => {
      const target = event.target.closest("[data-bus]");
      if (target) selectBus(target.getAttribute("data-bus"));
    });
    svg.addEventListener("mousemove", showTooltip);
    svg.addEventListener("mouseleave", hideTooltip);
  }

  /** Two overlapping windings along `angle` (degrees); a regulator gets its tap changer's arrow across them. */
  function transformerSymbol(g, regulator, angle = 0) {
    const coils = el("g", angle ? { transform: `rotate(${angle.toFixed(1)})` } : {}, g);
    for (const cx of [-2.9, 2.9]) el("circle", { class: "xf-back", cx, cy: 0, r: 4.7 }, coils);
    for (const cx of [-2.9, 2.9]) el("circle", { class: "xf-coil", cx, cy: 0, r: 4.7 }, coils);
    if (regulator) { // always pointing up and right, whichever way the windings lie
      el("line", { class: "xf-arrow", x1: -7.2, y1: 6.2, x2: 5.2, y2: -4.4 }, g);
      el("path", { class: "xf-arrowhead", d: "M7.8,-6.6 L2.2,-4.9 L5.6,-1.2 Z" }, g);
    }
    return g;
  }

  function drawNeighbourhoods(layer, labels) {
    // Each neighbourhood as a translucent band along its own lines and buses (group opacity keeps the band even).
    layer.textContent = "";
    labels.textContent = "";
    const groups = new Map();
    if (S.neighbourhoods.length) {
      for (const nb of S.neighbourhoods) groups.set(nb.id, nb.buses.filter((b) => S.pos.has(b)));
    } else {
      for (const b of S.buses) if (b.neighbourhood != null) {
        if (!groups.has(b.neighbourhood)) groups.set(b.neighbourhood, []);
        groups.get(b.neighbourhood).push(b.name);
      }
    }
    for (const [id, names] of groups) {
      if (!names.length) continue;
      const members = new Set(names);
      const colour = NB_COLOURS[(id - 1) % NB_COLOURS.length];
      const g = el("g", { class: "neighbourhood", "data-neighbourhood": id, stroke: colour, fill: colour }, layer);
      for (const line of S.results.line_flows) {
        if (!members.has(line.Bus1) || !members.has(line.Bus2)) continue;
        const [x1, y1] = S.pos.get(line.Bus1), [x2, y2] = S.pos.get(line.Bus2);
        el("line", { x1, y1, x2, y2 }, g);
      }
      for (const name of names) {
        const [cx, cy] = S.pos.get(name);
        el("circle", { cx, cy, r: 11, stroke: "none" }, g);
      }
      const top = names.map((n) => S.pos.get(n)).reduce((best, p) => (p[1] < best[1] ? p : best));
      const label = el("text", { class: "nb-label", x: top[0] - 9, y: top[1] - 9, fill: colour, "data-neighbourhood": id }, labels, `N${id}`);
      label._members = names;
    }
  }

  /** Move each neighbourhood label to the first spot beside its topmost buses that covers no bus, no bus name and
   *  no other neighbourhood label (the map is dense around 160 and 300). Run once the bus names are drawn. */
  function placeNeighbourhoodLabels() {
    const overlaps = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
    const [, , W, H] = $("map").getAttribute("viewBox").split(" ").map(Number);
    const inside = (b) => b.x >= 0 && b.y >= 0 && b.x + b.width <= W && b.y + b.height <= H;
    const taken = [...S.layers.labels.children].map((t) => t.getBBox());
    for (const [x, y] of S.pos.values()) taken.push({ x: x - 6, y: y - 6, width: 12, height: 12 });
    const offsets = [[-9, -9], [-9, -22], [-12, 4], [-12, 18], [30, -9], [-24, -9]];
    for (const label of S.layers.nblabels.children) {
      const buses = label._members.map((n) => S.pos.get(n)).sort((a, b) => a[1] - b[1]).slice(0, 4);
      const spots = buses.flatMap(([x, y]) => offsets.map(([dx, dy]) => [x + dx, y + dy]));
      for (const [x, y] of spots) {
        label.setAttribute("x", x);
        label.setAttribute("y", y);
        const box = label.getBBox();
        if (inside(box) && !taken.some((other) => overlaps(box, other))) break;
      }
      taken.push(label.getBBox());
    }
  }

  function drawGenerators() {
    const layer = S.layers.generators;
    layer.textContent = "";
    const byBus = new Map(), previewed = new Set();
    for (const g of shownGenerators()) {
      byBus.set(g.bus, (byBus.get(g.bus) || 0) + g.kw);
      if (g.preview) previewed.add(g.bus);
    }
    for (const [bus, kw] of byBus) {
      const p = S.pos.get(bus);
      if (!p) continue;
      const cls = `gen-marker${previewed.has(bus) ? " preview" : ""}`;
      const g = el("g", { class: cls, "data-bus": bus, transform: `translate(${p[0] + 9},${p[1] + 11})` }, layer);
      el("circle", { r: 7 }, g);
      el("path", { d: "M-4,0 C-2,-5 2,5 4,0" }, g);
      g.setAttribute("aria-label", `Generator at bus ${bus}: ${fmt(kw)} kW`);
    }
  }

  /** The generators as shown: GET …/generators, with a previewed add, update or removal made on top. */
  function shownGenerators() {
    const a = S.preview && S.preview.action;
    if (!a) return S.generators;
    if (a.type === "reset") return [];
    if (a.type === "remove_generator") return S.generators.filter((g) => g.name !== a.name);
    if (a.type === "add_generator") {
      return [...S.generators.filter((g) => g.name !== a.generator), { name: a.generator, bus: a.bus, kw: a.kw, preview: true }];
    }
    return S.generators;
  }

  // ------------------------------------------------------------------ results → page
  function indexNodes(results) {
    const nodes = new Map();
    for (const row of results.bus_details) {
      if (!nodes.has(row.Bus)) nodes.set(row.Bus, []);
      nodes.get(row.Bus).push(row);
    }
    return nodes;
  }

  /** The node furthest from 1.0 pu: the bus's worst-phase voltage. */
  function worstNode(rows) {
    return rows.reduce((w, r) => (Math.abs(r.VMag_pu - 1) > Math.abs(w.VMag_pu - 1) ? r : w), rows[0]);
  }

  /** Show a solved state: the scenario's own (and remember it), or a preview's (`preview`), which leaves the
   *  sequence alone: the scenario has not changed. */
  function applyResults(results, sequence, preview = false) {
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

  function updateMap() {
    const [lo, hi] = S.limits;
    const hosting = shownHosting(); // one bus colouring at a time: hosting capacity, Δ voltage or voltage
    const deltas = !hosting && S.compare && S.diff ? busDeltas() : null;
    if (deltas) S.deltaRange = deltaRange(Math.max(0, ...[...deltas.values()].map(Math.abs)));
    const colouring = hosting ? "hosting" : deltas ? "delta" : "voltage";
    $("map").dataset.colouring = colouring;
    $("map").setAttribute("aria-label", `Feeder map: buses coloured by ${{ hosting: "hosting capacity in kW",
      delta: "voltage change", voltage: "worst-phase voltage" }[colouring]}, lines and transformers sized by loading`);
    const hcRows = hosting ? new Map(hosting.buses.map((r) => [r.bus, r])) : null;
    if (hosting) S.hcScale = hostingDomain(hosting.buses);
    for (const [name, circle] of S.busEl) {
      const rows = S.nodes.get(name);
      circle.classList.toggle("violation", !hosting && !!rows && rows.some((r) => r.VMag_pu < lo || r.VMag_pu > hi));
      if (hosting) {
        const row = hcRows.get(name), kw = row ? row.hosting_capacity_kW : null;
        circle.setAttribute("fill", kw == null ? NO_HOSTING_COLOUR : hostingColour(kw, S.hcScale.lo, S.hcScale.hi));
        circle.dataset.hostingKw = kw == null ? "" : String(kw);
        delete circle.dataset.delta;
        continue;
      }
      delete circle.dataset.hostingKw;
      if (deltas) {
        const d = deltas.get(name);
        circle.setAttribute("fill", d === undefined ? "#cccccc" : deltaColour(d, S.deltaRange));
        circle.dataset.delta = d === undefined ? "" : String(d);
      } else {
        delete circle.dataset.delta;
        circle.setAttribute("fill", rows && rows.length ? voltageColour(worstNode(rows).VMag_pu) : "#cccccc");
      }
    }
    drawVoltageLegend();
    renderColouringNote();
    for (const line of S.results.line_flows) {
      const g = S.lineEl.get(line.Line);
      if (!g) continue;
      const wire = g.querySelector(".wire");
      wire.setAttribute("stroke-width", lineWidth(line.Loading_pct).toFixed(2));
      wire.setAttribute("stroke", line.Loading_pct > 100 ? OVERLOAD_COLOUR : LINE_COLOUR);
      g.classList.toggle("overloaded", line.Loading_pct > 100);
    }
  }

  /** Each bus's largest node voltage change (signed) against the compared state. The API's own deltas for the
   *  applied state; during a preview, the previewed voltages against the same "other" voltages. */
  function busDeltas() {
    const rows = S.preview
      ? S.results.bus_details.map((r) => [r.Bus, r.VMag_pu - S.diffOther.get(`${r.Bus}.${r.Node}`)])
      : S.diff.buses.map((r) => [r.Bus, r.delta_pu]);
    const deltas = new Map();
    for (const [bus, d] of rows) {
      if (Number.isFinite(d) && (!deltas.has(bus) || Math.abs(d) > Math.abs(deltas.get(bus)))) deltas.set(bus, d);
    }
    return deltas;
  }

  /** Transformer wires by their most loaded unit, like the lines; data-loading for tests. */
  function updateTransformers() {
    const pairs = transformerPairs(S.transformers);
    for (const [key, g] of S.xfEl) {
      const pair = pairs.get(key);
      const pct = pair ? Math.max(...pair.units.map((t) => t.loading_pct)) : 0;
      g.dataset.loading = String(pct);
      const wire = g.querySelector(".wire");
      wire.setAttribute("stroke-width", lineWidth(pct).toFixed(2));
      wire.setAttribute("stroke", pct > 100 ? OVERLOAD_COLOUR : LINE_COLOUR);
      g.classList.toggle("overloaded", pct > 100);
    }
  }

  async function refreshTransformers() {
    const id = S.scenario;
    try {
      const transformers = (await api("GET", scoped("/transformers", id))).transformers;
      if (id !== S.scenario) return;
      S.transformers = transformers;
    } catch (_) { return; } // keep the last numbers until the next change or new state
    updateTransformers();
  }

  function setNum(id, value, text) {
    const node = $(id);
    const old = node.dataset.value;
    node.dataset.value = String(value);
    node.textContent = text;
    if (old !== undefined && old !== String(value)) {
      node.classList.remove("changed");
      void node.getBoundingClientRect(); // restart the highlight animation
      node.classList.add("changed");
    }
  }

  function updateSummary() {
    const ps = S.results.power_summary, vp = S.results.voltage_profile, losses = S.results.losses || {};
    setNum("summary-source-kw", ps.total_circuit_power_kW, `${fmt(ps.total_circuit_power_kW)} kW`);
    $("summary-source-kvar").textContent = `${fmt(ps.total_circuit_power_kVAR)} kvar`;
    setNum("summary-load-kw", ps.total_load_kW, `${fmt(ps.total_load_kW)} kW`);
    setNum("summary-gen-kw", ps.total_generation_kW, `${fmt(ps.total_generation_kW)} kW`);
    setNum("summary-losses-kw", ps.total_losses_kW, `${fmt(ps.total_losses_kW)} kW`);
    $("summary-losses-pct").textContent = losses.percent_of_input == null ? "" : `${fmt(losses.percent_of_input, 2)} % of input`;
    setNum("summary-vmin", vp.min_voltage_pu, `${vp.min_voltage_pu.toFixed(4)} pu`);
    setNum("summary-vmax", vp.max_voltage_pu, `${vp.max_voltage_pu.toFixed(4)} pu`);
    $("summary-vmin").classList.toggle("bad", vp.min_voltage_pu < S.limits[0]);
    $("summary-vmax").classList.toggle("bad", vp.max_voltage_pu > S.limits[1]);
    setNum("summary-voltage-violations", ps.voltage_violations, String(ps.voltage_violations));
    setNum("summary-thermal-violations", ps.thermal_violations, String(ps.thermal_violations));
    const v = $("summary-violations");
    v.dataset.voltage = ps.voltage_violations;
    v.dataset.thermal = ps.thermal_violations;
    v.dataset.reversePower = ps.reverse_power;
    $("summary-reverse-power").textContent = ps.reverse_power ? "yes" : "no";
    $("summary-voltage-violations").classList.toggle("bad", ps.voltage_violations > 0);
    $("summary-thermal-violations").classList.toggle("bad", ps.thermal_violations > 0);
    $("summary-reverse-power").classList.toggle("bad", ps.reverse_power);
  }

  // ------------------------------------------------------------------ voltage profile
  function drawProfile() {
    const svg = $("profile");
    svg.textContent = "";
    const W = 1000, H = 330, M = { l: 62, r: 18, t: 34, b: 44 };
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const dist = new Map(S.buses.map((b) => [b.name, b.distance_km]));
    const vs = S.results.bus_details.map((r) => r.VMag_pu);
    const [lo, hi] = S.limits;
    const yMin = Math.min(lo - 0.01, Math.floor((Math.min(...vs) - 0.005) * 100) / 100);
    const yMax = Math.max(hi + 0.01, Math.ceil((Math.max(...vs) + 0.005) * 100) / 100);
    const dMax = Math.max(0.5, Math.ceil(Math.max(...[...dist.values()].filter(Number.isFinite)) * 4) / 4);
    const X = (d) => M.l + (d / dMax) * (W - M.l - M.r);
    const Y = (v) => M.t + (yMax - v) / (yMax - yMin) * (H - M.t - M.b);

    const axes = el("g", { class: "axes" }, svg);
    for (let v = Math.ceil(yMin * 100) / 100; v <= yMax + 1e-9; v += 0.01) {
      const y = Y(v);
      el("line", { class: "grid", x1: M.l, x2: W - M.r, y1: y, y2: y }, axes);
      el("text", { class: "tick", x: M.l - 6, y: y + 4, "text-anchor": "end" }, axes, v.toFixed(2));
    }
    const xStep = dMax > 2 ? 0.5 : 0.25;
    for (let d = 0; d <= dMax + 1e-9; d += xStep) {
      const x = X(d);
      el("line", { class: "grid", x1: x, x2: x, y1: M.t, y2: H - M.b }, axes);
      el("text", { class: "tick", x, y: H - M.b + 16, "text-anchor": "middle" }, axes, d.toFixed(2));
    }
    el("text", { class: "axis-title", x: (M.l + W - M.r) / 2, y: H - 6, "text-anchor": "middle" }, axes,
      "Distance from the substation (km)");
    el("text", { class: "axis-title", x: 14, y: (M.t + H - M.b) / 2, "text-anchor": "middle",
      transform: `rotate(-90 14 ${(M.t + H - M.b) / 2})` }, axes, "Voltage (pu)");
    for (const limit of [lo, hi]) {
      el("line", { class: "limit", x1: M.l, x2: W - M.r, y1: Y(limit), y2: Y(limit) }, axes);
      el("text", { class: "limit-label", x: W - M.r - 4, y: Y(limit) + (limit < 1 ? 14 : -5), "text-anchor": "end" },
        axes, `${limit.toFixed(2)} pu limit`);
    }

    // One segment per line and phase, from bus1's distance and voltage to bus2's, like OpenDSS's plot profile.
    const series = el("g", { class: "series" }, svg);
    for (const line of S.results.line_flows) {
      const d1 = dist.get(line.Bus1), d2 = dist.get(line.Bus2);
      const n1 = S.nodes.get(line.Bus1) || [], n2 = S.nodes.get(line.Bus2) || [];
      if (!Number.isFinite(d1) || !Number.isFinite(d2)) continue;
      for (const a of n1) {
        const b = n2.find((r) => r.Node === a.Node);
        if (!b || a.Node > 3) continue;
        el("line", { class: `seg phase-${a.Node}`, "data-seg": line.Line, "data-phase": a.Node, stroke: PHASE_COLOURS[a.Node],
          x1: X(d1).toFixed(1), y1: Y(a.VMag_pu).toFixed(1), x2: X(d2).toFixed(1), y2: Y(b.VMag_pu).toFixed(1) }, series);
      }
    }

    if (S.selected && S.nodes.has(S.selected) && Number.isFinite(dist.get(S.selected))) {
      const x = X(dist.get(S.selected));
      const g = el("g", { class: "profile-selected" }, svg);
      el("line", { class: "cursor", x1: x, x2: x, y1: M.t, y2: H - M.b }, g);
      for (const r of S.nodes.get(S.selected)) {
        if (r.Node > 3) continue;
        el("circle", { cx: x, cy: Y(r.VMag_pu), r: 4.5, fill: PHASE_COLOURS[r.Node] }, g);
      }
      el("text", { class: "cursor-label", x: x + 5, y: M.t + 12 }, g, `bus ${S.selected}`);
    }

    // Legend: phases and limits.
    const lg = el("g", { class: "profile-legend", transform: `translate(${M.l}, 12)` }, svg);
    let x = 0;
    for (const node of [1, 2, 3]) {
      el("line", { x1: x, x2: x + 22, y1: 0, y2: 0, stroke: PHASE_COLOURS[node], "stroke-width": 3 }, lg);
      el("text", { x: x + 28, y: 4 }, lg, `Phase ${PHASE_NAMES[node]} (node ${node})`);
      x += 150;
    }
    el("line", { class: "limit", x1: x, x2: x + 22, y1: 0, y2: 0 }, lg);
    el("text", { x: x + 28, y: 4 }, lg, `ANSI limits ${lo.toFixed(2)} / ${hi.toFixed(2)} pu`);
  }

  // ------------------------------------------------------------------ legends
  function drawLegends() {
    drawVoltageLegend();
    drawLinesLegend();
  }

  /** The bus colour legend: voltages, or Δ voltage while comparing. */
  function drawVoltageLegend() {
    const lv = $("legend-voltage");
    lv.textContent = "";
    const W = 430, x0 = 14, x1 = W - 14, barY = 24, barH = 14;
    lv.setAttribute("viewBox", `0 0 ${W} 70`);
    if ($("map").dataset.colouring === "hosting") { drawHostingLegend(lv); return; }
    lv.setAttribute("aria-label", "Legend: bus colour by worst-phase voltage in pu");
    const delta = $("map").dataset.colouring === "delta";
    const [lowEnd, highEnd] = delta ? [-S.deltaRange, S.deltaRange] : [V_MIN, V_MAX];
    const X = (v) => x0 + (v - lowEnd) / (highEnd - lowEnd) * (x1 - x0);
    const colour = delta ? (v) => deltaColour(v, S.deltaRange) : voltageColour;
    const grad = el("linearGradient", { id: "vgrad", x1: "0", x2: "1", y1: "0", y2: "0" }, el("defs", {}, lv));
    for (let i = 0; i <= 40; i++) {
      el("stop", { offset: `${(i / 40) * 100}%`, "stop-color": colour(lowEnd + (highEnd - lowEnd) * i / 40) }, grad);
    }
    el("text", { class: "legend-title", x: x0, y: 13 }, lv,
      delta ? `Bus colour: Δ voltage vs ${compareName()} (pu)` : "Bus colour: worst-phase voltage (pu)");
    el("rect", { x: x0, y: barY, width: x1 - x0, height: barH, fill: "url(#vgrad)", stroke: "#888", "stroke-width": 0.5 }, lv);
    if (delta) {
      const r = S.deltaRange, digits = r < 0.01 ? 3 : r < 0.1 ? 2 : 1;
      for (const v of [-r, -r / 2, 0, r / 2, r]) {
        el("line", { class: "tick-line", x1: X(v), x2: X(v), y1: barY, y2: barY + barH + 4 }, lv);
        const text = v === 0 ? "0 (no change)" : `${v > 0 ? "+" : "−"}${Math.abs(v).toFixed(digits + 1)}`;
        const anchor = v === -r ? "start" : v === r ? "end" : "middle"; // the ends stay inside the legend
        el("text", { class: "tick", x: X(v), y: barY + barH + 16, "text-anchor": anchor }, lv, text);
      }
      el("text", { class: "tick", x: x0, y: barY + barH + 30 }, lv, "← lower");
      el("text", { class: "tick", x: x1, y: barY + barH + 30, "text-anchor": "end" }, lv, "higher →");
      el("circle", { cx: W / 2 - 52, cy: barY + barH + 26, r: 5, fill: "#f7f7f7", class: "legend-violation" }, lv);
      el("text", { class: "tick", x: W / 2 - 42, y: barY + barH + 30 }, lv, "ring: outside limits");
      return;
    }
    for (const v of [0.90, 0.95, 1.0, 1.05, 1.10]) {
      const isLimit = Math.abs(v - S.limits[0]) < 1e-9 || Math.abs(v - S.limits[1]) < 1e-9;
      el("line", { class: isLimit ? "limit-tick" : "tick-line", x1: X(v), x2: X(v), y1: barY - (isLimit ? 4 : 0), y2: barY + barH + 4 }, lv);
      el("text", { class: isLimit ? "tick limit-text" : "tick", x: X(v), y: barY + barH + 16, "text-anchor": "middle" }, lv,
        v.toFixed(2) + (isLimit ? " limit" : ""));
    }
    el("circle", { cx: x1 - 118, cy: 9, r: 5, fill: voltageColour(0.93), class: "legend-violation" }, lv);
    el("text", { class: "tick", x: x1 - 108, y: 13 }, lv, "ring: outside limits");
  }

  function drawLinesLegend() {
    const ll = $("legend-lines");
    ll.textContent = "";
    ll.setAttribute("viewBox", "0 0 430 94");
    el("text", { class: "legend-title", x: 14, y: 13 }, ll, "Line width: loading (% of normal rating)");
    let x = 14;
    for (const pct of [0, 50, 100, 150]) {
      el("line", { x1: x, x2: x + 30, y1: 28, y2: 28, stroke: pct > 100 ? OVERLOAD_COLOUR : LINE_COLOUR, "stroke-width": lineWidth(pct) }, ll);
      el("text", { class: "tick", x: x + 34, y: 32 }, ll, pct > 100 ? `>100 %` : `${pct} %`);
      x += 80;
    }
    const row2 = 56;
    el("line", { x1: 14, x2: 44, y1: row2, y2: row2, stroke: LINE_COLOUR, "stroke-width": 2 }, ll);
    el("rect", { class: "switch-mark", x: 25, y: row2 - 4, width: 8, height: 8 }, ll);
    el("text", { class: "tick", x: 48, y: row2 + 4 }, ll, "switch");
    el("line", { x1: 100, x2: 130, y1: row2, y2: row2, stroke: LINE_COLOUR, "stroke-width": 2, "stroke-dasharray": "5 4" }, ll);
    el("rect", { class: "switch-mark open-mark", x: 111, y: row2 - 4, width: 8, height: 8 }, ll);
    el("text", { class: "tick", x: 134, y: row2 + 4 }, ll, "open tie");
    const gen = el("g", { class: "gen-marker", transform: `translate(200, ${row2})` }, ll);
    el("circle", { r: 7 }, gen);
    el("path", { d: "M-4,0 C-2,-5 2,5 4,0" }, gen);
    el("text", { class: "tick", x: 211, y: row2 + 4 }, ll, "generator");
    el("line", { x1: 286, x2: 302, y1: row2, y2: row2, stroke: NB_COLOURS[0], "stroke-opacity": 0.3, "stroke-width": 20, "stroke-linecap": "round" }, ll);
    el("text", { class: "tick", x: 318, y: row2 + 4 }, ll, "neighbourhood");
    const row3 = 80;
    for (const [x, regulator, text] of [[14, false, "transformer"], [130, true, "voltage regulator (tap changer)"]]) {
      el("line", { x1: x, x2: x + 30, y1: row3, y2: row3, stroke: LINE_COLOUR, "stroke-width": 2 }, ll);
      transformerSymbol(el("g", { class: "xf-symbol", transform: `translate(${x + 15}, ${row3})` }, ll), regulator);
      el("text", { class: "tick", x: x + 34, y: row3 + 4 }, ll, text);
    }
  }

  // ------------------------------------------------------------------ selection, tooltip, details
  function selectBus(name) {
    if (!S.bus.has(name)) return;
    S.selected = name;
    for (const [n, c] of S.busEl) c.classList.toggle("selected", n === name);
    for (const label of S.layers.labels.children) label.classList.toggle("hidden", label.dataset.label === name);
    const sel = S.layers.selection;
    sel.textContent = "";
    const [x, y] = S.pos.get(name);
    el("circle", { class: "halo", cx: x, cy: y, r: 10 }, sel);
    el("text", { class: "selected-label", x: x + 12, y: y - 10 }, sel, name);
    if ($("gen-bus").value.trim().toLowerCase() !== name) $("gen-bus").value = name;
    const phases = S.bus.get(name).nodes.filter((n) => n <= 3).map((n) => PHASE_NAMES[n]);
    $("gen-bus-phases").textContent = `Bus ${name} has phase${phases.length > 1 ? "s" : ""} ${phases.join(", ")}` +
      (phases.length === 3 ? "." : ": 1-phase generators only.");
    renderBusDetails();
    drawProfile();
    for (const row of document.querySelectorAll("#hc-rows tr")) row.classList.toggle("selected", row.dataset.bus === name);
  }

  function renderBusDetails() {
    const box = $("bus-details");
    const name = S.selected;
    if (!name || !S.results) return;
    const bus = S.bus.get(name), rows = S.nodes.get(name) || [];
    const worst = rows.length ? worstNode(rows) : null;
    const gens = shownGenerators().filter((g) => g.bus === name);
    const html = [];
    html.push(`<p class="bus-head"><span class="swatch" style="background:${worst ? voltageColour(worst.VMag_pu) : "#ccc"}"></span>
      <strong>Bus ${esc(name)}</strong></p>
      <p class="muted">Neighbourhood ${bus.neighbourhood ?? "none"} · ${fmt(bus.distance_km, 3)} km from the substation · ${fmt(bus.kv_base_ln, 3)} kV line-to-neutral base</p>`);
    if (worst) html.push(`<p>Worst phase: ${PHASE_NAMES[worst.Node] || worst.Node} at <strong id="selected-worst-vpu" data-value="${worst.VMag_pu}">${worst.VMag_pu.toFixed(4)} pu</strong></p>`);
    html.push(`<table class="nodes"><thead><tr><th scope="col">Phase</th><th scope="col" class="r">V (pu)</th><th scope="col" class="r">Angle</th>
      <th scope="col" class="r">Load kW</th><th scope="col" class="r">Gen kW</th></tr></thead><tbody>`);
    for (const r of rows) {
      html.push(`<tr><td>${PHASE_NAMES[r.Node] || r.Node}</td><td class="r">${r.VMag_pu.toFixed(4)}</td><td class="r">${fmt(r.VAngle, 1)}°</td>
        <td class="r">${fmt(r.Load_kW)}</td><td class="r">${fmt(r.Gen_kW)}</td></tr>`);
    }
    html.push("</tbody></table>");
    const hcRow = hostingResult() && hostingResult().buses.find((r) => r.bus === name);
    if (hcRow) html.push(`<p id="selected-hosting">Hosting capacity: ${esc(hostingText(hcRow).replace(/^[^:]*: /, ""))}</p>`);
    html.push(`<p class="muted">Loads: ${bus.loads && bus.loads.length ? bus.loads.map(esc).join(", ") : "none"} · Generators: ${gens.length ? gens.map((g) => esc(g.name)).join(", ") : "none"}</p>`);
    box.innerHTML = html.join("");
  }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  function busTooltip(name) {
    const hosting = shownHosting();
    if (hosting) return hostingTooltip(name, hosting);
    const bus = S.bus.get(name), rows = S.nodes.get(name) || [], delta = S.busEl.get(name).dataset.delta;
    const worst = rows.length ? worstNode(rows) : null;
    const load = rows.reduce((s, r) => s + r.Load_kW, 0), gen = rows.reduce((s, r) => s + r.Gen_kW, 0);
    return `<strong>Bus ${esc(name)}</strong>${bus.neighbourhood != null ? ` · N${bus.neighbourhood}` : ""}<br>` +
      rows.map((r) => `${PHASE_NAMES[r.Node] || r.Node}: ${r.VMag_pu.toFixed(4)} pu ∠${fmt(r.VAngle, 1)}°`).join("<br>") +
      (worst ? `<br>worst ${worst.VMag_pu.toFixed(4)} pu` : "") +
      `<br>load ${fmt(load)} kW · gen ${fmt(gen)} kW<br>${fmt(bus.distance_km, 3)} km from the substation` +
      (delta ? `<br>Δ vs ${esc(compareName())}: ${signed(Number(delta), 4)} pu` : "");
  }

  function lineTooltip(name) {
    const l = S.results.line_flows.find((r) => r.Line === name);
    if (!l) return "";
    const kind = S.stubs.has(l.Bus1) || S.stubs.has(l.Bus2) ? " · normally open tie" : l.Switch ? " · switch" : "";
    return `<strong>${l.Switch ? "Switch" : "Line"} ${esc(l.Line)}</strong>${kind}<br>${esc(l.Bus1)} → ${esc(l.Bus2)} · ${l.Phases}-phase<br>` +
      `P ${fmt(l.P_kW)} kW · Q ${fmt(l.Q_kVAR)} kvar<br>I ${l.I_A.map((a) => fmt(a, 0)).join(" / ")} A<br>` +
      `loading ${fmt(l.Loading_pct)} %${l.Loading_pct > 100 ? " (overloaded)" : ""} · losses ${fmt(l.Losses_kW, 2)} kW`;
  }

  function transformerTooltip(key) {
    const units = S.transformers.filter((t) => `${t.bus1}-${t.bus2}` === key);
    if (!units.length) return "";
    const regulator = units.some((t) => t.tap != null);
    const kind = (regulator ? "Regulator" : "Transformer") + (units.length > 1 ? "s" : "");
    const signed = (n) => (n > 0 ? `+${n}` : String(n));
    const losses = units.reduce((s, t) => s + t.losses_kW, 0);
    return `<strong>${kind} ${units.map((t) => esc(t.name)).join(", ")}</strong><br>${esc(units[0].bus1)} → ${esc(units[0].bus2)}<br>` +
      units.map((t) => `${esc(t.name)}: ${fmt(t.kva, 0)} kVA · loading ${fmt(t.loading_pct)} %` +
        `${t.loading_pct > 100 ? " (overloaded)" : ""}${t.tap != null ? ` · tap ${signed(t.tap)}` : ""}`).join("<br>") +
      `<br>losses ${losses < 1 ? `${fmt(losses * 1000, 1)} W` : `${fmt(losses, 2)} kW`}`;
  }

  function showTooltip(event) {
    const target = event.target.closest("[data-bus], [data-line], [data-transformer], [data-neighbourhood]");
    if (!target || !S.results) { hideTooltip(); return; }
    let html;
    if (target.hasAttribute("data-bus")) {
      html = busTooltip(target.getAttribute("data-bus"));
      if (target.classList.contains("gen-marker")) {
        const gens = shownGenerators().filter((g) => g.bus === target.getAttribute("data-bus"));
        html = gens.map((g) => `<strong>${esc(g.name)}</strong>: ${fmt(g.kw)} kW set` +
          (g.preview ? " (preview, not applied)" : `, ${fmt(g.delivered_kW ?? g.kw)} kW delivered`)).join("<br>");
      }
    } else if (target.hasAttribute("data-line")) {
      html = lineTooltip(target.getAttribute("data-line"));
    } else if (target.hasAttribute("data-transformer")) {
      html = transformerTooltip(target.getAttribute("data-transformer"));
    } else {
      const id = Number(target.getAttribute("data-neighbourhood"));
      const nb = S.neighbourhoods.find((n) => n.id === id);
      html = `<strong>Neighbourhood ${id}</strong>${nb ? `<br>${nb.buses.length} buses` : ""}`;
    }
    placeTooltip(event, html);
  }

  /** The tooltip with `html`, beside the pointer and inside the window. */
  function placeTooltip(event, html) {
    const tip = $("tooltip");
    tip.innerHTML = html;
    tip.hidden = false;
    const pad = 14, rect = tip.getBoundingClientRect();
    let x = event.clientX + pad, y = event.clientY + pad;
    if (x + rect.width > window.innerWidth - 4) x = event.clientX - rect.width - pad;
    if (y + rect.height > window.innerHeight - 4) y = event.clientY - rect.height - pad;
    tip.style.left = `${x}px`;
    tip.style.top = `${y}px`;
  }

  function hideTooltip() { $("tooltip").hidden = true; }

  // ------------------------------------------------------------------ generators and neighbourhoods lists
  async function refreshGenerators() {
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

  function renderGeneratorList() {
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

  function fillNeighbourhoodSelect() {
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
    const id = $("nb-select").value;
    for (const g of document.querySelectorAll(".neighbourhood")) g.classList.toggle("active", g.dataset.neighbourhood === id);
  }

  // ------------------------------------------------------------------ running a request from a control
  const FIELD_INPUTS = { bus_name: "gen-bus", phases: "gen-phases", phase: "gen-phase", kw: "gen-kw",
    neighbourhood: "nb-select", factor: "nb-factor", name: "scenario-name" };

  /** Run `task` for one control: one request at a time with the controls locked, and on failure the API's own
   *  message next to that control (`errorEl`) with the field it names marked. */
  async function act(errorEl, task, statusText = "Solving…") {
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

  function lockControls() {
    showBusy();
    for (const b of document.querySelectorAll(".controls button, #scenario-select, #compare-select")) b.disabled = S.busy;
    // The API refuses to delete the default scenario (409): no point offering it.
    if (!S.busy) $("scenario-delete").disabled = S.scenario === "default";
  }

  /** A change from one of the grid controls: applied, or with "Preview first" ticked only previewed (dry run). */
  function change(errorEl, okEl, method, path, body) {
    const preview = $("preview-toggle").checked;
    return act(errorEl, async () => {
      const { data, etag } = await request(method, scoped(path) + (preview ? "?dry_run=true" : ""), body);
      if (preview) showPreview({ method, path, body, etag, action: data.action, okEl }, data.results);
      else await applied(data, etag, okEl);
    });
  }

  /** After the server made a change (or an undo): its results, then what else it changed. */
  async function applied(data, etag, okEl) {
    endPreview();
    S.etag = etag;
    applyResults(data.results, data.action.sequence);
    if (okEl) okEl.textContent = describeAction(data.action);
    await Promise.all([refreshTransformers(), refreshGenerators(), refreshJournal(), refreshScenarios(), refreshDiff()]);
  }

  /** One line per action, as the change's answer and the journal report it; `preview` words it as a proposal. */
  function describeAction(a, preview = false) {
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

  // ------------------------------------------------------------------ preview (dry run)
  /** Show what a change would do, marked as a preview; the scenario itself is untouched until Apply. */
  function showPreview(preview, results) {
    S.preview = preview;
    $("preview-text").textContent = describeAction(preview.action, true);
    $("preview-error").textContent = "";
    setPreviewMarks(true);
    applyResults(results, S.sequence, true);
    renderDiff();
  }

  function setPreviewMarks(on) {
    $("preview-banner").hidden = !on;
    document.body.dataset.preview = String(on);
    for (const badge of document.querySelectorAll("[data-preview-badge]")) badge.hidden = !on;
  }

  function endPreview() {
    if (!S.preview) return false;
    S.preview = null;
    setPreviewMarks(false);
    return true;
  }

  function discardPreview() {
    if (!endPreview()) return;
    $("preview-error").textContent = "";
    applyResults(S.applied.results, S.applied.sequence);
    renderDiff();
    poll(); // polling waits while a preview is shown: catch up now
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

  // ------------------------------------------------------------------ scenarios
  const scenarioById = (id) => S.scenarios.find((s) => s.id === id);
  const scenarioName = (id = S.scenario) => (scenarioById(id) && scenarioById(id).name) || id;
  const compareName = () => (S.compare === "base" ? "the base case" : `“${scenarioName(S.compare)}”`);

  async function refreshScenarios() {
    try {
      S.scenarios = (await api("GET", "/scenarios")).scenarios;
    } catch (_) { return; } // keep the last list; the next poll reads it again
    renderScenarioPicker();
  }

  /** Fill a select with [value, text] options, only when they changed (a poll must not close an open list). */
  function fillSelect(select, options, value) {
    const key = JSON.stringify(options);
    if (select.dataset.key !== key) {
      select.dataset.key = key;
      select.textContent = "";
      for (const [v, text] of options) select.appendChild(new Option(text, v));
    }
    select.value = value;
  }

  function renderScenarioPicker() {
    const count = (n) => `${n} change${n === 1 ? "" : "s"}`;
    fillSelect($("scenario-select"), S.scenarios.map((s) => [s.id, `${s.name || s.id} · ${count(s.changes)}`]), S.scenario);
    const others = S.scenarios.filter((s) => s.id !== S.scenario).map((s) => [s.id, `scenario “${s.name || s.id}”`]);
    fillSelect($("compare-select"), [["", "nothing: show voltages"], ["base", "the base case"], ...others], S.compare);
    const s = scenarioById(S.scenario);
    $("scenario-info").textContent = s ? `id ${s.id} · state #${s.sequence} · created ${clock(s.created_at)}` +
      (s.forked_from ? ` · fork of “${scenarioName(s.forked_from)}”` : "") : "";
    if (!S.busy) $("scenario-delete").disabled = S.scenario === "default";
    $("studies-scenario").textContent = `of “${scenarioName()}”`;
  }

  const clock = (iso) => new Date(iso).toLocaleTimeString("en-GB");

  /** Show scenario `id`: its state, generators, transformers and journal (and the diff, when comparing). */
  async function loadScenario(id) {
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
    applyResults(state.data.results, state.data.sequence);
    renderStudies();
    await refreshDiff();
  }

  function createScenario(from) {
    act($("scenario-error"), async () => {
      const name = $("scenario-name").value.trim();
      const body = name ? { name } : {};
      if (from) body.from = from;
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

  // ------------------------------------------------------------------ journal
  async function refreshJournal() {
    const id = S.scenario;
    try {
      const changes = (await api("GET", scoped("/changes", id))).changes;
      if (id !== S.scenario) return;
      S.journal = changes;
    } catch (_) { return; } // keep the last list; the next change or poll reads it again
    renderJournal();
  }

  /** Newest first; a change an undo took back is struck through. */
  function renderJournal() {
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

  function undo() {
    act($("undo-error"), async () => {
      const { data, etag } = await request("POST", scoped("/undo"), {});
      await applied(data, etag, null);
    }, "Undoing…");
  }

  // ------------------------------------------------------------------ diff view
  async function setCompare(against) {
    if (against && S.showHosting) { S.showHosting = false; renderHostingToggle(); }
    S.compare = against;
    S.diff = null;
    $("compare-error").textContent = "";
    await refreshDiff();
  }

  /** GET …/diff against the compared state; the map shows it as Δ voltage, the diff panel lists the rest. */
  async function refreshDiff() {
    const token = ++S.diffToken, id = S.scenario, against = S.compare;
    if (against) {
      S.loadingDiff = true;
      showBusy();
      try {
        const data = await api("GET", scoped(`/diff?against=${encodeURIComponent(against)}`, id));
        if (token !== S.diffToken) return; // a newer diff is on its way
        S.diff = data;
        S.diffOther = new Map(data.buses.map((r) => [`${r.Bus}.${r.Node}`, r.other_VMag_pu]));
      } catch (error) {
        if (token !== S.diffToken) return;
        $("compare-error").textContent = error.message;
        S.compare = "";
        S.diff = null;
      } finally {
        if (token === S.diffToken) S.loadingDiff = false;
        showBusy();
      }
    } else {
      S.diff = null;
    }
    renderScenarioPicker();
    renderDiff();
    if (S.results) updateMap();
  }

  const DIFF_ROWS = [["Substation", "total_circuit_power_kW", " kW"], ["Load", "total_load_kW", " kW"],
    ["Generation", "total_generation_kW", " kW"], ["Losses", "total_losses_kW", " kW"],
    ["Voltage violations", "voltage_violations", ""], ["Thermal violations", "thermal_violations", ""]];

  function renderDiff() {
    const d = S.diff;
    $("diff-panel").hidden = !d;
    $("layout").classList.toggle("comparing", !!d);
    $("diff-panel").dataset.against = d ? d.against : "";
    if (!d) return;
    $("diff-title").textContent = `“${scenarioName()}” compared with ${compareName()}`;
    $("diff-this-head").textContent = scenarioName();
    $("diff-other-head").textContent = d.against === "base" ? "base case" : scenarioName(d.against);
    $("diff-summary").innerHTML = DIFF_ROWS.map(([label, key, unit]) => {
      const row = d.summary[key], digits = unit ? 1 : 0;
      return `<tr data-key="${key}"><th scope="row">${label}</th><td class="r">${fmt(row.this, digits)}</td>` +
        `<td class="r">${fmt(row.other, digits)}</td><td class="r delta">${signed(row.delta, digits)}${unit}</td></tr>`;
    }).join("");
    for (const kind of ["new", "cleared"]) {
      const list = $(`diff-${kind}`), items = d.violations[kind];
      list.textContent = "";
      for (const v of items) {
        const li = document.createElement("li");
        li.className = `violation-${v.type}`;
        li.dataset.type = v.type;
        li.dataset.element = v.element || "";
        if (v.node != null) li.dataset.node = v.node;
        li.textContent = describeViolation(v);
        list.appendChild(li);
      }
      if (!items.length) list.innerHTML = `<li class="none">none</li>`;
      $(`diff-${kind}-count`).textContent = `(${items.length})`;
    }
    const top = d.buses[0];
    $("diff-note").textContent = `State #${d.sequence} against ${d.against === "base" ? "the base case" : `its state #${d.other_sequence}`}` +
      (top && Math.abs(top.delta_pu) >= 5e-5
        ? ` · largest voltage change: bus ${top.Bus} phase ${PHASE_NAMES[top.Node] || top.Node}, ${signed(top.delta_pu, 4)} pu`
        : " · no voltage differs") +
      (S.preview ? ". The map shows the preview against it; the numbers here are for the applied state." : ".");
  }

  function describeViolation(v) {
    const where = String(v.element || "").replace(/^(\w+)\./, "$1 "); // "Bus.114" → "Bus 114"
    if (v.type === "voltage") {
      return `${where} phase ${PHASE_NAMES[v.node] || v.node}: ${v.value_pu.toFixed(4)} pu, ${v.kind} (limit ${v.limit_pu.toFixed(2)})`;
    }
    if (v.type === "thermal") return `${where}: ${fmt(v.value_pct)} % of its rating`;
    if (v.type === "reverse_power") return `Reverse power at ${where}: ${fmt(v.value_kW)} kW`;
    return `${v.type} ${where}`;
  }

  // ------------------------------------------------------------------ studies (background jobs)
  // POST …/studies/<kind> answers 202 with the job and its Location; GET /jobs/<id> tells its progress and, once
  // done, its result. Each scenario keeps its own last run of each kind, so switching scenarios loses nothing.
  const JOB_POLL_MS = 300;
  const FINISHED = new Set(["done", "failed", "cancelled"]);
  const STUDY_UI = {
    hosting_capacity: { section: "hc-section", form: "hc-form", run: "hc-run", cancel: "hc-cancel", error: "hc-error",
      row: "hc-progress-row", bar: "hc-progress", text: "hc-progress-text", fields: { phases: "hc-phases", step_kw: "hc-step" } },
    time_series: { section: "ts-section", form: "ts-form", run: "ts-run", cancel: "ts-cancel", error: "ts-error",
      row: "ts-progress-row", bar: "ts-progress", text: "ts-progress-text",
      fields: { hours: "ts-hours", start_hour: "ts-start-day", load_shape: "ts-load-shape" } },
  };
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function studySlot(id = S.scenario) {
    if (!S.studies.has(id)) {
      S.studies.set(id, Object.fromEntries(Object.keys(STUDY_UI).map((kind) => [kind, { run: null, error: "", field: null }])));
    }
    return S.studies.get(id);
  }
  const isCurrent = (run) => run.scenario === S.scenario && studySlot(run.scenario)[run.kind].run === run;
  const isActive = (run) => !!run && !run.failure && !FINISHED.has(run.job.status);

  /** A number field as the API wants it: null when empty (the API then says what it expects), else a number. */
  const numberOf = (id) => { const text = $(id).value.trim(); return text === "" ? null : Number(text); };

  const STUDY_BODIES = {
    hosting_capacity: () => ({ buses: ["all"], phases: Number($("hc-phases").value), step_kw: numberOf("hc-step") }),
    time_series: () => {
      const day = numberOf("ts-start-day");
      return { hours: Number($("ts-hours").value), start_hour: day === null ? null : Math.round((day - 1) * 24 * 1e6) / 1e6,
        load_shape: $("ts-load-shape").value, generator_shape: "pv" };
    },
  };

  async function startStudy(kind) {
    const id = S.scenario, entry = studySlot(id)[kind];
    if (isActive(entry.run)) return;
    entry.error = "";
    entry.field = null;
    $(STUDY_UI[kind].run).disabled = true;
    try {
      const { data, location } = await request("POST", scoped(`/studies/${kind}`, id), STUDY_BODIES[kind]());
      entry.run = { kind, scenario: id, url: location || `/jobs/${encodeURIComponent(data.job.id)}`, job: data.job,
        result: null, failure: "", cancelling: false };
      if (kind === "hosting_capacity" && S.showHosting) { S.showHosting = false; if (id === S.scenario) updateMap(); }
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
    if (run.kind === "hosting_capacity" && run.result) {
      await showHosting(true); // the answer to "where does generation fit": on the map straight away
    }
    renderStudy(run.kind);
  }

  async function cancelStudy(kind) {
    const entry = studySlot()[kind], run = entry.run;
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

  function renderStudies() {
    $("studies-scenario").textContent = `of “${scenarioName()}”`;
    for (const kind of Object.keys(STUDY_UI)) renderStudy(kind);
    if (S.results) updateMap();
  }

  function renderStudy(kind) {
    renderStudyProgress(kind);
    if (kind === "hosting_capacity") renderHosting();
    else renderTimeSeries();
  }

  const seconds = (job) => (job.started_at && job.finished_at
    ? (new Date(job.finished_at) - new Date(job.started_at)) / 1000 : null);

  /** Buttons, progress bar, its words and the API's error for one kind of study in the selected scenario. */
  function renderStudyProgress(kind) {
    const ui = STUDY_UI[kind], entry = studySlot()[kind], run = entry.run;
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
    const invalid = entry.field && ui.fields[entry.field];
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

  /** The "this study read an older state" notes, after any change of the scenario. */
  function renderStaleNotes() {
    for (const [kind, id] of [["hosting_capacity", "hc-stale"], ["time_series", "ts-stale"]]) {
      const run = studySlot()[kind].run, result = run && run.result, node = $(id);
      node.hidden = !result || result.sequence === S.sequence;
      node.textContent = node.hidden ? "" : `This study read state #${result.sequence}; the scenario is now at state ` +
        `#${S.sequence}. Run it again for the current state.`;
    }
  }

  // ---- hosting capacity: colour scale, map, legend, tooltip and table
  // A sequential scale (viridis: dark purple for the least capacity, yellow for the most), on a log scale since the
  // capacities run from a few hundred kW on 1-phase laterals to megawatts near the substation. It is neither of
  // the two diverging voltage scales, so it is not read as voltages; buses that cannot host one are grey.
  const HC_STOPS = [[68, 1, 84], [71, 45, 123], [59, 82, 139], [44, 114, 142], [33, 145, 140], [40, 174, 128],
    [94, 201, 98], [173, 220, 48], [253, 231, 37]];
  const NO_HOSTING_COLOUR = "rgb(204, 204, 204)";

  /** Where `kw` sits on the log scale from `lo` (0) to `hi` (1); at or below `lo` (0 kW too) is 0. */
  function hostingPosition(kw, lo, hi) {
    if (!(hi > lo)) return 0.5;
    if (!(kw > lo)) return 0;
    return Math.min(1, (Math.log(kw) - Math.log(lo)) / (Math.log(hi) - Math.log(lo)));
  }

  /** Fill colour of a bus that hosts `kw`, on the scale from `lo` to `hi` kW, as "rgb(r, g, b)". */
  function hostingColour(kw, lo, hi) {
    const t = hostingPosition(Number(kw), lo, hi) * (HC_STOPS.length - 1);
    const i = Math.min(HC_STOPS.length - 2, Math.floor(t)), f = t - i;
    const [r, g, b] = HC_STOPS[i].map((c, k) => Math.round(c + (HC_STOPS[i + 1][k] - c) * f));
    return `rgb(${r}, ${g}, ${b})`;
  }
  window.hostingColour = hostingColour;

  /** The scale's ends: the smallest capacity above zero and the largest. */
  function hostingDomain(rows) {
    const kws = rows.map((r) => r.hosting_capacity_kW).filter((kw) => kw != null);
    const positive = kws.filter((kw) => kw > 0);
    const lo = positive.length ? Math.min(...positive) : 1;
    return { lo, hi: kws.length ? Math.max(lo, ...kws) : lo };
  }

  const hostingResult = () => { const run = studySlot().hosting_capacity.run; return run && run.result; };
  const shownHosting = () => (S.showHosting ? hostingResult() : null);

  const LIMIT_WORDS = { voltage_high: "voltage high", voltage_low: "voltage low", thermal: "thermal",
    reverse_power: "reverse power", max_kw: "no limit reached", not_converged: "no convergence" };
  const kwText = (kw) => `${fmt(kw, Number.isInteger(kw) ? 0 : 1)} kW`;

  /** What bound a bus, in words and numbers: "thermal, Line.l117 at 100.2 %". */
  function limitText(bound) {
    if (!bound) return "";
    const words = LIMIT_WORDS[bound.kind] || bound.kind;
    switch (bound.kind) {
      case "thermal": return `${words}, ${bound.element} at ${fmt(bound.value, 1)} %`;
      case "voltage_high": case "voltage_low": return `${words}, node ${bound.element} at ${Number(bound.value).toFixed(4)} pu`;
      case "reverse_power": return `${words}, ${bound.element} at ${fmt(bound.value, 1)} kW`;
      case "max_kw": return `${words}: the study's largest size`;
      case "not_converged": return `${words}: the power flow failed at ${kwText(bound.value)}`;
      default: return `${words}${bound.element ? `, ${bound.element}` : ""}`;
    }
  }

  /** "67: 4,210 kW — thermal, Line.l117 at 100.2 %", or why the bus cannot host a generator. */
  function hostingText(row) {
    if (row.hosting_capacity_kW == null) return `${row.bus}: cannot host a generator — ${row.reason || "no capacity"}`;
    return `${row.bus}: ${kwText(row.hosting_capacity_kW)} — ${limitText(row.limited_by)}`;
  }

  function hostingTooltip(name, result) {
    const row = result.buses.find((r) => r.bus === name);
    if (!row) return `<strong>Bus ${esc(name)}</strong><br>not in this study`;
    const bus = S.bus.get(name), phases = (row.nodes || []).map((n) => PHASE_NAMES[n] || n).join("");
    return `<strong class="hc-tip">${esc(hostingText(row))}</strong>` +
      (row.phases ? `<br>${row.phases}-phase generator on ${phases ? `phase${phases.length > 1 ? "s" : ""} ${phases}` : "its phases"}` +
        ` · ${row.trials} trial${row.trials === 1 ? "" : "s"}` : "") +
      (bus && bus.neighbourhood != null ? `<br>neighbourhood N${bus.neighbourhood}` : "") +
      `<br>study of state #${result.sequence} · ${kwText(result.criteria.step_kw)} steps`;
  }

  async function showHosting(on) {
    S.showHosting = on && !!hostingResult();
    renderHostingToggle();
    if (S.showHosting && S.compare) await setCompare(""); // redraws the map too
    else if (S.results) updateMap();
    if (S.showHosting && S.selected) renderBusDetails();
  }

  function renderHostingToggle() {
    $("hc-show").hidden = S.showHosting || !hostingResult();
  }

  function renderColouringNote() {
    const hosting = shownHosting();
    $("colouring-note").hidden = !hosting;
    $("colouring-text").textContent = hosting
      ? `Buses coloured by hosting capacity: the study of state #${hosting.sequence} of “${scenarioName()}”.` : "";
  }

  /** 1-2-5 steps between the ends of the log scale, for the legend's ticks. */
  function logTicks(lo, hi) {
    const ticks = [];
    for (let e = Math.floor(Math.log10(Math.max(lo, 1e-6))); 10 ** e <= hi; e++) {
      for (const m of [1, 2, 5]) { const v = m * 10 ** e; if (v > lo && v < hi) ticks.push(v); }
    }
    return ticks;
  }

  function drawHostingLegend(lv) {
    const result = shownHosting(), { lo, hi } = S.hcScale;
    const W = 430, x0 = 14, x1 = W - 14, barY = 24, barH = 14;
    const X = (kw) => x0 + hostingPosition(kw, lo, hi) * (x1 - x0);
    lv.setAttribute("aria-label", `Legend: bus colour by hosting capacity, ${kwText(lo)} to ${kwText(hi)} on a log scale; grey: cannot host`);
    const grad = el("linearGradient", { id: "hcgrad", x1: "0", x2: "1", y1: "0", y2: "0" }, el("defs", {}, lv));
    HC_STOPS.forEach(([r, g, b], i) => el("stop", { offset: `${(i / (HC_STOPS.length - 1)) * 100}%`, "stop-color": `rgb(${r}, ${g}, ${b})` }, grad));
    el("text", { class: "legend-title", x: x0, y: 13 }, lv, `Bus colour: hosting capacity (kW, log scale), state #${result.sequence}`);
    el("rect", { class: "hc-bar", x: x0, y: barY, width: x1 - x0, height: barH, fill: "url(#hcgrad)", stroke: "#888", "stroke-width": 0.5 }, lv);
    const label = (kw) => (kw >= 1000 ? `${fmt(kw / 1000, kw % 1000 ? 1 : 0)} MW` : `${fmt(kw, kw % 1 ? 1 : 0)} kW`);
    // Each label's extent (about 6.5 px a character at 11 px), so that no tick label runs into another.
    const span = (x, text, anchor) => {
      const w = 6.5 * text.length + 6;
      return anchor === "start" ? [x, x + w] : anchor === "end" ? [x - w, x] : [x - w / 2, x + w / 2];
    };
    const placed = [];
    for (const [kw, anchor] of [[lo, "start"], [hi, "end"]]) {
      el("line", { class: "limit-tick", x1: X(kw), x2: X(kw), y1: barY - 3, y2: barY + barH + 4 }, lv);
      el("text", { class: "tick limit-text", x: X(kw), y: barY + barH + 16, "text-anchor": anchor }, lv, label(kw));
      placed.push(span(X(kw), label(kw), anchor));
    }
    for (const kw of logTicks(lo, hi)) {
      const x = X(kw), [a, b] = span(x, label(kw), "middle");
      if (placed.some(([c, d]) => a < d && c < b)) continue;
      placed.push([a, b]);
      el("line", { class: "tick-line", x1: x, x2: x, y1: barY, y2: barY + barH + 4 }, lv);
      el("text", { class: "tick", x, y: barY + barH + 16, "text-anchor": "middle" }, lv, label(kw));
    }
    el("text", { class: "tick", x: x0, y: barY + barH + 30 }, lv, "← least (limits first)");
    el("text", { class: "tick", x: x1, y: barY + barH + 30, "text-anchor": "end" }, lv, "most →");
    el("circle", { cx: W / 2 - 46, cy: barY + barH + 26, r: 5, fill: NO_HOSTING_COLOUR, stroke: "#3d4650" }, lv);
    el("text", { class: "tick", x: W / 2 - 37, y: barY + barH + 30 }, lv, "cannot host a generator");
  }

  const SORTS = {
    bus: (a, b) => a.bus.localeCompare(b.bus, "en", { numeric: true }),
    phases: (a, b) => (a.phases ?? 0) - (b.phases ?? 0),
    kw: (a, b) => a.hosting_capacity_kW - b.hosting_capacity_kW,
    kind: (a, b) => (LIMIT_WORDS[a.limited_by.kind] || "").localeCompare(LIMIT_WORDS[b.limited_by.kind] || ""),
  };

  /** The rows in the table's order: by the chosen column, ties by capacity then bus; buses that cannot host last. */
  function sortedHostingRows(rows) {
    const { key, dir } = S.hcSort;
    const able = rows.filter((r) => r.hosting_capacity_kW != null), unable = rows.filter((r) => r.hosting_capacity_kW == null);
    able.sort((a, b) => dir * SORTS[key](a, b) || SORTS.kw(a, b) || SORTS.bus(a, b));
    unable.sort(SORTS.bus);
    return [...able, ...unable];
  }

  function renderHosting() {
    renderHostingToggle();
    const run = studySlot().hosting_capacity.run, result = run && run.result;
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

    // The figures beside the table: the extremes, the median and what bound how many buses.
    const able = result.buses.filter((r) => r.hosting_capacity_kW != null).sort(SORTS.kw);
    const median = able.length ? able[Math.floor((able.length - 1) / 2)].hosting_capacity_kW : null;
    const counts = new Map();
    for (const r of able) counts.set(r.limited_by.kind, (counts.get(r.limited_by.kind) || 0) + 1);
    const figures = [["Buses", `${result.buses.length} (${able.length} can host)`]];
    if (able.length) {
      const least = able.filter((r) => r.hosting_capacity_kW === able[0].hosting_capacity_kW);
      figures.push(["Least", `${kwText(able[0].hosting_capacity_kW)} at ` +
        `${least.slice(0, 4).map((r) => r.bus).join(", ")}${least.length > 4 ? ` and ${least.length - 4} more` : ""}`],
        ["Median", kwText(median)], ["Most", kwText(hi)]);
    }
    for (const [kind, n] of [...counts].sort((a, b) => b[1] - a[1])) figures.push([`Limited by ${LIMIT_WORDS[kind] || kind}`, `${n} bus${n === 1 ? "" : "es"}`]);
    const unable = result.buses.length - able.length;
    if (unable) figures.push(["Cannot host", `${unable} bus${unable === 1 ? "" : "es"}`]);
    $("hc-figures").innerHTML = figures.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");

    for (const th of document.querySelectorAll("#hc-table th[data-sort]")) {
      th.setAttribute("aria-sort", th.dataset.sort === S.hcSort.key ? (S.hcSort.dir > 0 ? "ascending" : "descending") : "none");
    }
    $("hc-rows").innerHTML = sortedHostingRows(result.buses).map((r) => {
      const kw = r.hosting_capacity_kW, b = r.limited_by, sel = r.bus === S.selected ? " selected" : "";
      if (kw == null) {
        return `<tr class="cannot${sel}" data-bus="${esc(r.bus)}" data-kw=""><th scope="row"><span class="sw" style="background:${NO_HOSTING_COLOUR}"></span>${esc(r.bus)}</th>` +
          `<td></td><td class="r">—</td><td colspan="3">cannot host: ${esc(r.reason || "")}</td></tr>`;
      }
      const at = !b ? "" : b.kind === "thermal" ? `${fmt(b.value, 1)} %` : b.kind.startsWith("voltage") ? `${Number(b.value).toFixed(4)} pu`
        : b.kind === "reverse_power" ? `${fmt(b.value, 1)} kW` : "";
      return `<tr class="${sel.trim()}" data-bus="${esc(r.bus)}" data-kw="${kw}" data-kind="${esc(b ? b.kind : "")}">` +
        `<th scope="row"><span class="sw" style="background:${hostingColour(kw, lo, hi)}"></span>${esc(r.bus)}</th>` +
        `<td>${r.phases ?? ""}</td><td class="r">${fmt(kw, Number.isInteger(kw) ? 0 : 1)}</td>` +
        `<td>${esc(b ? LIMIT_WORDS[b.kind] || b.kind : "")}</td><td class="where">${esc(b && b.element ? b.element : "")}</td>` +
        `<td class="r">${at}</td></tr>`;
    }).join("");
    if (S.results) updateMap();
  }

  // ---- time series: totals and two charts over the hours
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const MONTH_START_DAY = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334]; // a year of 365 days, as the shapes
  const dayLabel = (hourOfYear) => {
    const day = Math.floor(hourOfYear / 24) % 365;
    let m = 11;
    while (MONTH_START_DAY[m] > day) m--;
    return `${day - MONTH_START_DAY[m] + 1} ${MONTHS[m]}`;
  };
  const clockLabel = (hourOfYear) => `${String(hourOfYear % 24).padStart(2, "0")}:00`;
  const hourLabel = (hourOfYear) => `${dayLabel(hourOfYear)} ${clockLabel(hourOfYear)}`;

  const TS_TOTALS = [["energy_imported_kWh", "Energy imported", "kWh"], ["energy_exported_kWh", "Energy exported", "kWh"],
    ["generation_kWh", "Generation", "kWh"], ["losses_kWh", "Losses", "kWh"],
    ["hours_with_voltage_violations", "Hours with voltage violations", ""],
    ["hours_with_thermal_violations", "Hours with thermal violations", ""], ["tap_changes", "Tap changes", ""]];
  const TS_SERIES = [["substation_kW", "Substation", "#1f5fa8"], ["generation_kW", "Generation", "#1a9850"],
    ["losses_kW", "Losses (right axis)", "#d95f02"]];

  function renderStartHint() {
    const day = numberOf("ts-start-day");
    $("ts-start-hint").textContent = Number.isFinite(day) && day >= 1 && day < 366
      ? `Starts at hour ${fmt((day - 1) * 24, 0)} of the year: ${dayLabel(Math.floor(day - 1) * 24)}, 00:00.` : "";
  }

  function renderTimeSeries() {
    const run = studySlot().time_series.run, result = run && run.result;
    $("ts-results").hidden = !result;
    renderStaleNotes();
    if (!result) return;
    const hours = result.hours, spec = result.spec || {};
    $("ts-csv").setAttribute("href", `/jobs/${encodeURIComponent(run.job.id)}/result?format=csv`);
    $("ts-csv").setAttribute("download", `time_series-${run.job.id}.csv`);
    const first = hours[0], last = hours[hours.length - 1];
    const shape = (s) => (Array.isArray(s) ? "custom" : s);
    $("ts-note").textContent = `State #${result.sequence} of “${scenarioName(result.scenario)}” · ${fmt(hours.length, 0)} hour` +
      `${hours.length === 1 ? "" : "s"}${first ? `, ${hourLabel(first.hour_of_year)} to ${hourLabel(last.hour_of_year)}` : ""} · ` +
      `${shape(spec.load_shape)} load, generators following the ${shape(spec.generator_shape)} shape` +
      `${spec.neighbourhood_shapes && Object.keys(spec.neighbourhood_shapes).length ? ", some neighbourhoods their own" : ""}.`;
    const t = result.totals;
    $("ts-totals").innerHTML = TS_TOTALS.map(([key, label, unit]) => {
      const v = t[key], bad = !unit && key.startsWith("hours_") && v > 0;
      return `<div><dt>${label}</dt><dd id="ts-total-${key}" data-value="${v}"${bad ? ' class="bad"' : ""}>` +
        `${fmt(v, 0)}${unit ? ` ${unit}` : ""}</dd></div>`;
    }).join("");
    drawPowerChart(hours);
    drawVoltageChart(hours);
  }

  /** Round ticks covering lo..hi (about `count` of them): { lo, hi, ticks }. */
  function niceTicks(lo, hi, count = 5) {
    if (!(hi > lo)) { hi = lo + 1; }
    const raw = (hi - lo) / count, mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    const a = Math.floor(lo / step + 1e-9) * step, b = Math.ceil(hi / step - 1e-9) * step, ticks = [];
    for (let v = a; v <= b + step / 2; v += step) ticks.push(Math.abs(v) < step / 1e6 ? 0 : v);
    return { lo: a, hi: b, ticks, step };
  }

  /** Decimals that show every multiple of `step` exactly (2.5 → 1). */
  function stepDigits(step) {
    let digits = 0;
    while (digits < 4 && Math.abs(step * 10 ** digits - Math.round(step * 10 ** digits)) > 1e-9) digits++;
    return digits;
  }

  /** The hour ticks for `hours` (their hour of the year): clock times for a day, dates for a week, months for a year. */
  function hourTicks(hours) {
    const n = hours.length, ticks = [];
    if (n > 24 * 45) {
      const starts = new Set(MONTH_START_DAY.map((d) => d * 24));
      hours.forEach((h, i) => { if (starts.has(h.hour_of_year)) ticks.push([i, MONTHS[MONTH_START_DAY.indexOf(h.hour_of_year / 24)]]); });
      return ticks;
    }
    const step = [1, 3, 6, 12, 24, 48, 168, 336].find((s) => n / s <= 9) || 720;
    hours.forEach((h, i) => {
      const hy = h.hour_of_year;
      if (step < 24 ? hy % step === 0 : hy % 24 === 0 && (hy / 24) % (step / 24) === 0) {
        ticks.push([i, step < 24 && hy % 24 !== 0 ? clockLabel(hy) : dayLabel(hy)]);
      }
    });
    return ticks;
  }

  /** Axes and a time axis; returns the X and the plot box. */
  function chartFrame(svg, hours, H, M) {
    svg.textContent = "";
    const W = 1000, n = hours.length;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const X = (i) => M.l + (n > 1 ? i / (n - 1) : 0.5) * (W - M.l - M.r);
    const axes = el("g", { class: "axes" }, svg);
    for (const [i, text] of hourTicks(hours)) {
      el("line", { class: "grid", x1: X(i), x2: X(i), y1: M.t, y2: H - M.b }, axes);
      el("text", { class: "tick", x: X(i), y: H - M.b + 15, "text-anchor": "middle" }, axes, text);
    }
    return { W, X, axes };
  }

  /** What a chart plots: every hour, or for more than a month of hours one point per day (its mean, and its range
   *  as a band; for the voltages the day's extremes), which a 1000-pixel chart can show. */
  const SERIES_KEYS = ["substation_kW", "generation_kW", "losses_kW", "load_kW", "min_voltage_pu", "max_voltage_pu"];
  function chartPoints(hours) {
    if (hours.length <= 24 * 31) {
      return { daily: false, points: hours.map((h, i) => ({ i, hours: [h],
        v: Object.fromEntries(SERIES_KEYS.map((k) => [k, h[k]])), lo: {}, hi: {} })) };
    }
    const points = [];
    for (let start = 0; start < hours.length; start += 24) {
      const day = hours.slice(start, start + 24), v = {}, lo = {}, hi = {};
      for (const k of SERIES_KEYS) {
        const values = day.map((h) => h[k]);
        lo[k] = Math.min(...values);
        hi[k] = Math.max(...values);
        v[k] = values.reduce((s, x) => s + x, 0) / values.length;
      }
      v.min_voltage_pu = lo.min_voltage_pu; // the voltages: the day's lowest and highest, not means
      v.max_voltage_pu = hi.max_voltage_pu;
      points.push({ i: start + (day.length - 1) / 2, hours: day, v, lo, hi });
    }
    return { daily: true, points };
  }

  /** Pointer over a chart: a cursor at the nearest point and its numbers in the tooltip. */
  function chartHover(svg, plotted, M, W, H, X) {
    const cursor = el("line", { class: "cursor", x1: 0, x2: 0, y1: M.t, y2: H - M.b, visibility: "hidden" }, svg);
    const overlay = el("rect", { class: "overlay", x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b }, svg);
    const { daily, points } = plotted;
    overlay.addEventListener("mousemove", (event) => {
      const box = svg.getBoundingClientRect(), x = (event.clientX - box.left) * W / box.width;
      let best = points[0];
      for (const p of points) if (Math.abs(X(p.i) - x) < Math.abs(X(best.i) - x)) best = p;
      const p = best, h = p.hours[0], v = p.v;
      cursor.setAttribute("x1", X(p.i));
      cursor.setAttribute("x2", X(p.i));
      cursor.setAttribute("visibility", "visible");
      const range = (k, digits = 1) => (daily ? ` (${fmt(p.lo[k], digits)} to ${fmt(p.hi[k], digits)})` : "");
      const worst = (k) => p.hours.reduce((s, r) => s + (r[k] > 0 ? 1 : 0), 0);
      placeTooltip(event, (daily
        ? `<strong>${esc(dayLabel(h.hour_of_year))}</strong> · daily mean (range)<br>`
        : `<strong>${esc(hourLabel(h.hour_of_year))}</strong> · hour ${h.hour_of_year} of the year<br>`) +
        `substation ${fmt(v.substation_kW)} kW${range("substation_kW")}<br>load ${fmt(v.load_kW)} kW${range("load_kW")}<br>` +
        `generation ${fmt(v.generation_kW)} kW${range("generation_kW")}<br>losses ${fmt(v.losses_kW, 2)} kW${range("losses_kW", 2)}<br>` +
        `voltage ${v.min_voltage_pu.toFixed(4)} – ${v.max_voltage_pu.toFixed(4)} pu` +
        (worst("voltage_violations") || worst("thermal_violations")
          ? `<br>${daily ? "hours with " : ""}violations: ${daily ? `${worst("voltage_violations")} voltage · ${worst("thermal_violations")} thermal`
            : `${h.voltage_violations} voltage · ${h.thermal_violations} thermal`}` : "") +
        (p.hours.some((r) => r.reverse_power) ? `<br>reverse power${daily ? " in some hours" : ""}` : ""));
    });
    overlay.addEventListener("mouseleave", () => { cursor.setAttribute("visibility", "hidden"); hideTooltip(); });
  }

  const pointsOf = (points, key, X, Y) => points.map((p) => `${X(p.i).toFixed(1)},${Y(p.v[key]).toFixed(1)}`).join(" ");
  const bandOf = (points, lo, hi, X, Y) => [...points.map((p) => `${X(p.i).toFixed(1)},${Y(hi(p)).toFixed(1)}`),
    ...points.map((p) => `${X(p.i).toFixed(1)},${Y(lo(p)).toFixed(1)}`).reverse()].join(" ");

  function drawPowerChart(hours) {
    const svg = $("ts-power"), H = 300, M = { l: 66, r: 66, t: 34, b: 40 };
    const { W, X, axes } = chartFrame(svg, hours, H, M);
    const plotted = chartPoints(hours), { daily, points } = plotted;
    const kws = points.flatMap((p) => [p.v.substation_kW, p.v.generation_kW,
      ...(daily ? [p.lo.substation_kW, p.hi.substation_kW, p.hi.generation_kW] : [])]);
    const left = niceTicks(Math.min(0, ...kws), Math.max(0, ...kws));
    const Y = (v) => M.t + (left.hi - v) / (left.hi - left.lo) * (H - M.t - M.b);
    for (const v of left.ticks) {
      el("line", { class: v === 0 ? "zero" : "grid", x1: M.l, x2: W - M.r, y1: Y(v), y2: Y(v) }, axes);
      el("text", { class: "tick", x: M.l - 6, y: Y(v) + 4, "text-anchor": "end" }, axes, fmt(v, stepDigits(left.step)));
    }
    // Losses on the right axis: its 0 on the power's 0, round steps on the same grid lines above it.
    const up = Math.max(1, Math.round(left.hi / left.step));
    const lossMax = Math.max(1e-9, ...points.map((p) => (daily ? p.hi.losses_kW : p.v.losses_kW)));
    const mag = 10 ** Math.floor(Math.log10(lossMax / up));
    const lossStep = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st * up >= lossMax - 1e-12);
    const YR = (v) => Y(v / lossStep * left.step);
    const lossColour = TS_SERIES[2][2];
    for (let j = 0; j <= up; j++) {
      el("text", { class: "tick", x: W - M.r + 6, y: YR(j * lossStep) + 4, style: `fill:${lossColour}` }, axes,
        fmt(j * lossStep, stepDigits(lossStep)));
    }
    const mid = (M.t + H - M.b) / 2;
    el("text", { class: "axis-title", x: 14, y: mid, "text-anchor": "middle", transform: `rotate(-90 14 ${mid})` }, axes,
      daily ? "Power (kW), daily mean" : "Power (kW)");
    el("text", { class: "axis-title", x: W - 10, y: mid, "text-anchor": "middle", transform: `rotate(90 ${W - 10} ${mid})`,
      style: `fill:${lossColour}` }, axes, "Losses (kW)");
    const width = daily ? 1.3 : 2;
    for (const [key, , colour] of TS_SERIES) {
      const y = key === "losses_kW" ? YR : Y;
      if (daily) {
        el("polygon", { class: "band", "data-band": key, fill: colour, "fill-opacity": 0.16,
          points: bandOf(points, (p) => p.lo[key], (p) => p.hi[key], X, y) }, svg);
      }
      el("polyline", { class: `series series-${key}`, "data-series": key, "data-points": points.length, stroke: colour,
        "stroke-width": width, points: pointsOf(points, key, X, y) }, svg);
    }
    const lg = el("g", { class: "chart-legend", transform: `translate(${M.l}, 14)` }, svg);
    let x = 0;
    for (const [, label, colour] of TS_SERIES) {
      el("line", { x1: x, x2: x + 22, y1: 0, y2: 0, stroke: colour, "stroke-width": 3 }, lg);
      el("text", { x: x + 28, y: 4 }, lg, label);
      x += 40 + label.length * 7;
    }
    el("text", { x, y: 4 }, lg, daily ? "lines: daily means · bands: each day's range · below 0: power back to the grid"
      : "below 0: power flows back to the grid");
    chartHover(svg, plotted, M, W, H, X);
  }

  function drawVoltageChart(hours) {
    const svg = $("ts-voltage"), H = 210, M = { l: 66, r: 66, t: 30, b: 40 };
    const { W, X, axes } = chartFrame(svg, hours, H, M);
    const plotted = chartPoints(hours), { daily, points } = plotted;
    const [lo, hi] = S.limits;
    const vMin = Math.min(...points.map((p) => p.v.min_voltage_pu)), vMax = Math.max(...points.map((p) => p.v.max_voltage_pu));
    const yMin = Math.min(lo - 0.01, Math.floor((vMin - 0.005) * 100) / 100);
    const yMax = Math.max(hi + 0.01, Math.ceil((vMax + 0.005) * 100) / 100);
    const Y = (v) => M.t + (yMax - v) / (yMax - yMin) * (H - M.t - M.b);
    const step = yMax - yMin > 0.12 ? 0.02 : 0.01;
    for (let v = Math.ceil(yMin / step - 1e-9) * step; v <= yMax + 1e-9; v += step) {
      el("line", { class: "grid", x1: M.l, x2: W - M.r, y1: Y(v), y2: Y(v) }, axes);
      el("text", { class: "tick", x: M.l - 6, y: Y(v) + 4, "text-anchor": "end" }, axes, v.toFixed(2));
    }
    const mid = (M.t + H - M.b) / 2;
    el("text", { class: "axis-title", x: 14, y: mid, "text-anchor": "middle", transform: `rotate(-90 14 ${mid})` }, axes, "Voltage (pu)");
    el("polygon", { class: "band", "data-band": "voltage", fill: "#92c5de", "fill-opacity": 0.45,
      points: bandOf(points, (p) => p.v.min_voltage_pu, (p) => p.v.max_voltage_pu, X, Y) }, svg);
    const width = daily ? 1.3 : 1.8;
    for (const [key, colour] of [["max_voltage_pu", "#b2182b"], ["min_voltage_pu", "#2166ac"]]) {
      el("polyline", { class: `series series-${key}`, "data-series": key, "data-points": points.length, stroke: colour,
        "stroke-width": width, points: pointsOf(points, key, X, Y) }, svg);
    }
    for (const limit of [lo, hi]) {
      el("line", { class: "limit", x1: M.l, x2: W - M.r, y1: Y(limit), y2: Y(limit) }, svg);
      el("text", { class: "limit-label", x: W - M.r - 4, y: Y(limit) + (limit < 1 ? 14 : -5), "text-anchor": "end" }, svg,
        `${limit.toFixed(2)} pu limit`);
    }
    const lg = el("g", { class: "chart-legend", transform: `translate(${M.l}, 12)` }, svg);
    el("rect", { x: 0, y: -6, width: 22, height: 12, fill: "#92c5de", "fill-opacity": 0.45 }, lg);
    el("text", { x: 28, y: 4 }, lg, daily ? "each day, every node's voltage lies in the band:" : "every node's voltage lies in the band:");
    let x = daily ? 330 : 270;
    for (const [label, colour] of [["highest", "#b2182b"], ["lowest", "#2166ac"]]) {
      el("line", { x1: x, x2: x + 22, y1: 0, y2: 0, stroke: colour, "stroke-width": 3 }, lg);
      el("text", { x: x + 28, y: 4 }, lg, label);
      x += 100;
    }
    el("line", { class: "limit", x1: x, x2: x + 22, y1: 0, y2: 0 }, lg);
    el("text", { x: x + 28, y: 4 }, lg, `limits ${lo.toFixed(2)} / ${hi.toFixed(2)} pu`);
    chartHover(svg, plotted, M, W, H, X);
  }

  function wireStudies() {
    for (const kind of Object.keys(STUDY_UI)) {
      const ui = STUDY_UI[kind];
      $(ui.form).addEventListener("submit", (event) => { event.preventDefault(); startStudy(kind); });
      $(ui.cancel).addEventListener("click", () => cancelStudy(kind));
    }
    $("hc-show").addEventListener("click", () => showHosting(true));
    $("hc-map-off").addEventListener("click", () => showHosting(false));
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
    $("ts-start-day").addEventListener("input", renderStartHint);
    renderStartHint();
  }

  // ------------------------------------------------------------------ wiring
  function wireControls() {
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
    $("preview-discard").addEventListener("click", discardPreview);
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

    const toggle = (id, cls) => {
      const box = $(id);
      const apply = () => $("map").classList.toggle(cls, !box.checked);
      box.addEventListener("change", apply);
      apply();
    };
    toggle("toggle-neighbourhoods", "hide-neighbourhoods");
    toggle("toggle-generators", "hide-generators");
    toggle("toggle-labels", "hide-labels");
    $("key-form").addEventListener("submit", (event) => event.preventDefault());
    const key = $("api-key");
    key.value = sessionStorage.getItem("ieee123-api-key") || "";
    key.addEventListener("input", () => sessionStorage.setItem("ieee123-api-key", key.value.trim()));
  }

  /** body[data-busy] is "true" while a change or a refresh is under way (tests wait on it). */
  function showBusy() {
    document.body.dataset.busy = String(S.busy || S.refreshing || !!S.loadingDiff);
  }

  // ------------------------------------------------------------------ polling and start
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
        applyResults(answer.data.results, answer.data.sequence);
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

  async function start() {
    wireControls();
    wireStudies();
    try {
      // The scenario in the address (#scenario=<id>) if it still exists, else the default one.
      S.scenarios = (await api("GET", "/scenarios")).scenarios;
      const wanted = new URLSearchParams(location.hash.slice(1)).get("scenario");
      if (wanted && scenarioById(wanted)) S.scenario = wanted;
      const [buses, state, xf, nbs] = await Promise.all([api("GET", scoped("/buses")), request("GET", scoped("/state")),
        api("GET", scoped("/transformers")).catch(() => ({ transformers: [] })),
        api("GET", scoped("/neighbourhoods")).catch(() => ({ neighbourhoods: [] }))]);
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
      applyResults(state.data.results, state.data.sequence);
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
})();
