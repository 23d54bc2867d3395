// Inputs and small models for the fuse tests: a fixture's manifest inputs widened to a batch of two with the second
// row right-padded (so masks do real work and broadcast over the batch), and a written-out soft-capped attention
// (Gemma-style: c·tanh(s·Q·Kᵀ / c), then the mask) that no shared fixture has.
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { attr, GraphBuilder } from '../../src/analysis/ir/builder';
import { saveModel } from '../../src/analysis/ir/save';
import type { FixtureTensor } from '../helpers/fixtures';
import { manifestFeeds, type Feeds } from '../analysis/helpers/ort';

/**
 * The manifest's batch-1 inputs repeated into a batch of 2; in row 1 of every attention mask the last `pad` positions
 * are 0 (right padding: every query still sees a key, the case a fused operator must reproduce exactly).
 */
export function paddedBatchFeeds(dir: string, inputs: FixtureTensor[], pad: number): Feeds {
  const one = manifestFeeds(dir, inputs);
  // Sequence-first models (batch not on axis 0) are left at batch 1.
  if (inputs.some((i) => i.shape[0] !== 1)) return one;
  const out: Feeds = {};
  for (const i of inputs) {
    const t = one[i.name];
    const row = i.shape.slice(1).reduce((a, b) => a * b, 1);
    const padRow = /mask/i.test(i.name) && i.shape.length === 2;
    let data: Float32Array | BigInt64Array | Int32Array | Uint8Array;
    if (t.data instanceof BigInt64Array) {
      data = twice(t.data, new BigInt64Array(t.data.length * 2));
      if (padRow) data.fill(0n, 2 * row - pad, 2 * row);
    } else if (t.data instanceof Float32Array) data = twice(t.data, new Float32Array(t.data.length * 2));
    else if (t.data instanceof Int32Array) data = twice(t.data, new Int32Array(t.data.length * 2));
    else if (t.data instanceof Uint8Array) data = twice(t.data, new Uint8Array(t.data.length * 2));
    else throw new Error(`input ${i.name}: no test support for ${t.type}`);
    if (padRow && !(data instanceof BigInt64Array)) data.fill(0, 2 * row - pad, 2 * row);
    out[i.name] = new ort.Tensor(t.type as 'float32', data as Float32Array, [2, ...i.shape.slice(1)]);
  }
  return out;
}

function twice<T extends { length: number; set(a: T, offset?: number): void }>(src: T, dst: T): T {
  dst.set(src, 0);
  dst.set(src, src.length);
  return dst;
}

export interface CappedShape {
  heads: number;
  dim: number;
  causal: boolean;
  softcap: number;
  opset: number;
}

/**
 * softmax(c·tanh(Q·Kᵀ·(s/c)) [+ causal mask]) · V with Q, K, V [1, H, S, D] as inputs, heads merged to [1, S, H·D] at
 * the end (so the fused operator's output replaces the merge).
 */
export function softcappedAttention(dir: string, s: CappedShape, tag: string): string {
  const b = GraphBuilder.create({ opsets: { '': s.opset }, irVersion: s.opset >= 23 ? 10 : 8 });
  const q = b.input('q', 'float32', [1, s.heads, 'seq', s.dim]);
  const k = b.input('k', 'float32', [1, s.heads, 'seq', s.dim]);
  const v = b.input('v', 'float32', [1, s.heads, 'seq', s.dim]);
  const f = (name: string, x: number) => b.initializer(name, [], { dtype: 'float32', data: [x] });
  const kt = b.op('Transpose', [k], { attrs: { perm: attr.ints([0, 1, 3, 2]) } });
  const qk = b.op('MatMul', [q, kt], { name: 'qk' });
  const inner = b.op('Mul', [qk, f('scale_over_cap', 1 / Math.sqrt(s.dim) / s.softcap)]);
  let scores = b.op('Mul', [b.op('Tanh', [inner]), f('cap', s.softcap)]);
  if (s.causal) {
    const i64 = (name: string, x: number[]) => b.initializer(name, [x.length], { dtype: 'int64', data: x });
    const len = b.op('Gather', [b.op('Shape', [q]), b.initializer('axis2', [], { dtype: 'int64', data: [2] })], { attrs: { axis: attr.int(0) } });
    const pos = b.op('Range', [b.initializer('zero', [], { dtype: 'int64', data: [0] }), len, b.initializer('one', [], { dtype: 'int64', data: [1] })]);
    const col = b.op('Unsqueeze', [pos, i64('ax1', [1])]);
    const row = b.op('Unsqueeze', [pos, i64('ax0', [0])]);
    const bias = b.op('Where', [b.op('LessOrEqual', [row, col]), f('zero_f', 0), f('neg', -3.4028234663852886e38)]);
    scores = b.op('Add', [scores, bias]);
  }
  const p = b.op('Softmax', [scores], { name: 'softmax', attrs: { axis: attr.int(-1) } });
  const pv = b.op('MatMul', [p, v], { name: 'pv' });
  const merged = b.op('Transpose', [pv], { attrs: { perm: attr.ints([0, 2, 1, 3]) } });
  const out = b.op('Reshape', [merged, b.initializer('merge_shape', [3], { dtype: 'int64', data: [0, 0, s.heads * s.dim] })], { output: 'out' });
  b.output(out, 'float32', [1, 'seq', s.heads * s.dim]);
  const file = path.join(dir, `${tag}.onnx`);
  saveModel(b.finish(), file);
  return file;
}
