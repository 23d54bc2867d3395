// A small causal self-attention with a Llama-style rotary embedding written out (x·cos + rotate_half(x)·sin on the
// head-split [1, H, S, D] tensors), built with GraphBuilder so that the tables can be what no shared fixture has:
// computed at run time from positions (the proof `fuse` needs), constants with equal or unequal halves, or graph
// inputs (nothing provable). Optionally rotate_half cuts with Split instead of Slice, and the rotated K is also a graph
// output (as a present_key would be).
import * as path from 'node:path';
import { attr, GraphBuilder } from '../../src/analysis/ir/builder';
import type { Value } from '../../src/analysis/ir/graph';
import { saveModel } from '../../src/analysis/ir/save';
import { Rng } from '../../src/analysis/numeric/random';

export type TableKind = 'computed' | 'equal-constant' | 'unequal-constant' | 'input';

export interface RotaryShape {
  heads: number;
  dim: number;
  /** Sequence length: fixed when the tables are constants, symbolic otherwise. */
  seq: number;
  tables: TableKind;
  split?: boolean;
  presentK?: boolean;
}

export function rotaryAttention(dir: string, s: RotaryShape, tag: string): string {
  const b = GraphBuilder.create({ opsets: { '': 17 }, irVersion: 8 });
  const hidden = s.heads * s.dim;
  const half = s.dim / 2;
  const rng = new Rng(11);
  const i64 = (name: string, x: number[]) => b.initializer(name, [x.length], { dtype: 'int64', data: x });
  const f = (name: string, x: number) => b.initializer(name, [], { dtype: 'float32', data: [x] });
  const weight = (name: string) => b.initializer(name, [hidden, hidden], { dtype: 'float32', data: Array.from({ length: hidden * hidden }, () => rng.normal() / Math.sqrt(hidden)) });
  const seqDim = s.tables === 'computed' || s.tables === 'input' ? 'seq' : s.seq;
  const x = b.input('x', 'float32', ['batch', seqDim, hidden]);
  const heads = (v: Value) => b.op('Transpose', [b.op('Reshape', [v, i64(`split_${v.name}`, [0, 0, s.heads, s.dim])])], { attrs: { perm: attr.ints([0, 2, 1, 3]) } });
  const [cos, sin] = tables(b, s, x, rng);

  const rotateHalf = (t: Value, w: string): Value => {
    let lo: Value;
    let hi: Value;
    if (s.split) {
      const parts = b.node('Split', [t, i64(`halves_${w}`, [half, half])], { attrs: { axis: attr.int(-1) }, outputs: 2 }).outputs;
      [lo, hi] = parts;
    } else {
      lo = b.op('Slice', [t, i64(`lo_s_${w}`, [0]), i64(`lo_e_${w}`, [half]), i64(`lo_a_${w}`, [3]), i64(`lo_st_${w}`, [1])]);
      hi = b.op('Slice', [t, i64(`hi_s_${w}`, [half]), i64(`hi_e_${w}`, [9007199254740991]), i64(`hi_a_${w}`, [3]), i64(`hi_st_${w}`, [1])]);
    }
    return b.op('Concat', [b.op('Neg', [hi]), lo], { attrs: { axis: attr.int(-1) } });
  };
  const rope = (t: Value, w: string) => b.op('Add', [b.op('Mul', [t, cos]), b.op('Mul', [rotateHalf(t, w), sin])], { name: `rope_${w}` });

  const q = rope(heads(b.op('MatMul', [x, weight('wq')])), 'q');
  const k = rope(heads(b.op('MatMul', [x, weight('wk')])), 'k');
  const v = heads(b.op('MatMul', [x, weight('wv')]));
  const kt = b.op('Transpose', [k], { attrs: { perm: attr.ints([0, 1, 3, 2]) } });
  const scores = b.op('Mul', [b.op('MatMul', [q, kt], { name: 'qk' }), f('scale', 1 / Math.sqrt(s.dim))]);
  const masked = b.op('Add', [scores, causalBias(b, x)]);
  const p = b.op('Softmax', [masked], { name: 'softmax', attrs: { axis: attr.int(-1) } });
  const merged = b.op('Transpose', [b.op('MatMul', [p, v], { name: 'pv' })], { attrs: { perm: attr.ints([0, 2, 1, 3]) } });
  const attn = b.op('Reshape', [merged, i64('merge_shape', [0, 0, hidden])]);
  b.output(b.op('MatMul', [attn, weight('wo')], { output: 'out' }), 'float32', ['batch', seqDim, hidden]);
  if (s.presentK) b.output(b.op('Identity', [k], { output: 'present_key' }), 'float32', ['batch', s.heads, seqDim, s.dim]);
  const file = path.join(dir, `${tag}.onnx`);
  saveModel(b.finish(), file);
  return file;
}

