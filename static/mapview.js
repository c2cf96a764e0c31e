// The feeder map's canvas: a scene (buses, lines, transformers, neighbourhoods in map units) drawn at a view (zoom
// and pan, by wheel and drag), what is under the pointer, and the bus names placed where they fit. Canvas, not SVG:
// on the 8500-node feeder SVG's ~40,000 elements took 160–700 ms a frame to pan (docs/dashboard.md).

const GRID = 24;              // map units per cell of the hit-test grid
const MAX_ZOOM = 96;          // times the fitted view
import { FONT, placeLabels } from "./maplabels.js";

const NB_FONT = "bold 12px system-ui, sans-serif";
export const ACCENT = "#1f5fa8";

/** A uniform grid over map units: each cell lists the points in it and the wires (a to b) through it or beside it. */
function makeGrid(items, ends) {
  const cells = new Map();
  items.forEach((item, i) => {
    const [a, b] = ends(item), keys = new Set();
    const steps = Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1]) / (GRID / 2)); // along a wire, every half cell
    for (let s = 0; s <= steps; s++) {
      const t = steps ? s / steps : 0, cx = Math.floor((a[0] + t * (b[0] - a[0])) / GRID), cy = Math.floor((a[1] + t * (b[1] - a[1])) / GRID);
      const pad = steps ? 1 : 0; // a wire also in the cells around it, so that no corner it clips is missed
      for (let dx = -pad; dx <= pad; dx++) for (let dy = -pad; dy <= pad; dy++) keys.add((cx + dx) * 65536 + cy + dy);
    }
    for (const key of keys) {
      if (!cells.has(key)) cells.set(key, []);
      cells.get(key).push(i);
    }
  });
  return (x0, y0, x1, y1) => {
    const found = new Set();
    for (let cx = Math.floor(x0 / GRID); cx <= Math.floor(x1 / GRID); cx++) {
      for (let cy = Math.floor(y0 / GRID); cy <= Math.floor(y1 / GRID); cy++) for (const i of cells.get(cx * 65536 + cy) || []) found.add(i);
    }
    return found;
  };
}

/** Distance from point p to segment a–b, all [x, y]. */
function segmentDistance(p, a, b) {
  const dx = b[0] - a[0], dy = b[1] - a[1], len2 = dx * dx + dy * dy;
  const t = len2 ? Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2)) : 0;
  return Math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy);
}

const median = (values) => { const s = [...values].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : 0; };

/**
 * The view of one scene on `box` (a positioned element holding two canvases, the picture and the pointer's layer).
 * `hooks`: hover(event, hit), leave(), click(hit), drawn() after each picture.
 */
