// The bus names on the map: each beside its bus where it covers no other name, no bus and no neighbourhood label,
// so more fit as one zooms in and none ever overlap. Pure geometry on mapview.js's view; imports nothing.

export const FONT = "8.5px system-ui, sans-serif";

/** Each bus name beside its bus where it covers no other name, no bus and no neighbourhood label: more fit as
 *  one zooms in. The scene's order is the priority (the main line's buses first). [{ name, x, y, w, h }] in px.
 *  The same view places the same names: a recolour reuses them. While the view moves over more than 600 buses,
 *  none (placing them is most of such a picture's cost; they come back when it stops). */
export function placeLabels(view, ctx) {
  const key = [view.k, view.tx, view.ty, view.width, view.height, view.scene.selected, view.nbBoxes.length].join();
  const placed = view.labelKey === key ? view.labels : place(view);
  view.labelKey = placed === null ? null : key;
  if (!placed) return [];
  ctx.font = FONT;
  ctx.textBaseline = "top";
  ctx.lineWidth = 2.5;
  ctx.strokeStyle = "#fbfcfd";
  ctx.fillStyle = "#4a5560";
  for (const l of placed) { ctx.strokeText(l.name, l.x + 1, l.y); ctx.fillText(l.name, l.x + 1, l.y); }
  return placed;
}

/** The names placed afresh; null while a dense view moves. */
function place(view) {
  const r = view.radius(), placed = [], h = 9, taken = makeBoxes();
  for (const box of view.nbBoxes) taken.add(box);
  const [mx0, my0] = view.toMap(0, 0), [mx1, my1] = view.toMap(view.width, view.height);
  const inside = view.busGrid(mx0, my0, mx1, my1);
  if (inside.size > (view.moving ? 600 : 6000)) return view.moving ? null : placed;
  const candidates = [...inside].sort((a, b) => a - b).map((i) => view.scene.buses[i]);
  const dots = makeBoxes();
  for (const b of candidates) {
    const [x, y] = view.toScreen([b.x, b.y]);
    dots.add({ x: x - r, y: y - r, w: 2 * r, h: 2 * r });
  }
  const spots = (x, y, w) => [[x + r + 1, y - r - h + 2], [x + r + 1, y + r - 1], [x - r - 1 - w, y - r - h + 2], [x - r - 1 - w, y + r - 1]];
  for (const b of candidates) {
    if (b.selected) continue; // the selected bus is named on the pointer's layer
    const [x, y] = view.toScreen([b.x, b.y]), w = view.widths.get(b.name) + 2;
    for (const [lx, ly] of spots(x, y, w)) {
      const box = { x: lx, y: ly, w, h };
      if (lx < 0 || ly < 0 || lx + w > view.width || ly + h > view.height || taken.hits(box) || dots.hits(box)) continue;
      taken.add(box);
      placed.push({ name: b.name, ...box });
      break;
    }
  }
  return placed;
}

/** Boxes in px on a grid of 40 px cells: add one, or ask whether a box overlaps any added. */
function makeBoxes() {
  const boxes = [], overlaps = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
  const cells = new Map(), C = 40, keys = (b) => {
    const out = [];
    for (let cx = Math.floor(b.x / C); cx <= Math.floor((b.x + b.w) / C); cx++) {
      for (let cy = Math.floor(b.y / C); cy <= Math.floor((b.y + b.h) / C); cy++) out.push(cx * 65536 + cy);
    }
    return out;
  };
  return {
    add(b) { boxes.push(b); for (const key of keys(b)) { if (!cells.has(key)) cells.set(key, []); cells.get(key).push(b); } },
    hits(b) { return keys(b).some((key) => (cells.get(key) || []).some((o) => overlaps(o, b))); },
  };
}

