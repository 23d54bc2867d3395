// The last row of a mask computed without the mask (src/rewriters/sparse/last-row.ts): on a transformers-style
// causal+padding chain (Range, Unsqueeze, LessOrEqual, Cast, And, Expand, Where) and a tail it cannot push through,
// the row equals the full mask's last row on padded batches; only the full mask's unused producers are removed.
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attr, GraphBuilder } from '../../src/analysis/ir/builder';
import type { Value } from '../../src/analysis/ir/graph';
import { saveModel } from '../../src/analysis/ir/save';
import { ShapeInfo } from '../../src/analysis/ir/shapes';
import { dropDeadMasks, lastRow } from '../../src/rewriters/sparse/last-row';
import { floats, int64Tensor, runModel, tempDir } from '../analysis/helpers/ort';
import * as ort from 'onnxruntime-node';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = tempDir('last-row'); });
afterAll(() => tmp.cleanup());

const NEG = -3.4028234663852886e38;

/** am [B, S] int64 -> the [B, 1, S, S] additive causal+padding mask, as the TorchScript export of Llama writes it. */
function maskGraph(): { b: GraphBuilder; mask: Value; extra: Value } {
  const b = GraphBuilder.create({ opsets: { '': 17 } });
  const am = b.input('am', 'int64', ['batch', 'seq']);
  const bias = b.input('bias', 'float32', [1, 1, 'seq', 'seq']);
  const i64 = (name: string, x: number[]) => b.initializer(name, [x.length], { dtype: 'int64', data: x });
  const scalar = (name: string, x: number) => b.initializer(name, [], { dtype: 'int64', data: [x] });
  const shape = b.op('Shape', [am]);
  const len = b.op('Gather', [shape, scalar('one_idx', 1)], { attrs: { axis: attr.int(0) } });
  const pos = b.op('Range', [scalar('zero', 0), len, scalar('step', 1)]);
  const keys = b.op('Unsqueeze', [pos, i64('key_axes', [0, 1, 2])]);
  const queries = b.op('Unsqueeze', [pos, i64('query_axes', [0, 1, 3])]);
  const causal = b.op('Cast', [b.op('LessOrEqual', [keys, queries])], { attrs: { to: attr.int(9) } });
  const pad = b.op('Cast', [b.op('Unsqueeze', [am, i64('pad_axes', [1, 2])])], { attrs: { to: attr.int(9) } });
  const visible = b.op('And', [causal, pad]);
  const target = b.op('Concat', [b.op('Slice', [shape, i64('s0', [0]), i64('e1', [1])]), i64('one', [1]), b.op('Slice', [shape, i64('s1', [1]), i64('e2', [2])]), b.op('Slice', [shape, i64('s1b', [1]), i64('e2b', [2])])], { attrs: { axis: attr.int(0) } });
  const expanded = b.op('Expand', [visible, target]);
  const mask = b.op('Where', [expanded, b.initializer('zero_f', [], { dtype: 'float32', data: [0] }), b.initializer('neg', [], { dtype: 'float32', data: [NEG] })], { output: 'mask' });
  // A tail the row cannot be pushed through (Softmax is not element-wise): sliced where it stands.
  const extra = b.op('Softmax', [b.op('Add', [mask, bias])], { attrs: { axis: attr.int(-1) }, output: 'extra' });
  return { b, mask, extra };
}

function feeds(batch: number, seq: number, padLeft: number[]) {
  const am: number[] = [];
  for (let r = 0; r < batch; r++) for (let j = 0; j < seq; j++) am.push(j < (padLeft[r] ?? 0) ? 0 : 1);
  const bias = Float32Array.from({ length: seq * seq }, (_, i) => Math.sin(i));
  return { am: int64Tensor(am, [batch, seq]), bias: new ort.Tensor('float32', bias, [1, 1, seq, seq]) };
}

/** x [.., R, C] -> its last row [.., 1, C]. */
function lastRowOf(x: Float32Array, rows: number, cols: number): Float32Array {
  const out: number[] = [];
  for (let o = 0; o < x.length; o += rows * cols) out.push(...x.subarray(o + (rows - 1) * cols, o + rows * cols));
  return Float32Array.from(out);
}

describe('last row of a mask', () => {
  it('equals the full mask\'s last row, on padded batches, through Where/Expand/And/Cast/LessOrEqual and past a Softmax', async () => {
    const { b, mask, extra } = maskGraph();
    const shapes = new ShapeInfo(b.graph);
    const maskRow = lastRow(b, shapes, mask, 2);
    const extraRow = lastRow(b, shapes, extra, 2);
    // Memoised: the same value again gives the same row, and the mask's chain was pushed, not sliced.
    expect(lastRow(b, shapes, mask, 2)).toBe(maskRow);
    expect(maskRow.producer?.name).toBe(`${mask.producer!.name}::last_row/op`);
    expect(b.graph.nodes.some((n) => n.opType === 'Slice' && n.inputs[0] === mask)).toBe(false);
    expect(extraRow.producer?.opType).toBe('Slice');
    b.output(mask, 'float32'); b.output(extra, 'float32'); b.output(maskRow, 'float32'); b.output(extraRow, 'float32');
    const file = path.join(tmp.dir, 'rows.onnx');
    saveModel(b.finish(), file);
    for (const [batch, seq, pads] of [[1, 7, [0]], [3, 9, [0, 4, 2]], [2, 1, [0, 0]]] as const) {
      const out = await runModel(file, feeds(batch, seq, [...pads]));
      expect(out[maskRow.name].dims).toEqual([batch, 1, 1, seq]);
      expect(Array.from(floats(out[maskRow.name]))).toEqual(Array.from(lastRowOf(floats(out.mask), seq, seq)));
      expect(Array.from(floats(out[extraRow.name]))).toEqual(Array.from(lastRowOf(floats(out.extra), seq, seq)));
    }
  });

  it('removes the full mask\'s producers once nothing reads it, and only those', () => {
    const { b, mask, extra } = maskGraph();
    const shapes = new ShapeInfo(b.graph);
    const row = lastRow(b, shapes, mask, 2);
    b.output(b.op('Identity', [row]), 'float32');
    // `extra` still reads the mask: nothing goes.
    const keep = b.op('Identity', [extra]);
    b.output(keep, 'float32');
    const before = b.graph.nodes.length;
    dropDeadMasks(b);
    expect(b.graph.nodes.length).toBe(before);
    // Once the mask is unread, its S×S producers go; the nodes the row shares with them (Shape, Range) stay.
    const c = maskGraph();
    const maskNode = c.mask.producer!.name;
    const rowC = lastRow(c.b, new ShapeInfo(c.b.graph), c.mask, 2);
    c.b.output(rowC, 'float32');
    for (const n of [c.extra.producer!, c.extra.producer!.inputs[0]!.producer!]) c.b.removeNodes([n]);
    const names = (g: GraphBuilder) => new Set(g.graph.nodes.map((n) => n.name));
    dropDeadMasks(c.b);
    const left = names(c.b);
    expect(left.has(maskNode)).toBe(false);
    expect([...left].filter((n) => /^\/?(Where|Expand|And|LessOrEqual)/.test(n) && !n.includes('::last_row'))).toEqual([]);
    expect([...left].some((n) => n.startsWith('Range'))).toBe(true);
    expect(() => c.b.finish()).not.toThrow();
  });
});
