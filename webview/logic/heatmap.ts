// Attention maps as pixels: one head's probabilities through a colour scale, with a sparse pattern drawn over them
// (keys the pattern hides are dimmed, so the mass it loses is visible). Pure: the canvas only receives the bytes.
import type { AttentionMaps } from '../../src/protocol';
import { type SparsePattern, isVisible, parsePattern } from '../../src/shared/sparse-pattern';

/** Viridis, sampled at 9 stops: perceptually even and readable on light and dark themes alike. */
const STOPS: [number, number, number][] = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141], [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];

export function colour(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [STOPS[i], STOPS[i + 1]];
  return [Math.round(a[0] + (b[0] - a[0]) * f), Math.round(a[1] + (b[1] - a[1]) * f), Math.round(a[2] + (b[2] - a[2]) * f)];
}

/** One head's [queries × keys] probabilities. */
export function headSlice(maps: AttentionMaps, head: number): number[] {
  const [heads, q, k] = maps.dims;
  if (head < 0 || head >= heads) throw new Error(`head ${head} out of range (0..${heads - 1})`);
  return maps.probabilities.slice(head * q * k, (head + 1) * q * k);
}

/** Parses a pattern for drawing; null when there is none or it is not a fixed pattern (then nothing is drawn). */
export function drawablePattern(text: string | null): SparsePattern | null {
  if (!text) return null;
  try {
    return parsePattern(text);
  } catch {
    return null;
  }
}

export interface HeatmapImage {
  width: number;
  height: number;
  /** RGBA, row-major, queries down and keys across. */
  data: Uint8ClampedArray<ArrayBuffer>;
  /** The head's largest probability: the top of the colour scale. */
  max: number;
}

/**
 * Colour = √(p / max) so that the long tail of small probabilities stays visible next to a few large ones. Keys the
 * pattern hides are drawn at a quarter of their brightness. Queries sit at the end of the keys (past tokens first).
 */
export function heatmapImage(maps: AttentionMaps, head: number, pattern: SparsePattern | null): HeatmapImage {
  const [, queries, keys] = maps.dims;
  const p = headSlice(maps, head);
  let max = 0;
  for (const v of p) if (v > max) max = v;
  const data = new Uint8ClampedArray(queries * keys * 4);
  const offset = keys - queries;
  for (let q = 0; q < queries; q++) {
    for (let j = 0; j < keys; j++) {
      const v = p[q * keys + j];
      const [r, g, b] = colour(max > 0 ? Math.sqrt(v / max) : 0);
      const hidden = pattern !== null && !isVisible(pattern, q + offset, j, head, maps.causal);
      const dim = hidden ? 0.25 : 1;
      const o = (q * keys + j) * 4;
      data[o] = r * dim;
      data[o + 1] = g * dim;
      data[o + 2] = b * dim;
      data[o + 3] = 255;
    }
  }
  return { width: keys, height: queries, data, max };
}

/** Share of this head's mass inside the pattern, from the drawn data (the runtime's recall is the reference). */
export function maskedMass(maps: AttentionMaps, head: number, pattern: SparsePattern): number {
  const [, queries, keys] = maps.dims;
  const p = headSlice(maps, head);
  const offset = keys - queries;
  let inside = 0;
  let total = 0;
  for (let q = 0; q < queries; q++) {
    for (let j = 0; j < keys; j++) {
      const v = p[q * keys + j];
      total += v;
      if (isVisible(pattern, q + offset, j, head, maps.causal)) inside += v;
    }
  }
  return total > 0 ? inside / total : 0;
}

/** What the pointer is over: a query row and a key column of one head, with their tokens when known. */
export interface Cell {
  query: number;
  key: number;
  value: number;
  queryLabel: string | null;
  keyLabel: string | null;
}

/**
 * The cell at a point of the drawn map, given as fractions of its width (keys) and height (queries); null outside.
 * Queries are the last `queries` of the keys (a cache in front), so query q is the token at key position offset + q.
 */
export function cellAt(maps: AttentionMaps, head: number, fx: number, fy: number): Cell | null {
  const [, queries, keys] = maps.dims;
  if (!(fx >= 0 && fx < 1 && fy >= 0 && fy < 1)) return null;
  const key = Math.floor(fx * keys);
  const query = Math.floor(fy * queries);
  const offset = keys - queries;
  const value = maps.probabilities[(head * queries + query) * keys + key];
  const label = (i: number) => maps.tokens?.[i] ?? null;
  return { query, key, value, queryLabel: label(query + offset), keyLabel: label(key) };
}

/** "query 12 “a” → key 3 “d”: p = 0.0421" */
export function describeCell(c: Cell): string {
  const q = c.queryLabel === null ? '' : ` “${c.queryLabel}”`;
  const k = c.keyLabel === null ? '' : ` “${c.keyLabel}”`;
  const p = c.value >= 0.001 || c.value === 0 ? c.value.toFixed(4) : c.value.toExponential(2);
  return `query ${c.query}${q} → key ${c.key}${k}: p = ${p}`;
}

/**
 * The labelled positions of an axis of `n` cells: every one up to `max`, else every k-th (k the smallest step that
 * fits), with the token when known and the position otherwise. `at` is the label's centre as a fraction of the axis.
 */
export function axisTicks(n: number, labels: (string | null)[] | null, max = 32): { index: number; at: number; text: string }[] {
  const step = Math.max(1, Math.ceil(n / max));
  const ticks = [];
  for (let i = 0; i < n; i += step) ticks.push({ index: i, at: (i + 0.5) / n, text: labels?.[i] ?? String(i) });
  return ticks;
}

/** Recall per head of a pattern over this map: the runtime's when it measured that pattern, else from the drawn data. */
export function headRecalls(maps: AttentionMaps, patternText: string | null): (number | null)[] {
  const drawn = drawablePattern(patternText);
  return maps.heads.map((s) => {
    if (patternText !== null && patternText === maps.pattern && s.recall !== undefined && s.recall !== null) return s.recall;
    return drawn ? maskedMass(maps, s.head, drawn) : null;
  });
}
