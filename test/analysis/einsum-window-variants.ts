// Attention whose core is written with Einsum (in the operand layouts exporters use) and windowed attention that cuts
// the positions into windows of consecutive tokens after the projections, [batch, windows, heads, positions in a
// window, head size] (Swin's window attention with its learned relative position bias, written over the sequence).
// Q, K, V and the output projection carry different weights, so a wrong head map changes the outputs.
import { GraphBuilder } from '../../src/analysis/ir/builder';
import type { Value } from '../../src/analysis/ir/graph';
import type { Model } from '../../src/analysis/ir/load';
import { f32, i64 } from '../../src/analysis/ir/tensor-data';

export interface EinsumWindowOptions {
  /**
   * The core: MatMul, or Einsum with Q/K/V as [batch, heads, positions, size] ('bhsd', transposed after the head
   * split), as [batch, positions, heads, size] ('bshd', no transposes), or with an ellipsis over the leading axes.
   */
  core: 'matmul' | 'bhsd' | 'bshd' | 'ellipsis';
  /** Positions cut into windows of this many tokens after the projections (5-D attention). */
  window?: number;
  /** A learned relative position bias per head, gathered from a table by a constant index (Swin). */
  relativeBias?: boolean;
  /** A mask that differs from window to window ([windows, 1, N, N], as Swin's shifted windows add). */
  windowMask?: boolean;
  /** The sequence length: a number, or symbolic (the window count is then known only at run time). */
  seq?: number | 'S';
  /** K split into this many heads instead of the model's (its head size then differs from Q's): dims that disagree. */
  badKHeads?: number;
}

export const EW = { heads: 4, headDim: 8, hidden: 32 };

const perm = (p: number[]) => ({ perm: { type: 'ints' as const, value: p } });
const eq = (e: string) => ({ equation: { type: 'string' as const, value: e } });

export function buildEinsumWindow(o: EinsumWindowOptions): Model {
  const { heads: H, headDim: D, hidden: E } = EW;
  const N = o.window;
  const b = GraphBuilder.create({ opsets: { '': 17 } });
  const c64 = (vals: number[]) => b.constant([vals.length], i64(vals));
  const x = b.input('x', 'float32', ['B', o.seq ?? 'S', E]);
  const weight = (name: string, phase: number) => b.initializer(name, [E, E], f32(Array.from({ length: E * E }, (_, i) => Math.sin(i * 0.37 + phase) * 0.2)));
  const bias = (name: string, phase: number) => b.initializer(name, [E], f32(Array.from({ length: E }, (_, i) => Math.cos(i + phase) * 0.1)));
  const project = (role: string, phase: number) => b.op('Add', [b.op('MatMul', [x, weight(`${role}.weight`, phase)]), bias(`${role}.bias`, phase)]);
  // Heads split: [B, S, H, D] (or [B, windows, N, H, D]), then heads moved before the positions unless the core is 'bshd'.
  const heads = (v: Value, h = H) => {
    const split = b.op('Reshape', [v, c64(N ? [0, -1, N, h, E / h] : [0, 0, h, E / h])]);
    if (o.core === 'bshd') return split;
    return b.op('Transpose', [split], { attrs: perm(N ? [0, 1, 3, 2, 4] : [0, 2, 1, 3]) });
  };
  const q = heads(project('q', 0));
  const k = heads(project('k', 1), o.badKHeads);
  const v = heads(project('v', 2));
  const lead = N ? 'bw' : 'b';
  let s: Value;
  if (o.core === 'matmul') s = b.op('MatMul', [q, b.op('Transpose', [k], { attrs: perm(N ? [0, 1, 2, 4, 3] : [0, 1, 3, 2]) })]);
  else if (o.core === 'bhsd') s = b.op('Einsum', [q, k], { attrs: eq(`${lead}hqd,${lead}hkd->${lead}hqk`) });
  else if (o.core === 'bshd') s = b.op('Einsum', [q, k], { attrs: eq(`${lead}qhd,${lead}khd->${lead}hqk`) });
  else s = b.op('Einsum', [q, k], { attrs: eq('...qd,...kd->...qk') });
  s = b.op('Mul', [s, b.constant([], f32([1 / Math.sqrt(D)]))]);
  const n = N ?? (typeof o.seq === 'number' ? o.seq : 0);
  if (o.relativeBias) {
    if (!n) throw new Error('a relative position bias needs a known window or sequence length');
    // Swin: table [(2N−1), H] indexed by (j − i + N − 1), laid out [H, N, N].
    const table = b.initializer('relative_position_bias_table', [2 * n - 1, H], f32(Array.from({ length: (2 * n - 1) * H }, (_, i) => Math.sin(i * 1.3) * 0.5)));
    const index = b.initializer('relative_position_index', [n, n], i64(Array.from({ length: n * n }, (_, i) => (i % n) - Math.floor(i / n) + n - 1)));
    const rel = b.op('Transpose', [b.op('Gather', [table, index], { attrs: { axis: { type: 'int', value: 0 } } })], { attrs: perm([2, 0, 1]) });
    s = b.op('Add', [s, rel]);
  }
  if (o.windowMask) {
    if (!N || typeof o.seq !== 'number') throw new Error('a per-window mask needs windows of a known count');
    const W = o.seq / N;
    const mask = Array.from({ length: W * N * N }, (_, i) => ((Math.floor(i / (N * N)) + (i % N)) % 3 === 0 ? -100 : 0));
    s = b.op('Add', [s, b.initializer('window_mask', [W, 1, N, N], f32(mask))]);
  }
  const p = b.op('Softmax', [s], { attrs: { axis: { type: 'int', value: -1 } } });
  let ctx: Value;
  if (o.core === 'matmul') ctx = b.op('MatMul', [p, v]);
  else if (o.core === 'bhsd') ctx = b.op('Einsum', [p, v], { attrs: eq(`${lead}hqk,${lead}hkd->${lead}hqd`) });
  else if (o.core === 'bshd') ctx = b.op('Einsum', [p, v], { attrs: eq(`${lead}hqk,${lead}khd->${lead}qhd`) });
  else ctx = b.op('Einsum', [p, v], { attrs: eq('...qk,...kd->...qd') });
  const merge = o.core === 'bshd' ? ctx : b.op('Transpose', [ctx], { attrs: perm(N ? [0, 1, 3, 2, 4] : [0, 2, 1, 3]) });
  const merged = b.op('Reshape', [merge, c64(N ? [0, -1, E] : [0, 0, E])]);
  const out = b.op('Add', [x, b.op('Add', [b.op('MatMul', [merged, weight('o.weight', 3)]), bias('o.bias', 3)])]);
  b.output(out, 'float32', ['B', o.seq ?? 'S', E]);
  return b.finish();
}
