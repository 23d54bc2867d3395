// Q, K and V for a fused operator, read back from where they enter Q·Kᵀ and ·V. The walk goes up through what the
// operator does itself or what costs nothing to undo: constant factors (they join the operator's scale), transposes
// (their layout is tracked, so a [B, S, H, D] tensor before the model's own transpose is taken as it is), and the
// grouped-query repeat of K and V (repeat_kv: Unsqueeze, Expand, Reshape; multi-query: one head Expanded to all),
// which GroupQueryAttention and ONNX Attention do inside. Every value met is a *stage*; the builder takes the stage
// that needs the fewest new ops for the layout the chosen operator reads.
import { attrInts } from '../../analysis/attention/match';
import type { Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';

/** Canonical axes of an operand: batch, heads, positions (queries for Q, keys for K and V), head size. */
export const B = 0, H = 1, P = 2, D = 3;
/** [B, heads, positions, head size]: the layout of Q·Kᵀ's operands, 4-D inputs of every fused operator. */
export const BHPD = [B, H, P, D];
/** [B, positions, heads, head size]: one Reshape away from the operators' 3-D [B, positions, heads·head size]. */
export const BPHD = [B, P, H, D];

export interface Stage {
  value: Value;
  /** axes[i]: the canonical axis that axis i of `value` holds. */
  axes: number[];
  /** Heads this stage carries: query heads, or KV heads before a grouped-query repeat. */
  heads: number;
  /** Product of the constant factors between this stage and Q·Kᵀ (already applied downstream, not here). */
  factor: number;
}

export interface Operand {
  /** From the value entering the core (first) back to the deepest one reached. */
  stages: Stage[];
}

export interface PeelOptions {
  heads: number;
  kvHeads: number;
  /** Constant factors may be peeled (Q and K: they commute into the scale); not for V, whose factor would scale the output. */
  factors: boolean;
  /** A grouped-query repeat may be peeled (K and V). */
  repeat: boolean;
}

export function peel(shapes: ShapeInfo, start: Value, axes: number[], o: PeelOptions): Operand {
  // K or V may enter the product with one head that the product broadcasts to all (a multi-query `k[:, None]`).
  const dim = shapes.shape(start)?.[axes.indexOf(H)];
  const stages: Stage[] = [{ value: start, axes, heads: dim === 1 ? 1 : o.heads, factor: 1 }];
  for (let step = 0; step < 24; step++) {
    const cur = stages[stages.length - 1];
    const next = stepUp(shapes, cur, o);
    if (!next) break;
    stages.push(next);
  }
  return { stages };
}

function stepUp(shapes: ShapeInfo, cur: Stage, o: PeelOptions): Stage | undefined {
  const p = cur.value.producer;
  if (!p || p.domain !== '') return undefined;
  if ((p.opType === 'Mul' || p.opType === 'Div') && o.factors) {
    const [a, b] = p.inputs;
    const cb = constantScalar(b);
    const ca = p.opType === 'Mul' ? constantScalar(a) : undefined;
    const c = cb ?? ca;
    const data = cb !== undefined ? a : b;
    if (c === undefined || c === 0 || !data || !Number.isFinite(c)) return undefined;
    return { ...cur, value: data, factor: cur.factor * (p.opType === 'Mul' ? c : 1 / c) };
  }
  if (p.opType === 'Transpose') {
    const perm = attrInts(p, 'perm');
    const x = p.input(0);
    if (!x || !perm || perm.length !== 4) return undefined;
    // Output axis i is input axis perm[i], so the input's axis perm[i] holds what the output's axis i holds.
    const axes = new Array<number>(4);
    perm.forEach((from, i) => (axes[from] = cur.axes[i]));
    return { ...cur, value: x, axes };
  }
  if (p.opType === 'Reshape' && o.repeat && cur.heads === o.heads && o.kvHeads < o.heads && cur.axes[1] === H) {
    const pre = repeatSource(shapes, cur.value, o.heads, o.kvHeads);
    return pre ? { ...cur, value: pre, heads: o.kvHeads } : undefined;
  }
  if (p.opType === 'Expand' && o.repeat && o.kvHeads === 1 && cur.heads === o.heads) {
    const one = broadcastHead(shapes, cur, p.input(0), o.heads);
    return one ? { ...cur, value: one, heads: 1 } : undefined;
  }
  return undefined;
}

/**
 * Multi-query attention as eager exports write it: one K (or V) head, [B, 1, S, D], broadcast to every query head by
 * an Expand. Returns that one head when the shapes prove the Expand changes the head axis alone (1 → heads).
 */
function broadcastHead(shapes: ShapeInfo, cur: Stage, x: Value | null, heads: number): Value | undefined {
  const h = cur.axes.indexOf(H);
  const s = shapes.shape(x);
  const e = shapes.shape(cur.value);
  if (!x || !s || !e || s.length !== e.length || h < 0) return undefined;
  if (s[h] !== 1 || e[h] !== heads) return undefined;
  return s.every((d, i) => i === h || (d !== null && d === e[i])) ? x : undefined;
}

/**
 * repeat_kv as eager exports write it: x [B, Hkv, *, *] → Unsqueeze(axis 2) → Expand to [B, Hkv, g, *, *] → Reshape
 * to [B, Hkv·g, *, *]. Query head h then reads KV head ⌊h / g⌋, the grouping GroupQueryAttention and ONNX Attention
 * use. Returns x, or undefined when the shapes do not prove exactly that.
 */
function repeatSource(shapes: ShapeInfo, out: Value, heads: number, kvHeads: number): Value | undefined {
  const reshape = out.producer!;
  const expand = reshape.input(0)?.producer;
  if (!expand || expand.opType !== 'Expand') return undefined;
  const unsq = expand.input(0)?.producer;
  if (!unsq || unsq.opType !== 'Unsqueeze') return undefined;
  const x = unsq.input(0);
  const axes = unsq.input(1) ? shapes.values(unsq.input(1)) : attrInts(unsq, 'axes');
  if (!x || !axes || axes.length !== 1 || axes[0] !== 2) return undefined;
  const s = shapes.shape(x);
  const e = shapes.shape(expand.outputs[0]);
  const r = shapes.shape(out);
  if (!s || !e || !r || s.length !== 4 || e.length !== 5 || r.length !== 4) return undefined;
  if (s[1] !== kvHeads || r[1] !== heads || e[1] !== kvHeads || e[2] !== heads / kvHeads) return undefined;
  // The other axes pass through unchanged (where the shapes know them).
  for (const [i, j] of [[0, 0], [2, 3], [3, 4]] as const) {
    if (s[i] !== null && r[i] !== null && s[i] !== r[i]) return undefined;
    if (s[i] !== null && e[j] !== null && s[i] !== e[j]) return undefined;
  }
  return x;
}

function constantScalar(v: Value | null): number | undefined {
  const c = v?.constant;
  if (!c || c.size !== 1) return undefined;
  try {
    return c.toNumbers()[0];
  } catch {
    return undefined;
  }
}

/**
 * The stage to take for a layout: among the stages with `heads` heads, the deepest already in `layout`, else the
 * deepest (a Transpose then brings it there). With `factors` false, only stages without constant factors count.
 */
export function pick(op: Operand, heads: number, layout: number[], factors = true): Stage | undefined {
  const usable = op.stages.filter((s) => s.heads === heads && (factors || s.factor === 1));
  const same = usable.filter((s) => s.axes.every((a, i) => a === layout[i]));
  return (same.length ? same : usable).at(-1);
}

/** The Transpose perm that brings a stage's axes to `layout` (null when it is there already). */
export function permTo(axes: number[], layout: number[]): number[] | null {
  const perm = layout.map((a) => axes.indexOf(a));
  return perm.every((p, i) => p === i) ? null : perm;
}
