// Self-attention over one packed QKV projection, taken apart the ways exporters write it — timm's Reshape to
// [B, S, 3, H, D], Transpose and Gather; Slice of the features; Split — with heads kept on their own axis or folded into
// the batch (torch.nn), batch-first or sequence-first. Q, K and V carry different weights, so a wrong head map
// changes the outputs.
import { GraphBuilder } from '../../src/analysis/ir/builder';
import type { Value } from '../../src/analysis/ir/graph';
import type { Model } from '../../src/analysis/ir/load';
import { f32, i64 } from '../../src/analysis/ir/tensor-data';

export interface PackedOptions {
  cut: 'gather' | 'slice' | 'split';
  /** Heads folded into the batch axis ([B·H, S, D]) instead of their own axis (with the slice and split cuts). */
  folded?: boolean;
  seqFirst?: boolean;
  /** Q negated between the projection and the core: a computation (as rotary embedding is) on the path. */
  negateQ?: boolean;
  /** K cut to this many heads instead of the model's (slice cut): a site whose dims disagree. */
  badKHeads?: number;
}

export const PACKED = { heads: 4, headDim: 8, hidden: 32 };

const perm = (p: number[]) => ({ perm: { type: 'ints' as const, value: p } });

export function buildPackedAttention(o: PackedOptions): Model {
  const { heads: H, headDim: D, hidden: E } = PACKED;
  const b = GraphBuilder.create({ opsets: { '': 17 } });
  const c64 = (vals: number[]) => b.constant([vals.length], i64(vals));
  const x = b.input('x', 'float32', o.seqFirst ? ['S', 'B', E] : ['B', 'S', E]);
  // Batch-first internally, as both layouts reach the projection: [B, S, E].
  const xb = o.seqFirst ? b.op('Transpose', [x], { attrs: perm([1, 0, 2]) }) : x;
  const w = b.initializer('qkv.weight', [E, 3 * E], f32(Array.from({ length: 3 * E * E }, (_, i) => Math.sin(i * 0.37) * 0.2)));
  const bias = b.initializer('qkv.bias', [3 * E], f32(Array.from({ length: 3 * E }, (_, i) => Math.cos(i) * 0.1)));
  const qkv = b.op('Add', [b.op('MatMul', [xb, w]), bias]);
  // [B, S, h·D] to [B, h, S, D]; folded as torch.nn does it: [S, B, h·D] viewed as [S, B·h, D], then [B·h, S, D].
  const heads = (v: Value, h: number) => o.folded
    ? b.op('Transpose', [b.op('Reshape', [b.op('Transpose', [v], { attrs: perm([1, 0, 2]) }), c64([0, -1, D])])], { attrs: perm([1, 0, 2]) })
    : b.op('Transpose', [b.op('Reshape', [v, c64([0, 0, h, D])])], { attrs: perm([0, 2, 1, 3]) });
  let q: Value;
  let k: Value;
  let v: Value;
  if (o.cut === 'gather') {
    const t = b.op('Transpose', [b.op('Reshape', [qkv, c64([0, 0, 3, H, D])])], { attrs: perm([2, 0, 3, 1, 4]) });
    [q, k, v] = [0, 1, 2].map((i) => b.op('Gather', [t, b.constant([], i64([i]))], { attrs: { axis: { type: 'int', value: 0 } } }));
  } else {
    const parts = o.cut === 'split'
      ? b.node('Split', [qkv, c64([E, E, E])], { outputs: 3, attrs: { axis: { type: 'int', value: -1 } } }).outputs
      : [0, 1, 2].map((i) => b.op('Slice', [qkv, c64([i * E]), c64([i === 1 && o.badKHeads ? E + o.badKHeads * D : (i + 1) * E]), c64([-1])]));
    [q, k, v] = [heads(parts[0], H), heads(parts[1], o.badKHeads ?? H), heads(parts[2], H)];
  }
  if (o.negateQ) q = b.op('Neg', [q]);
  const kt = b.op('Transpose', [k], { attrs: perm(o.folded ? [0, 2, 1] : [0, 1, 3, 2]) });
  const s = b.op('Mul', [b.op('MatMul', [q, kt]), b.constant([], f32([1 / Math.sqrt(D)]))]);
  const p = b.op('Softmax', [s], { attrs: { axis: { type: 'int', value: -1 } } });
  const ctx = b.op('MatMul', [p, v]);
  const merged = o.folded
    ? b.op('Transpose', [b.op('Reshape', [b.op('Transpose', [ctx], { attrs: perm([1, 0, 2]) }), c64([0, -1, E])])], { attrs: perm([1, 0, 2]) })
    : b.op('Reshape', [b.op('Transpose', [ctx], { attrs: perm([0, 2, 1, 3]) }), c64([0, 0, E])]);
  const wo = b.initializer('proj.weight', [E, E], f32(Array.from({ length: E * E }, (_, i) => Math.cos(i * 0.11) * 0.2)));
  let out = b.op('Add', [xb, b.op('MatMul', [merged, wo])]);
  if (o.seqFirst) out = b.op('Transpose', [out], { attrs: perm([1, 0, 2]) });
  b.output(out, 'float32', o.seqFirst ? ['S', 'B', E] : ['B', 'S', E]);
  return b.finish();
}
