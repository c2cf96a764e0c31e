// Where each bus goes on the map: the coordinates GET /buses gives (the deck's, or placed by the server), with open
// tie ends and buses that share a place moved so that every bus, line and transformer can be seen. Pure geometry;
// imports nothing.

/** The transformers grouped by bus pair ("25-25r" holds reg3a and reg3c), in the API's order. */
export function transformerPairs(transformers) {
  const pairs = new Map();
  for (const t of transformers) {
    const key = `${t.bus1}-${t.bus2}`;
    if (!pairs.has(key)) pairs.set(key, { key, bus1: t.bus1, bus2: t.bus2, units: [] });
    pairs.get(key).units.push(t);
  }
  return pairs;
}

/**
 * The ends of normally open ties: buses the server placed (the deck gives them no coordinates, `xy_source` "placed")
 * that nothing but one switch reaches (no other line, no transformer, no load), like our "94_open" and "300_open".
 */
export function openTieEnds(buses, lines, pairs) {
  const touches = new Map(), transformed = new Set();
  for (const l of lines) for (const end of [l.Bus1, l.Bus2]) {
    if (!touches.has(end)) touches.set(end, []);
    touches.get(end).push(l);
  }
  for (const { bus1, bus2 } of pairs.values()) transformed.add(bus1).add(bus2);
  return new Set(buses.filter((b) => b.xy_source === "placed" && !transformed.has(b.name) && !(b.loads || []).length &&
    (touches.get(b.name) || []).length === 1 && touches.get(b.name)[0].Switch).map((b) => b.name));
}

/** { pos: bus → [x, y] in the feeder's units, nudged: buses moved off another's place, stubs: open tie ends }. */
export function layout(buses, lines, pairs) {
  const pos = new Map(), stubs = openTieEnds(buses, lines, pairs);
  // Every bus has x and y: the deck's, or placed by the server from its connected neighbours. The open tie ends
  // are drawn here instead, a short step from the bus they hang on.
  for (const b of buses) {
    if (!stubs.has(b.name) && Number.isFinite(b.x) && Number.isFinite(b.y)) pos.set(b.name, [b.x, b.y]);
  }
  const adjacent = new Map();
  for (const l of lines) for (const [a, b] of [[l.Bus1, l.Bus2], [l.Bus2, l.Bus1]]) {
    if (!adjacent.has(a)) adjacent.set(a, []);
    adjacent.get(a).push(b);
  }
  const neighbours = (name) => adjacent.get(name) || [];
  const placed = [...pos.values()];
  const minX = Math.min(...placed.map((p) => p[0])), minY = Math.min(...placed.map((p) => p[1]));
  const step = 0.035 * (Math.max(...placed.map((p) => p[0])) - minX || 1000);
  // Those stubs: a short step from their neighbour towards the bus their name points at ("94"),
  // or just beside the neighbour.
  const given = new Map(buses.map((b) => [b.name, b]));
  for (const name of stubs) {
    const near = neighbours(name).find((n) => pos.has(n));
    if (!near) { pos.set(name, [given.get(name).x, given.get(name).y]); continue; }
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
    const shift = Math.min(55, 0.5 * step); // 55 of our feeder's feet; less on a feeder drawn in smaller units
    pos.set(b.name, [x + shift * dx / len, y + shift * dy / len]);
    nudged.add(b.name);
  }
  return { pos, nudged, stubs };
}
