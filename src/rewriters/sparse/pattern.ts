// The static sparse patterns of methods.md, three ways: a plain predicate (the reference the tests and the cost figures
// use), a builder of the same predicate as ONNX ops over run-time positions (so one rewritten model serves every
// sequence length), and the mean number of keys a query sees at a given length.
//
// Positions are absolute: with a KV cache, query i of the new tokens sits at i + past, where past = Sk − Sq.
import type { Value } from '../../analysis/ir/graph';
import type { SiteOps } from './ops';

export type Pattern =
  /** Causal: i − W < j ≤ i. Non-causal: |i − j| < W. */
  | { kind: 'window'; window: number; causal: boolean }
  /** Causal, and (j < N or i − W < j). */
  | { kind: 'sink'; window: number; sink: number }
  /** Causal, and (j ≡ h mod k) or in the window; `heads` query heads. */
  | { kind: 'strided'; window: number; stride: number; heads: number }
  /** Causal, and (i − j is 0 or a power of two) or in the window. */
  | { kind: 'power'; window: number }
  /** `prefix` tokens (class, registers) see and are seen by all; patch tokens on a gridH × gridW grid see a square. */
  | { kind: 'neighborhood2d'; radius: number; prefix: number; gridH: number; gridW: number };

/** Run-time positions of one site: int64 scalars and index columns/rows. */
export interface Positions {
  sq: Value;
  sk: Value;
  past: Value;
  /** [Sq, 1]: absolute query positions (past + 0 … past + Sq − 1). */
  qAbs: Value;
  /** [1, Sk]: key positions 0 … Sk − 1. */
  kAbs: Value;
}

const isPow2 = (d: number) => d > 0 && (d & (d - 1)) === 0;

/** What visibility depends on: a pattern, less the head count that only sizes a per-head mask's head axis. */
export type Visibility = Exclude<Pattern, { kind: 'strided' }> | Omit<Extract<Pattern, { kind: 'strided' }>, 'heads'>;

/**
 * Whether query i may see key j (absolute positions) in head h: the one definition of each pattern's visibility, which
 * the rewritten models are tested against and the runtime's recall and the dashboard's overlay use.
 */
export function visible(p: Visibility, i: number, j: number, h = 0): boolean {
  const d = i - j;
  switch (p.kind) {
    case 'window':
      return p.causal ? d >= 0 && d < p.window : Math.abs(d) < p.window;
    case 'sink':
      return d >= 0 && (j < p.sink || d < p.window);
    case 'strided':
      return d >= 0 && (j % p.stride === h % p.stride || d < p.window);
    case 'power':
      return d >= 0 && (d < p.window || isPow2(d));
    case 'neighborhood2d': {
      if (i < p.prefix || j < p.prefix) return true;
      const [ri, ci] = [Math.floor((i - p.prefix) / p.gridW), (i - p.prefix) % p.gridW];
      const [rj, cj] = [Math.floor((j - p.prefix) / p.gridW), (j - p.prefix) % p.gridW];
      return Math.abs(ri - rj) <= p.radius && Math.abs(ci - cj) <= p.radius;
    }
  }
}

/** Whether the pattern differs per head (its mask then has a head axis). */
export function perHead(p: Pattern): boolean {
  return p.kind === 'strided';
}

