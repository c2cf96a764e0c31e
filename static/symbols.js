// The map's symbols, drawn on the map and in its legend alike: a transformer (or regulator), a generator and an EV
// charger.

import { el } from "./dom.js";

/** Two overlapping windings along `angle` (degrees); a regulator gets its tap changer's arrow across them. */
export function transformerSymbol(g, regulator, angle = 0) {
  const coils = el("g", angle ? { transform: `rotate(${angle.toFixed(1)})` } : {}, g);
  for (const cx of [-2.9, 2.9]) el("circle", { class: "xf-back", cx, cy: 0, r: 4.7 }, coils);
  for (const cx of [-2.9, 2.9]) el("circle", { class: "xf-coil", cx, cy: 0, r: 4.7 }, coils);
  if (regulator) { // always pointing up and right, whichever way the windings lie
    el("line", { class: "xf-arrow", x1: -7.2, y1: 6.2, x2: 5.2, y2: -4.4 }, g);
    el("path", { class: "xf-arrowhead", d: "M7.8,-6.6 L2.2,-4.9 L5.6,-1.2 Z" }, g);
  }
  return g;
}

/** A generator: a circle with a sine wave in it. */
export function generatorSymbol(g) {
  el("circle", { r: 7 }, g);
  el("path", { d: "M-4,0 C-2,-5 2,5 4,0" }, g);
  return g;
}

/** An EV charger: a rounded square with a lightning bolt in it. */
export function chargerSymbol(g) {
  el("rect", { x: -6.5, y: -6.5, width: 13, height: 13, rx: 2.5 }, g);
  el("path", { d: "M1,-5 L-3,1 L0,1 L-1,5 L3,-1 L0,-1 Z" }, g);
  return g;
}
