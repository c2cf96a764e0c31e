// Small helpers every view uses: elements, SVG, escaping and number formats. Imports nothing.

export const SVG_NS = "http://www.w3.org/2000/svg";
export const PHASE_NAMES = { 1: "A", 2: "B", 3: "C" };
export const PHASE_COLOURS = { 1: "#222222", 2: "#d95f02", 3: "#1f78b4" };

export const $ = (id) => document.getElementById(id);
export const fmt = (x, digits = 1) => Number(x).toLocaleString("en-GB", { minimumFractionDigits: digits, maximumFractionDigits: digits });
export const signed = (x, digits = 1) => (x > 0 ? "+" : x < 0 ? "−" : "±") + fmt(Math.abs(x), digits);
export const clock = (iso) => new Date(iso).toLocaleTimeString("en-GB");
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** An SVG element with these attributes (and text), appended to `parent`. */
export function el(tag, attrs = {}, parent = null, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

/** Text made safe to put inside HTML. */
export function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

/** Colour each `[data-swatch]` element inside `root` with its own data-swatch colour. Set through the style object,
 *  not a style attribute: the Content-Security-Policy allows no inline style attributes. */
export function paintSwatches(root) {
  for (const node of root.querySelectorAll("[data-swatch]")) node.style.background = node.dataset.swatch;
}

/** The tooltip with `html`, beside the pointer and inside the window. */
export function placeTooltip(event, html) {
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

export function hideTooltip() { $("tooltip").hidden = true; }

/** A number field as the API wants it: null when empty (the API then says what it expects), else a number. */
export const numberOf = (id) => { const text = $(id).value.trim(); return text === "" ? null : Number(text); };
