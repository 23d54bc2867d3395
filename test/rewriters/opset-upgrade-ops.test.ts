// Every conversion of the opset upgrade, on small models at opsets 9 to 12 built with the GraphBuilder: the model and
// its upgrade to 13 run in onnxruntime on the same inputs and agree (within 1e-6; they are exact in practice). Each
// case is chosen so that a version bump without the conversion would fail: onnxruntime rejects attributes that opset
// 13 turned into inputs, and Softmax on a non-last axis, Upsample and Resize-10 compute something else at 13 with
// default attributes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attr, type GraphBuilder } from '../../src/analysis/ir/builder';
import type { Value } from '../../src/analysis/ir/graph';
import { tempDir } from '../analysis/helpers/ort';
import { compareUpgrade, oldModel, randomFeeds } from './opset-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = tempDir('opset-ops'); });
afterAll(() => tmp.cleanup());

const INT64_MAX = 9223372036854775807n;

interface Case {
  opset: number;
  name: string;
  inputs: Record<string, number[]>;
  build(b: GraphBuilder, x: Record<string, Value>): void;
  /** Nodes the upgrade must convert, by op. */
  converted: Record<string, number>;
}

const out = (b: GraphBuilder, v: Value, dtype: 'float32' | 'int64' = 'float32') => b.output(v, dtype);
const f32 = (b: GraphBuilder, name: string, dims: number[], data: number[]) => b.initializer(name, dims, { dtype: 'float32', data });

