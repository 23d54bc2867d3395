// The small values that shape propagation carries are what the analysis reads scales from when an exporter computes
// them at run time from Q's size. Their arithmetic follows the element type: integer Div truncates, float Div does
// not (1.0 / 8.0 once read as 0, which made TorchScript's SDPA decomposition at head size 64 a scale of 0), a Cast to
// an integer type truncates, and Pow is evaluated (hand-written `q.size(-1) ** -0.5` was unknown).
import { describe, expect, it } from 'vitest';
import { attr, GraphBuilder } from '../../src/analysis/ir/builder';
import { ShapeInfo } from '../../src/analysis/ir/shapes';
import type { Value } from '../../src/analysis/ir/graph';
import { f32, i64 } from '../../src/analysis/ir/tensor-data';
import { analyzeLoaded } from '../../src/analysis/analyze';
import { buildAttentionVariant } from './attention-variants';

const FLOAT = 1;
const INT64 = 7;
const BOOL = 9;

/** A graph whose `dim` is x's last dim, 64, read at run time (an int64 scalar). */
function graph(): { b: GraphBuilder; dim: Value } {
  const b = GraphBuilder.create();
  const x = b.input('x', 'float32', ['batch', 10, 64]);
  return { b, dim: b.op('Gather', [b.op('Shape', [x]), b.constant([], i64([2]))], { attrs: { axis: attr.int(0) } }) };
}

describe('values carried by shape propagation', () => {
  it('float division does not truncate; integer division does', () => {
    const { b, dim } = graph();
    const asFloat = b.op('Cast', [dim], { attrs: { to: attr.int(FLOAT) } });
    const inv = b.op('Div', [b.constant([], f32([1])), b.op('Sqrt', [asFloat])]);
    const intDiv = b.op('Div', [dim, b.constant([], i64([6]))]);
    const shapes = new ShapeInfo(b.graph);
    expect(shapes.values(inv)).toEqual([0.125]);
    expect(shapes.values(intDiv)).toEqual([10]);
  });

  it('Pow is evaluated on its base type', () => {
    const { b, dim } = graph();
    const p = b.op('Pow', [b.op('Cast', [dim], { attrs: { to: attr.int(FLOAT) } }), b.constant([], f32([-0.5]))]);
    expect(new ShapeInfo(b.graph).values(p)).toEqual([0.125]);
  });

  it('a Cast to an integer type truncates and to bool gives 0 or 1', () => {
    const b = GraphBuilder.create();
    const c = b.constant([3], f32([2.75, -1.5, 0]));
    const toInt = b.op('Cast', [c], { attrs: { to: attr.int(INT64) } });
    const toBool = b.op('Cast', [c], { attrs: { to: attr.int(BOOL) } });
    const shapes = new ShapeInfo(b.graph);
    expect(shapes.values(toInt)).toEqual([2, -1, 0]);
    expect(shapes.values(toBool)).toEqual([1, 1, 0]);
  });

  it('CastLike takes the type of a constant second input exactly; of a computed one, only integer-or-float', () => {
    const b = GraphBuilder.create({ opsets: { '': 15 } });
    const c = b.constant([2], f32([2.75, 5]));
    const toInt = b.op('CastLike', [c, b.constant([], i64([0]))]);
    const toBool = b.op('CastLike', [c, b.constant([], { dtype: 'bool', data: Uint8Array.of(0) })]);
    const computed = b.op('CastLike', [c, b.op('Shape', [b.input('x', 'float32', [3])])]);
    const shapes = new ShapeInfo(b.graph);
    expect(shapes.values(toInt)).toEqual([2, 5]);
    expect(shapes.values(toBool)).toEqual([1, 1]);
    expect(shapes.values(computed)).toBeUndefined();
  });

  it('Pad adds its pads to each axis; an axis with a pad read at run time is unknown', () => {
    const b = GraphBuilder.create();
    const x = b.input('x', 'float32', ['batch', 7, 32]);
    const known = b.op('Pad', [x, b.constant([6], i64([0, 0, 0, 0, 1, 0]))]);
    const runtime = b.op('Concat', [b.constant([2], i64([0, 0])), b.input('p', 'int64', [1]), b.constant([3], i64([0, 0, 0]))], { attrs: { axis: attr.int(0) } });
    const partly = b.op('Pad', [x, runtime]);
    const shapes = new ShapeInfo(b.graph);
    expect(shapes.shape(known)).toEqual(['batch', 8, 32]);
    expect(shapes.shape(partly)).toEqual(['batch', 7, null]);
  });
});

describe('scales computed at run time from the head size', () => {
  // 4 heads of 64: 1/sqrt(64) = 0.125, where every intermediate value is an integer held in a float tensor.
  for (const scores of ['runtime-sdpa', 'runtime-pow'] as const) {
    it(`${scores}: the scale is 1/sqrt(64)`, () => {
      const s = analyzeLoaded(buildAttentionVariant({ hidden: 256, heads: 4, scores })).sites[0];
      expect(s.headDim).toBe(64);
      expect(s.scale).toBeCloseTo(0.125, 9);
    });
  }
});