export function createMapView(box, hooks) {
  const base = box.querySelector("canvas.map-base"), top = box.querySelector("canvas.map-top");
  const view = { k: 1, tx: 0, ty: 0, fitK: 1, width: 0, height: 0, scene: null, hovered: null, labels: [], nbBoxes: [],
    frames: 0, colourings: -1, colouredAt: [], drawMs: [], pending: false, busGrid: null, wireGrid: null, widths: new Map(), spacing: 1 };

  view.toScreen = ([x, y]) => [x * view.k + view.tx, y * view.k + view.ty];
  view.toMap = (sx, sy) => [(sx - view.tx) / view.k, (sy - view.ty) / view.k];
  /** How much detail fits: 1 when a typical line is 25 px long or more, down to 0.3 on a dense overview. */
  view.detail = () => Math.max(0.3, Math.min(1, view.spacing * view.k / 25));
  view.radius = () => 5.5 * view.detail();
  /** Neighbourhood bands: 22 map units wide, narrower on a dense feeder, 6 to 26 px. */
  view.bandWidth = () => Math.max(6, Math.min(26, Math.min(22, view.spacing) * view.k));
  view.shown = (layer) => !box.classList.contains(`hide-${layer}`);

  /** A new scene: index it, size the canvases and fit it in. */
  view.setScene = (scene) => {
    view.scene = scene;
    view.labelKey = null;
    view.busGrid = makeGrid(scene.buses, (b) => [[b.x, b.y], [b.x, b.y]]);
    const wires = [...scene.lines, ...scene.transformers];
    view.wireGrid = makeGrid(wires, (w) => [w.a, w.b]);
    view.wires = wires;
    view.spacing = median(scene.lines.map((l) => Math.hypot(l.b[0] - l.a[0], l.b[1] - l.a[1])).filter((d) => d > 0)) || 20;
    const ctx = base.getContext("2d");
    ctx.font = FONT;
    view.widths = new Map(scene.buses.map((b) => [b.name, ctx.measureText(b.name).width]));
    view.resize();
    view.fit();
  };

  view.resize = () => {
    const scene = view.scene, width = box.clientWidth || 800;
    const height = Math.round(Math.max(320, Math.min(window.innerHeight * 0.8, width * scene.H / scene.W)));
    const dpr = window.devicePixelRatio || 1;
    for (const canvas of [base, top]) {
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
      canvas.style.height = `${height}px`;
    }
    box.style.height = `${height}px`;
    Object.assign(view, { width, height, dpr });
  };

  view.fit = () => {
    const { W, H } = view.scene;
    view.fitK = Math.min(view.width / W, view.height / H);
    view.k = view.fitK;
    view.tx = (view.width - W * view.k) / 2;
    view.ty = (view.height - H * view.k) / 2;
    view.request();
  };

  /** Zoom by `factor` about the screen point (sx, sy), within the fitted view and MAX_ZOOM times it. */
  view.zoom = (factor, sx, sy) => {
    const k = Math.max(view.fitK, Math.min(view.fitK * MAX_ZOOM, view.k * factor));
    const [mx, my] = view.toMap(sx, sy);
    view.k = k;
    view.tx = sx - mx * k;
    view.ty = sy - my * k;
    moved();
    view.request();
  };
  view.pan = (dx, dy) => { view.tx += dx; view.ty += dy; moved(); view.request(); };
  /** While the view moves, a dense view skips its names (placing them is most of a picture's cost there); they come
   *  back 150 ms after it stops. */
  const moved = () => {
    clearTimeout(view.settle);
    view.moving = true;
    view.settle = setTimeout(() => { view.moving = false; view.request(); }, 150);
  };

  /** Draw at the next frame (many requests in one frame draw once). */
  view.request = () => {
    if (view.pending) return;
    view.pending = true;
    requestAnimationFrame(() => { view.pending = false; view.draw(); });
  };

  view.draw = () => {
    const started = performance.now(), ctx = base.getContext("2d");
    ctx.setTransform(view.dpr, 0, 0, view.dpr, 0, 0);
    ctx.clearRect(0, 0, view.width, view.height);
    const scene = view.scene, d = view.detail();
    if (view.shown("neighbourhoods")) drawNeighbourhoods(ctx);
    drawWires(ctx, scene.lines, d, true);
    drawWires(ctx, scene.transformers, d, false);
    if (d >= 0.5) for (const t of scene.transformers) if (visible(t.mid, 10)) drawTransformerSymbol(ctx, t, d);
    drawBuses(ctx, d);
    view.nbBoxes = view.shown("neighbourhoods") ? neighbourhoodBoxes() : [];
    if (!view.shown("labels")) view.labelKey = null; // shown again: placed afresh
    view.labels = view.shown("labels") ? placeLabels(view, ctx) : [];
    if (view.shown("neighbourhoods")) drawNeighbourhoodLabels(ctx);
    view.frames++;
    if (scene.colourings !== view.colourings) { // the first picture of new colours: for bench/page_bench.py
      view.colourings = scene.colourings;
      view.colouredAt = [...view.colouredAt.slice(-19), performance.now()];
    }
    drawTop();
    view.drawMs = [...view.drawMs.slice(-199), performance.now() - started]; // the last 200 pictures' cost, for the bench
    hooks.drawn();
  };

  /** Text widths in px, for the neighbourhood labels' placement. */
  view.nbTextWidth = (text) => { const ctx = top.getContext("2d"); ctx.font = NB_FONT; return ctx.measureText(text).width; };
  /** The neighbourhood labels' boxes in px ({ id, x, y, w, h }): right-aligned on their anchor, 12 px high. */
  const neighbourhoodBoxes = () => view.scene.nbLabels.map((l) => {
    const [x, y] = view.toScreen([l.x, l.y]);
    return { id: l.id, x: x - l.w, y: y - 10, w: l.w, h: 12 };
  });

  const visible = (p, margin) => {
    const [sx, sy] = view.toScreen(p);
    return sx > -margin && sy > -margin && sx < view.width + margin && sy < view.height + margin;
  };
  const inView = (w) => {
    const [ax, ay] = view.toScreen(w.a), [bx, by] = view.toScreen(w.b);
    return Math.max(ax, bx) > -10 && Math.min(ax, bx) < view.width + 10 && Math.max(ay, by) > -10 && Math.min(ay, by) < view.height + 10;
  };

  function drawNeighbourhoods(ctx) {
    // One stroke per neighbourhood (its lines, and a dot per bus) at one opacity: the band stays even where it overlaps.
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = view.bandWidth();
    for (const nb of view.scene.neighbourhoods) {
      ctx.globalAlpha = nb.active ? 0.42 : 0.2;
      ctx.strokeStyle = nb.colour;
      ctx.beginPath();
      for (const [a, b] of nb.segments) { ctx.moveTo(...view.toScreen(a)); ctx.lineTo(...view.toScreen(b)); }
      for (const p of nb.points) { const [x, y] = view.toScreen(p); ctx.moveTo(x, y); ctx.lineTo(x + 0.01, y); }
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
  }

  /** Wires batched by look (colour, width, dash): one path each. */
  function drawWires(ctx, wires, d, marks) {
    const batches = new Map();
    for (const w of wires) {
      if (!inView(w)) continue;
      const width = Math.max(0.7, w.width * d), dash = w.binding ? "binding" : w.open ? "open" : "";
      const key = `${w.binding ? "#e08214" : w.colour}|${width.toFixed(1)}|${dash}`;
      if (!batches.has(key)) batches.set(key, []);
      batches.get(key).push(w);
    }
    ctx.lineCap = "round";
    for (const [key, group] of batches) {
      const [colour, width, dash] = key.split("|");
      ctx.strokeStyle = colour;
      ctx.lineWidth = Number(width);
      ctx.setLineDash(dash === "open" ? [5 * d, 4 * d] : dash === "binding" ? [7, 3] : []);
      ctx.beginPath();
      for (const w of group) { ctx.moveTo(...view.toScreen(w.a)); ctx.lineTo(...view.toScreen(w.b)); }
      ctx.stroke();
    }
    ctx.setLineDash([]);
    if (!marks || d < 0.45) return;
    for (const w of wires) {
      if (!w.sw || !inView(w)) continue;
      const [x, y] = view.toScreen(w.mid), s = 8 * d;
      ctx.fillStyle = w.open ? "#fff" : "#1f2933";
      ctx.strokeStyle = w.open ? "#1f2933" : "#fff";
      ctx.lineWidth = w.open ? 1.5 : 1;
      ctx.fillRect(x - s / 2, y - s / 2, s, s);
      ctx.strokeRect(x - s / 2, y - s / 2, s, s);
    }
  }

  function drawTransformerSymbol(ctx, t, d, colour) {
    const [x, y] = view.toScreen(t.mid), r = 4.7 * d, off = 2.9 * d;
    const ux = Math.cos(t.angle), uy = Math.sin(t.angle);
    for (const pass of ["back", "coil"]) for (const s of [-1, 1]) {
      ctx.beginPath();
      ctx.arc(x + s * off * ux, y + s * off * uy, r, 0, 2 * Math.PI);
      if (pass === "back") { ctx.fillStyle = "#fff"; ctx.fill(); } else {
        ctx.strokeStyle = colour || (t.binding ? "#e08214" : t.overloaded ? "#7b3294" : "#1f2933");
        ctx.lineWidth = 1.3;
        ctx.stroke();
      }
    }
    if (!t.regulator) return;
    ctx.strokeStyle = ctx.fillStyle = colour || "#1f2933";
    ctx.lineWidth = 1.1;
    ctx.beginPath(); ctx.moveTo(x - 7.2 * d, y + 6.2 * d); ctx.lineTo(x + 5.2 * d, y - 4.4 * d); ctx.stroke();
    ctx.beginPath(); ctx.moveTo(x + 7.8 * d, y - 6.6 * d); ctx.lineTo(x + 2.2 * d, y - 4.9 * d); ctx.lineTo(x + 5.6 * d, y - 1.2 * d);
    ctx.closePath(); ctx.fill();
  }

  /** Buses batched by fill; then their rings: violations (thick, never smaller than 3 px, so they show at a
   *  glance), the selected bus, an EV failure's binding bus. */
  function drawBuses(ctx, d) {
    const r = view.radius(), fills = new Map(), shown = [];
    for (const b of view.scene.buses) {
      if (!visible([b.x, b.y], r + 3)) continue;
      shown.push(b);
      if (!fills.has(b.fill)) fills.set(b.fill, []);
      fills.get(b.fill).push(b);
    }
    for (const [fill, group] of fills) {
      ctx.fillStyle = fill;
      ctx.beginPath();
      for (const b of group) { const [x, y] = view.toScreen([b.x, b.y]); ctx.moveTo(x + r, y); ctx.arc(x, y, r, 0, 2 * Math.PI); }
      ctx.fill();
    }
    ctx.strokeStyle = "#3d4650";
    ctx.lineWidth = Math.max(0.4, d);
    ctx.beginPath();
    for (const b of shown) { const [x, y] = view.toScreen([b.x, b.y]); ctx.moveTo(x + r, y); ctx.arc(x, y, r, 0, 2 * Math.PI); }
    ctx.stroke();
    for (const b of shown) {
      if (!b.violation && !b.selected && !b.binding) continue;
      const [x, y] = view.toScreen([b.x, b.y]), rr = Math.max(r, b.violation ? 3 : r);
      ctx.beginPath();
      ctx.arc(x, y, rr, 0, 2 * Math.PI);
      if (rr > r) { ctx.fillStyle = b.fill; ctx.fill(); }
      ctx.strokeStyle = b.binding ? "#e08214" : "#000";
      ctx.lineWidth = b.binding ? 3 : b.violation ? (d < 0.6 ? 1.5 : 2.5) : 2;
      ctx.stroke();
    }
  }

  function drawNeighbourhoodLabels(ctx) {
    ctx.font = NB_FONT;
    ctx.textBaseline = "alphabetic";
    ctx.textAlign = "end";
    ctx.lineWidth = 3;
    for (const l of view.scene.nbLabels) {
      const [x, y] = view.toScreen([l.x, l.y]);
      ctx.strokeStyle = "#fbfcfd"; ctx.strokeText(l.text, x, y);
      ctx.fillStyle = l.colour; ctx.fillText(l.text, x, y);
    }
    ctx.textAlign = "start";
  }

  /** The pointer's layer: the hovered item in the accent colour, the selected bus's halo and name. */
  function drawTop() {
    const ctx = top.getContext("2d"), d = view.detail(), r = view.radius();
    ctx.setTransform(view.dpr, 0, 0, view.dpr, 0, 0);
    ctx.clearRect(0, 0, view.width, view.height);
    const hit = view.hovered;
    if (hit && hit.kind === "bus") {
      const b = view.scene.busIndex.get(hit.id), [x, y] = view.toScreen([b.x, b.y]);
      ctx.beginPath(); ctx.arc(x, y, Math.max(r, 3), 0, 2 * Math.PI);
      ctx.fillStyle = b.fill; ctx.fill(); ctx.strokeStyle = ACCENT; ctx.lineWidth = 2.5; ctx.stroke();
    } else if (hit && (hit.kind === "line" || hit.kind === "transformer")) {
      const w = hit.kind === "line" ? view.scene.lineIndex.get(hit.id) : view.scene.transformerIndex.get(hit.id);
      ctx.strokeStyle = ACCENT; ctx.lineWidth = Math.max(1.5, w.width * d); ctx.lineCap = "round";
      ctx.beginPath(); ctx.moveTo(...view.toScreen(w.a)); ctx.lineTo(...view.toScreen(w.b)); ctx.stroke();
      if (hit.kind === "transformer" && d >= 0.5) drawTransformerSymbol(ctx, w, d, ACCENT);
    }
    const selected = view.scene.selected && view.scene.busIndex.get(view.scene.selected);
    if (!selected) return;
    const [x, y] = view.toScreen([selected.x, selected.y]);
    ctx.beginPath(); ctx.arc(x, y, Math.max(r, 3) + 4.5, 0, 2 * Math.PI);
    ctx.strokeStyle = "#000"; ctx.lineWidth = 2.2; ctx.stroke();
    ctx.font = "bold 13px system-ui, sans-serif"; ctx.textBaseline = "alphabetic";
    ctx.lineWidth = 3; ctx.strokeStyle = "#fff"; ctx.strokeText(selected.name, x + 12, y - 10);
    ctx.fillStyle = "#000"; ctx.fillText(selected.name, x + 12, y - 10);
  }

  /** What is at screen point (sx, sy): a bus, else a transformer, a line, a neighbourhood label, a neighbourhood. */
  view.hitAt = (sx, sy) => {
    const scene = view.scene, p = view.toMap(sx, sy), r = (Math.max(view.radius(), 3) + 2) / view.k;
    let best = null, bestD = r;
    for (const i of view.busGrid(p[0] - r, p[1] - r, p[0] + r, p[1] + r)) {
      const b = scene.buses[i], dist = Math.hypot(b.x - p[0], b.y - p[1]);
      if (dist <= bestD) { best = b; bestD = dist; }
    }
    if (best) return { kind: "bus", id: best.name };
    const reach = 6 / view.k, d = view.detail();
    let wire = null, wireD = Infinity;
    for (const i of view.wireGrid(p[0] - reach, p[1] - reach, p[0] + reach, p[1] + reach)) {
      const w = view.wires[i], symbol = w.key && d >= 0.5 ? Math.hypot(w.mid[0] - p[0], w.mid[1] - p[1]) - 7.6 * d / view.k : Infinity;
      const dist = Math.min(symbol, segmentDistance(p, w.a, w.b) - Math.max(w.width * d, 4) / 2 / view.k);
      if (dist <= 0 && (dist < wireD || (w.key && !wire.key))) { wire = w; wireD = dist; }
    }
    if (wire) return wire.key ? { kind: "transformer", id: wire.key } : { kind: "line", id: wire.name };
    if (!view.shown("neighbourhoods")) return null;
    for (const b of view.nbBoxes) if (sx >= b.x && sx <= b.x + b.w && sy >= b.y && sy <= b.y + b.h) return { kind: "neighbourhood", id: b.id };
    const band = view.bandWidth() / 2 / view.k;
    for (const i of view.busGrid(p[0] - band, p[1] - band, p[0] + band, p[1] + band)) {
      const b = scene.buses[i];
      if (b.neighbourhood != null && Math.hypot(b.x - p[0], b.y - p[1]) <= band) return { kind: "neighbourhood", id: b.neighbourhood };
    }
    return null;
  };

  wirePointer(box, view, hooks, drawTop);
  new ResizeObserver(() => {
    if (!view.scene || Math.abs((box.clientWidth || 0) - view.width) < 1) return;
    const centre = view.toMap(view.width / 2, view.height / 2), zoom = view.k / view.fitK;
    view.resize();
    view.fit();
    view.zoom(zoom, view.width / 2, view.height / 2);
    view.pan(view.width / 2 - view.toScreen(centre)[0], view.height / 2 - view.toScreen(centre)[1]);
  }).observe(box);
  return view;
}

/** Wheel zooms about the pointer, a drag pans, a click (a press that hardly moved) picks, a double click fits. */
function wirePointer(box, view, hooks, drawTop) {
  const at = (event) => { const rect = box.getBoundingClientRect(); return [event.clientX - rect.left, event.clientY - rect.top]; };
  let drag = null;
  box.addEventListener("wheel", (event) => {
    if (!view.scene) return;
    event.preventDefault();
    view.zoom(Math.exp(-event.deltaY * 0.0015), ...at(event));
  }, { passive: false });
  box.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || event.target.closest(".map-overlay [data-bus], .map-overlay [data-charger]")) return;
    drag = { x: event.clientX, y: event.clientY, moved: false };
  });
  window.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 4) return;
    drag.moved = true;
    box.classList.add("panning");
    view.pan(dx, dy);
    drag.x = event.clientX; drag.y = event.clientY;
  });
  window.addEventListener("pointerup", (event) => {
    if (!drag) return;
    const moved = drag.moved;
    drag = null;
    box.classList.remove("panning");
    if (!moved && event.target.closest("#" + box.id)) {
      const hit = view.hitAt(...at(event));
      if (hit) hooks.click(hit);
    }
  });
  box.addEventListener("dblclick", () => view.fit());
  box.addEventListener("mousemove", (event) => {
    if (drag && drag.moved) return;
    const overlay = event.target.closest(".map-overlay [data-bus], .map-overlay [data-charger]");
    const hit = overlay ? null : view.hitAt(...at(event));
    if ((hit && hit.kind + hit.id) !== (view.hovered && view.hovered.kind + view.hovered.id)) {
      view.hovered = hit;
      drawTop();
    }
    box.classList.toggle("pointing", !!hit && hit.kind === "bus");
    hooks.hover(event, overlay ? null : hit);
  });
  box.addEventListener("mouseleave", () => { view.hovered = null; drawTop(); hooks.leave(); });
}