const CASES: Case[] = [
  {
    opset: 9, name: 'Slice with attributes: negative, INT64_MAX and out-of-range bounds, with and without axes',
    inputs: { x: [4, 5, 6] }, converted: { Slice: 3 },
    build(b, { x }) {
      out(b, b.op('Slice', [x], { attrs: { starts: attr.ints([1, -4]), ends: attr.ints([INT64_MAX, -1]), axes: attr.ints([0, 2]) } }));
      out(b, b.op('Slice', [x], { attrs: { starts: attr.ints([0, 1]), ends: attr.ints([2, 1000]) } }));
      out(b, b.op('Slice', [x], { attrs: { starts: attr.ints([-1000]), ends: attr.ints([-2]), axes: attr.ints([1]) } }));
    },
  },
  {
    opset: 9, name: 'TopK with its k attribute', inputs: { x: [3, 7] }, converted: { TopK: 1 },
    build(b, { x }) {
      const top = b.node('TopK', [x], { attrs: { k: attr.int(3), axis: attr.int(1) }, outputs: 2 });
      out(b, top.outputs[0]);
      out(b, top.outputs[1], 'int64');
    },
  },
  {
    opset: 9, name: 'Clip with min and max, max only, min only (one input typed only through its producer)',
    inputs: { x: [4, 5] }, converted: { Clip: 3 },
    build(b, { x }) {
      out(b, b.op('Clip', [x], { attrs: { min: attr.float(-0.5), max: attr.float(0.7) } }));
      out(b, b.op('Clip', [x], { attrs: { max: attr.float(0.2) } }));
      out(b, b.op('Clip', [b.op('Mul', [x, x])], { attrs: { min: attr.float(0.1) } }));
    },
  },
  {
    opset: 9, name: 'Pad: constant with a value, constant by default, reflect, edge', inputs: { x: [2, 3, 4] }, converted: { Pad: 4 },
    build(b, { x }) {
      out(b, b.op('Pad', [x], { attrs: { pads: attr.ints([0, 1, 2, 0, 2, 1]), value: attr.float(1.5) } }));
      out(b, b.op('Pad', [x], { attrs: { pads: attr.ints([1, 0, 0, 0, 0, 1]) } }));
      out(b, b.op('Pad', [x], { attrs: { pads: attr.ints([0, 0, 1, 0, 0, 2]), mode: attr.string('reflect') } }));
      out(b, b.op('Pad', [x], { attrs: { pads: attr.ints([0, 1, 0, 0, 1, 0]), mode: attr.string('edge') } }));
    },
  },
  {
    opset: 9, name: 'Dropout with a ratio attribute', inputs: { x: [3, 4] }, converted: { Dropout: 1 },
    build(b, { x }) {
      out(b, b.op('Add', [b.op('Dropout', [x], { attrs: { ratio: attr.float(0.3) } }), x]));
    },
  },
  {
    opset: 9, name: 'Upsample nearest and linear, written as Resize', inputs: { x: [1, 2, 3, 4] }, converted: { Upsample: 2 },
    build(b, { x }) {
      out(b, b.op('Upsample', [x, f32(b, 'nearest_scales', [4], [1, 1, 2, 3])], { attrs: { mode: attr.string('nearest') } }));
      out(b, b.op('Upsample', [x, f32(b, 'linear_scales', [4], [1, 1, 2, 2])], { attrs: { mode: attr.string('linear') } }));
    },
  },
  {
    opset: 9, name: 'Scatter, renamed ScatterElements', inputs: { x: [3, 4], u: [2, 3] }, converted: { Scatter: 1 },
    build(b, { x, u }) {
      const idx = b.initializer('idx', [2, 3], { dtype: 'int64', data: [1, 0, 2, 0, 3, 1] });
      out(b, b.op('Scatter', [x, idx, u], { attrs: { axis: attr.int(1) } }));
    },
  },
  {
    opset: 9, name: 'Softmax, LogSoftmax (default axis) and Hardmax on non-last axes of a 4-D tensor; Softmax on the last axis',
    inputs: { x: [2, 3, 4, 5] }, converted: { Softmax: 1, LogSoftmax: 1, Hardmax: 1 },
    build(b, { x }) {
      out(b, b.op('Softmax', [x], { attrs: { axis: attr.int(1) } }));
      const ls = b.op('LogSoftmax', [x]);
      // A declared shape for the LogSoftmax output: it must stay with the 4-D value, not the 2-D one the upgrade adds.
      b.graph.proto.valueInfo = [{ name: ls.name, type: { tensorType: { elemType: 1, shape: { dim: [2, 3, 4, 5].map((d) => ({ dimValue: d })) } } } }];
      out(b, b.op('Neg', [ls]));
      out(b, b.op('Hardmax', [x], { attrs: { axis: attr.int(2) } }));
      out(b, b.op('Softmax', [x], { attrs: { axis: attr.int(3) } }));
      out(b, b.op('Softmax', [x], { attrs: { axis: attr.int(-1) } }));
    },
  },
  {
    opset: 9, name: 'Split with and without its split attribute', inputs: { x: [4, 5] }, converted: { Split: 1 },
    build(b, { x }) {
      for (const v of b.node('Split', [x], { attrs: { axis: attr.int(1), split: attr.ints([2, 3]) }, outputs: 2 }).outputs) out(b, v);
      for (const v of b.node('Split', [x], { attrs: { axis: attr.int(0) }, outputs: 2 }).outputs) out(b, v);
    },
  },
  {
    opset: 9, name: 'Squeeze without and with axes; Unsqueeze', inputs: { x: [1, 3, 1, 4] }, converted: { Squeeze: 1, Unsqueeze: 1 },
    build(b, { x }) {
      const all = b.op('Squeeze', [x]);
      out(b, all);
      out(b, b.op('Squeeze', [x], { attrs: { axes: attr.ints([0]) } }));
      out(b, b.op('Unsqueeze', [all], { attrs: { axes: attr.ints([0, 3]) } }));
    },
  },
  {
    opset: 9, name: 'ReduceSum with axes and keepdims 0; without axes', inputs: { x: [2, 3, 4] }, converted: { ReduceSum: 1 },
    build(b, { x }) {
      out(b, b.op('ReduceSum', [x], { attrs: { axes: attr.ints([1]), keepdims: attr.int(0) } }));
      out(b, b.op('ReduceSum', [x], { attrs: { keepdims: attr.int(1) } }));
    },
  },
  {
    opset: 10, name: 'Resize-10 nearest enlarging and shrinking, linear', inputs: { x: [1, 2, 4, 5] }, converted: { Resize: 3 },
    build(b, { x }) {
      out(b, b.op('Resize', [x, f32(b, 'up', [4], [1, 1, 2, 3])], { attrs: { mode: attr.string('nearest') } }));
      // 5 -> 3 columns at scale 0.6: source columns 0, 1.67, 3.33, where rounding up and down differ.
      out(b, b.op('Resize', [x, f32(b, 'down', [4], [1, 1, 0.5, 0.6])], { attrs: { mode: attr.string('nearest') } }));
      out(b, b.op('Resize', [x, f32(b, 'lin', [4], [1, 1, 1.5, 2])], { attrs: { mode: attr.string('linear') } }));
    },
  },
  {
    opset: 10, name: 'Slice and TopK already in input form; Dropout; Softmax on axis 1', inputs: { x: [3, 4, 5] },
    converted: { Dropout: 1, Softmax: 1 },
    build(b, { x }) {
      const i64 = (name: string, data: number[]) => b.initializer(name, [data.length], { dtype: 'int64', data });
      out(b, b.op('Slice', [x, i64('st', [1]), i64('en', [3]), i64('ax', [2])]));
      const top = b.node('TopK', [x, i64('k', [2])], { attrs: { axis: attr.int(-1) }, outputs: 2 });
      out(b, top.outputs[0]);
      out(b, b.op('Dropout', [x], { attrs: { ratio: attr.float(0.1) } }));
      out(b, b.op('Softmax', [x], { attrs: { axis: attr.int(1) } }));
    },
  },
  {
    opset: 11, name: 'Split, Squeeze, Unsqueeze and ReduceSum with negative axes; Softmax on its default axis',
    inputs: { x: [2, 1, 6] }, converted: { Split: 1, Squeeze: 1, Unsqueeze: 1, ReduceSum: 1, Softmax: 1 },
    build(b, { x }) {
      for (const v of b.node('Split', [x], { attrs: { axis: attr.int(-1), split: attr.ints([2, 4]) }, outputs: 2 }).outputs) out(b, v);
      const sq = b.op('Squeeze', [x], { attrs: { axes: attr.ints([-2]) } });
      out(b, b.op('Unsqueeze', [sq], { attrs: { axes: attr.ints([-1]) } }));
      out(b, b.op('ReduceSum', [x], { attrs: { axes: attr.ints([-1]), keepdims: attr.int(1) } }));
      out(b, b.op('Softmax', [x]));
    },
  },
  {
    opset: 11, name: 'Clip and Pad in input form, Resize-11 linear, Dropout with a ratio', inputs: { x: [1, 2, 3, 4] }, converted: { Dropout: 1 },
    build(b, { x }) {
      out(b, b.op('Clip', [x, f32(b, 'lo', [], [-0.3]), f32(b, 'hi', [], [0.4])]));
      const pads = b.initializer('pads', [8], { dtype: 'int64', data: [0, 0, 1, 1, 0, 0, 1, 1] });
      out(b, b.op('Pad', [x, pads, f32(b, 'cv', [], [2])]));
      out(b, b.op('Resize', [x, f32(b, 'roi', [0], []), f32(b, 'sc', [4], [1, 1, 2, 1.5])], { attrs: { mode: attr.string('linear') } }));
      out(b, b.op('Dropout', [x], { attrs: { ratio: attr.float(0.2) } }));
    },
  },
  {
    opset: 12, name: 'Split, Squeeze, Unsqueeze, ReduceSum; Softmax and LogSoftmax on axis 1 of 3-D', inputs: { x: [2, 3, 1] },
    converted: { Split: 1, Squeeze: 1, Unsqueeze: 1, ReduceSum: 1, Softmax: 1, LogSoftmax: 1 },
    build(b, { x }) {
      for (const v of b.node('Split', [x], { attrs: { axis: attr.int(1), split: attr.ints([1, 2]) }, outputs: 2 }).outputs) out(b, v);
      const sq = b.op('Squeeze', [x], { attrs: { axes: attr.ints([2]) } });
      out(b, b.op('Unsqueeze', [sq], { attrs: { axes: attr.ints([0]) } }));
      out(b, b.op('ReduceSum', [x], { attrs: { axes: attr.ints([0, 2]), keepdims: attr.int(0) } }));
      out(b, b.op('Softmax', [x], { attrs: { axis: attr.int(1) } }));
      out(b, b.op('LogSoftmax', [x], { attrs: { axis: attr.int(-2) } }));
    },
  },
];

describe('opset upgrade: each converted op computes what it did', () => {
  it.each(CASES.map((c) => [`opset ${c.opset}: ${c.name}`, c] as const))('%s', async (_label, c) => {
    const b = oldModel(c.opset);
    const x: Record<string, Value> = {};
    for (const [name, dims] of Object.entries(c.inputs)) x[name] = b.input(name, 'float32', dims);
    c.build(b, x);
    const r = await compareUpgrade(b, randomFeeds(c.inputs), tmp.dir, `case-${CASES.indexOf(c)}`);
    expect(r.upgrade.from).toBe(c.opset);
    expect(r.upgrade.to).toBe(13);
    expect(r.upgrade.irVersion.to).toBeGreaterThanOrEqual(7);
    expect(r.upgrade.converted).toEqual(c.converted);
    expect(r.maxDiff).toBeLessThanOrEqual(1e-6);
  });
});