/** The pattern as a bool tensor [Sq, Sk] (or [H, Sq, Sk] for per-head patterns) over run-time positions. */
export function buildVisible(ops: SiteOps, p: Pattern, pos: Positions): Value {
  const i64 = (v: number, w: string) => ops.scalarI64(v, w);
  const d = ops.op('Sub', [pos.qAbs, pos.kAbs], 'distance');
  const causal = () => ops.op('Not', [ops.op('Less', [d, i64(0, 'zero_i')], 'future')], 'causal');
  const inWindow = (w: number) => ops.op('Less', [d, i64(w, 'window')], 'in_window');
  const and = (a: Value, b: Value, w = 'and') => ops.op('And', [a, b], w);
  const or = (a: Value, b: Value, w = 'or') => ops.op('Or', [a, b], w);
  switch (p.kind) {
    case 'window':
      if (!p.causal) return ops.op('Less', [ops.op('Abs', [d], 'abs_distance'), i64(p.window, 'window')], 'in_window');
      return and(causal(), inWindow(p.window), 'visible');
    case 'sink':
      return and(causal(), or(ops.op('Less', [pos.kAbs, i64(p.sink, 'sink')], 'is_sink'), inWindow(p.window)), 'visible');
    case 'strided': {
      // j mod k == h mod k, with h along a leading head axis: [H, 1, 1] against [1, Sk] gives [H, 1, Sk].
      const hMod = ops.const('head_mod', [p.heads, 1, 1], { dtype: 'int64', data: Array.from({ length: p.heads }, (_, h) => h % p.stride) });
      const jMod = ops.op('Mod', [pos.kAbs, i64(p.stride, 'stride')], 'key_mod');
      const shard = ops.op('Equal', [jMod, hMod], 'in_shard');
      return and(causal(), or(shard, inWindow(p.window)), 'visible');
    }
    case 'power': {
      // d is a power of two iff 2^round(log2 d) == d. Float log2 is off by far less than 0.5 for any d below 2^24, and
      // the equality is checked on integers, so no power is missed and no other distance passes. d = 0 and d < 0 are
      // handled by the window and causal terms (W ≥ 1); max(d, 1) keeps the logarithm finite there.
      const dPos = ops.op('Max', [d, i64(1, 'one_i')], 'distance_pos');
      const log2 = ops.op('Div', [ops.op('Log', [ops.cast(dPos, 'float32', 'distance_f')], 'log'), ops.const('ln2', [], { dtype: 'float32', data: [Math.LN2] })], 'log2');
      const p2 = ops.op('Pow', [ops.const('two', [], { dtype: 'float32', data: [2] }), ops.op('Round', [log2], 'round')], 'nearest_pow2');
      const isP2 = ops.op('Equal', [ops.cast(p2, 'int64', 'nearest_pow2_i'), dPos], 'is_pow2');
      return and(causal(), or(isP2, inWindow(p.window)), 'visible');
    }
    case 'neighborhood2d': {
      const prefix = i64(p.prefix, 'prefix');
      const w = i64(p.gridW, 'grid_w');
      const rowCol = (t: Value, tag: string) => {
        const rel = ops.op('Sub', [t, prefix], `${tag}_patch`);
        return [ops.op('Div', [rel, w], `${tag}_row`), ops.op('Mod', [rel, w], `${tag}_col`)];
      };
      const [rq, cq] = rowCol(pos.qAbs, 'q');
      const [rk, ck] = rowCol(pos.kAbs, 'k');
      const r1 = i64(p.radius + 1, 'radius');
      const near = (a: Value, b: Value, tag: string) => ops.op('Less', [ops.op('Abs', [ops.op('Sub', [a, b], `${tag}_diff`)], `${tag}_abs`), r1], `${tag}_near`);
      const square = and(near(rq, rk, 'row'), near(cq, ck, 'col'), 'in_square');
      const global = or(ops.op('Less', [pos.qAbs, prefix], 'q_prefix'), ops.op('Less', [pos.kAbs, prefix], 'k_prefix'), 'global');
      return or(global, square, 'visible');
    }
  }
}

/**
 * Mean number of keys a query sees at sequence length `s` (no cache), averaged over queries and heads. Closed forms per
 * query, so it stays cheap at long lengths.
 */
export function keysPerQuery(p: Pattern, s: number): number {
  let total = 0;
  const heads = p.kind === 'strided' ? p.heads : 1;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < s; i++) total += keysOf(p, i, s, h);
  }
  return total / (s * heads);
}

/** Mean number of keys a query of head h sees at sequence length `s` (no cache). */
export function keysPerQueryOfHead(p: Pattern, s: number, h: number): number {
  let total = 0;
  for (let i = 0; i < s; i++) total += keysOf(p, i, s, h);
  return total / s;
}

function keysOf(p: Pattern, i: number, s: number, h: number): number {
  switch (p.kind) {
    case 'window':
      return p.causal ? Math.min(i + 1, p.window) : Math.min(i + p.window - 1, s - 1) - Math.max(i - p.window + 1, 0) + 1;
    case 'sink':
      return Math.min(i + 1, p.window) + Math.max(0, Math.min(p.sink, i - p.window + 1));
    case 'strided': {
      // Keys older than the window (j ≤ i − W) in head h's shard j ≡ h (mod k).
      const lim = i - p.window;
      const r = h % p.stride;
      return Math.min(i + 1, p.window) + (lim >= r ? Math.floor((lim - r) / p.stride) + 1 : 0);
    }
    case 'power': {
      let extra = 0;
      for (let d = 1; d <= i; d *= 2) if (d >= p.window) extra++;
      return Math.min(i + 1, p.window) + extra;
    }
    case 'neighborhood2d': {
      if (i < p.prefix) return s;
      const t = i - p.prefix;
      const [r, c] = [Math.floor(t / p.gridW), t % p.gridW];
      const rows = Math.min(r + p.radius, p.gridH - 1) - Math.max(r - p.radius, 0) + 1;
      const cols = Math.min(c + p.radius, p.gridW - 1) - Math.max(c - p.radius, 0) + 1;
      return p.prefix + rows * cols;
    }
  }
}

export function describe(p: Pattern): Record<string, unknown> {
  switch (p.kind) {
    case 'window': return { pattern: p.causal ? 'causal sliding window' : 'sliding window (two-sided)', window: p.window };
    case 'sink': return { pattern: 'sink + window', sink: p.sink, window: p.window };
    case 'strided': return { pattern: 'strided + window', stride: p.stride, window: p.window };
    case 'power': return { pattern: 'power-of-two + window', window: p.window };
    case 'neighborhood2d': return { pattern: 'neighborhood 2d', radius: p.radius, grid: [p.gridH, p.gridW], prefixTokens: p.prefix };
  }
}