/** cos and sin as [1, 1, S, D], of the kind asked for. */
function tables(b: GraphBuilder, s: RotaryShape, x: Value, rng: Rng): [Value, Value] {
  const half = s.dim / 2;
  const freq = Array.from({ length: half }, (_, i) => 10000 ** (-(2 * i) / s.dim));
  if (s.tables === 'input') return [b.input('cos', 'float32', [1, 1, 'seq', s.dim]), b.input('sin', 'float32', [1, 1, 'seq', s.dim])];
  if (s.tables === 'computed') {
    const len = b.op('Gather', [b.op('Shape', [x]), b.initializer('axis1', [], { dtype: 'int64', data: [1] })], { attrs: { axis: attr.int(0) } });
    const pos = b.op('Cast', [b.op('Range', [b.initializer('zero', [], { dtype: 'int64', data: [0] }), len, b.initializer('one', [], { dtype: 'int64', data: [1] })])], { attrs: { to: attr.int(1) } });
    const angles = b.op('Mul', [b.op('Unsqueeze', [pos, b.initializer('ax1', [1], { dtype: 'int64', data: [1] })]), b.initializer('inv_freq', [1, half], { dtype: 'float32', data: freq })]);
    const full = b.op('Concat', [angles, angles], { attrs: { axis: attr.int(-1) } });
    const to4d = (t: Value) => b.op('Unsqueeze', [b.op('Mul', [t, b.initializer(`scaling_${t.name}`, [], { dtype: 'float32', data: [1] })]), b.initializer(`ax01_${t.name}`, [2], { dtype: 'int64', data: [0, 1] })]);
    return [to4d(b.op('Cos', [full])), to4d(b.op('Sin', [full]))];
  }
  const table = (fn: (a: number) => number, name: string) => {
    const data: number[] = [];
    for (let p = 0; p < s.seq; p++) {
      for (let i = 0; i < s.dim; i++) data.push(fn(p * freq[i % half]) + (s.tables === 'unequal-constant' && i >= half ? 0.01 * rng.normal() : 0));
    }
    return b.initializer(name, [1, 1, s.seq, s.dim], { dtype: 'float32', data });
  };
  return [table(Math.cos, 'cos_table'), table(Math.sin, 'sin_table')];
}

/** 0 where key j ≤ query i, the lowest float32 elsewhere: [S, S]. */
function causalBias(b: GraphBuilder, x: Value): Value {
  const i64 = (name: string, v: number[]) => b.initializer(name, [v.length], { dtype: 'int64', data: v });
  const len = b.op('Gather', [b.op('Shape', [x]), b.initializer('mask_axis', [], { dtype: 'int64', data: [1] })], { attrs: { axis: attr.int(0) } });
  const pos = b.op('Range', [b.initializer('mask_zero', [], { dtype: 'int64', data: [0] }), len, b.initializer('mask_one', [], { dtype: 'int64', data: [1] })]);
  const visible = b.op('LessOrEqual', [b.op('Unsqueeze', [pos, i64('mask_ax0', [0])]), b.op('Unsqueeze', [pos, i64('mask_ax1', [1])])]);
  const [zero, low] = [b.initializer('mask_zero_f', [], { dtype: 'float32', data: [0] }), b.initializer('mask_low', [], { dtype: 'float32', data: [-3.4028234663852886e38] })];
  return b.op('Where', [visible, zero, low]);
}
