// The colour scales: bus voltage, voltage change, hosting capacity; line widths and neighbourhood colours.
// Pure functions of numbers; imports nothing.

// Diverging about 1.0 pu (ColorBrewer RdBu): blue below, red above; the ANSI limits sit at the mid-dark stops
// and everything beyond them darkens further, so a violation stands out.
export const V_MIN = 0.90, V_MAX = 1.10;
const V_STOPS = [
  [0.90, [5, 48, 97]], [0.95, [33, 102, 172]], [0.975, [146, 197, 222]], [1.0, [247, 247, 247]],
  [1.025, [244, 165, 130]], [1.05, [178, 24, 43]], [1.10, [103, 0, 31]],
];

/** Fill colour of a bus whose worst-phase voltage is `vpu` (clamped to 0.90–1.10 pu), as "rgb(r, g, b)". */
export function voltageColour(vpu) {
  const v = Math.min(V_MAX, Math.max(V_MIN, Number(vpu)));
  let i = 1;
  while (i < V_STOPS.length - 1 && v > V_STOPS[i][0]) i++;
  const [v0, c0] = V_STOPS[i - 1], [v1, c1] = V_STOPS[i];
  const t = (v - v0) / (v1 - v0);
  const [r, g, b] = c0.map((c, k) => Math.round(c + (c1[k] - c) * t));
  return `rgb(${r}, ${g}, ${b})`;
}

// The diff view's Δ voltage: another diverging scale (ColorBrewer PuOr) so it is not read as voltages: purple
// where the voltage fell, orange where it rose, the same pale middle at no change. `range` is the legend's end.
const D_STOPS = [[-1, [84, 39, 136]], [-0.5, [153, 142, 195]], [0, [247, 247, 247]], [0.5, [241, 163, 64]], [1, [179, 88, 6]]];

/** Fill colour of a bus whose voltage changed by `delta` pu, on a scale from −range to +range. */
export function deltaColour(delta, range) {
  const t = Math.min(1, Math.max(-1, Number(delta) / range));
  let i = 1;
  while (i < D_STOPS.length - 1 && t > D_STOPS[i][0]) i++;
  const [t0, c0] = D_STOPS[i - 1], [t1, c1] = D_STOPS[i];
  const [r, g, b] = c0.map((c, k) => Math.round(c + (c1[k] - c) * (t - t0) / (t1 - t0)));
  return `rgb(${r}, ${g}, ${b})`;
}

/** The legend's end: the first round step at or above the largest change, so small changes still show. */
export function deltaRange(largest) {
  return [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2].find((r) => r >= largest - 1e-12) || 0.5;
}

// Hosting capacity: a sequential scale (viridis: dark purple for the least capacity, yellow for the most), on a log
// scale since the capacities run from a few hundred kW on 1-phase laterals to megawatts near the substation. It is
// neither of the two diverging voltage scales, so it is not read as voltages; buses that cannot host one are grey.
export const HC_STOPS = [[68, 1, 84], [71, 45, 123], [59, 82, 139], [44, 114, 142], [33, 145, 140], [40, 174, 128],
  [94, 201, 98], [173, 220, 48], [253, 231, 37]];
export const NO_HOSTING_COLOUR = "rgb(204, 204, 204)";

/** Where `kw` sits on the log scale from `lo` (0) to `hi` (1); at or below `lo` (0 kW too) is 0. */
export function hostingPosition(kw, lo, hi) {
  if (!(hi > lo)) return 0.5;
  if (!(kw > lo)) return 0;
  return Math.min(1, (Math.log(kw) - Math.log(lo)) / (Math.log(hi) - Math.log(lo)));
}

/** Fill colour of a bus that hosts `kw`, on the scale from `lo` to `hi` kW, as "rgb(r, g, b)". */
export function hostingColour(kw, lo, hi) {
  const t = hostingPosition(Number(kw), lo, hi) * (HC_STOPS.length - 1);
  const i = Math.min(HC_STOPS.length - 2, Math.floor(t)), f = t - i;
  const [r, g, b] = HC_STOPS[i].map((c, k) => Math.round(c + (HC_STOPS[i + 1][k] - c) * f));
  return `rgb(${r}, ${g}, ${b})`;
}

/** The scale's ends: the smallest capacity above zero and the largest. */
export function hostingDomain(rows) {
  const kws = rows.map((r) => r.hosting_capacity_kW).filter((kw) => kw != null);
  const positive = kws.filter((kw) => kw > 0);
  const lo = positive.length ? Math.min(...positive) : 1;
  return { lo, hi: kws.length ? Math.max(lo, ...kws) : lo };
}

export const OVERLOAD_COLOUR = "#7b3294", LINE_COLOUR = "#56616b";
export const lineWidth = (pct) => 1.2 + 4.8 * Math.min(Math.max(pct, 0), 150) / 150;
export const NB_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
  "#1f78b4", "#b15928", "#6a3d9a", "#33a02c", "#fb9a99", "#666666", "#17becf"];
