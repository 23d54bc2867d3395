// Regression tests for shape inference on hostile attribute values (found by the fuzzer): an axis of 2^31 - 1 made
// Concat write a sparse array of that length, and the next pass over it never finished; declared dims of 2^31 did the
// same through the values of shape vectors. Such nodes now get no facts, quickly.
import { describe, expect, it } from 'vitest';
import { attr, GraphBuilder } from '../../src/analysis/ir/builder';
import { ShapeInfo } from '../../src/analysis/ir/shapes';
import { detectAttention } from '../../src/analysis/attention/detect';

function timed<T>(fn: () => T): { value: T; ms: number } {
  const t0 = performance.now();
  const value = fn();
  return { value, ms: performance.now() - t0 };
}

describe('shape inference with out-of-range axes and huge dims', () => {
  for (const axis of [2 ** 31 - 1, 7, -9]) {
    it(`Concat of shape vectors with axis ${axis}: no facts, no hang`, () => {
      const b = GraphBuilder.create();
      const x = b.input('x', 'float32', ['batch', 3]);
      const s = b.op('Shape', [x]);
      const c = b.op('Concat', [s, s], { attrs: { axis: attr.int(axis) } });
      const r = b.op('Reshape', [x, c]);
      const y = b.op('Softmax', [r]);
      b.output(y, 'float32');
      const { value: shapes, ms } = timed(() => new ShapeInfo(b.graph));
      expect(shapes.shape(c)).toBeUndefined();
      expect(shapes.values(c)).toBeUndefined();
      expect(ms).toBeLessThan(1000);
      // The control: the same graph with axis 0 is understood.
      const ok = GraphBuilder.create();
      const x0 = ok.input('x', 'float32', ['batch', 3]);
      const s0 = ok.op('Shape', [x0]);
      const c0 = ok.op('Concat', [s0, s0], { attrs: { axis: attr.int(0) } });
      expect(new ShapeInfo(ok.graph).values(c0)).toEqual(['batch', 3, 'batch', 3]);
      // Detection over the hostile graph finishes too.
      expect(timed(() => detectAttention(b.graph)).ms).toBeLessThan(1000);
    });
  }

  it('Concat of a declared 2^31-long vector: no values are spelled out', () => {
    const b = GraphBuilder.create();
    const v = b.input('v', 'int64', [2 ** 31 - 1]);
    const w = b.input('w', 'int64', [2]);
    const c = b.op('Concat', [v, w], { attrs: { axis: attr.int(0) } });
    const { value: shapes, ms } = timed(() => new ShapeInfo(b.graph));
    expect(shapes.shape(c)).toEqual([2 ** 31 + 1]);
    expect(shapes.values(c)).toBeUndefined();
    expect(ms).toBeLessThan(1000);
  });

  it('a Transpose whose perm is for another rank: no shape (the perm indexed axes that are not there)', () => {
    const b = GraphBuilder.create();
    const x = b.input('x', 'float32', [2, 3]);
    const t = b.op('Transpose', [x], { attrs: { perm: attr.ints([0, 2, 1, 3]) } });
    const ok = b.op('Transpose', [x], { attrs: { perm: attr.ints([1, 0]) } });
    const shapes = new ShapeInfo(b.graph);
    expect(shapes.shape(t)).toBeUndefined();
    expect(shapes.shape(ok)).toEqual([3, 2]);
  });
});

describe('convolution output lengths', () => {
  const conv = (len: string | number, attrs: Record<string, ReturnType<typeof attr.ints>>) => {
    const b = GraphBuilder.create();
    const x = b.input('x', 'float32', ['batch', 4, len]);
    const w = b.initializer('w', [4, 4, 3], { dtype: 'float32', data: new Float32Array(48) });
    const y = b.op('Conv', [x, w], { attrs });
    return new ShapeInfo(b.graph).shape(y);
  };

  it('over an open length: the same symbol where the length is kept, one named after the computation where it is not', () => {
    expect(conv('frames', { pads: attr.ints([1, 1]) })).toEqual(['batch', 4, 'frames']);
    const strided = conv('frames', { strides: attr.ints([2]), pads: attr.ints([1, 1]) });
    expect(strided?.[2]).toBe('floor((frames-1)/2)+1');
    // Two convolutions alike over one length agree; another stride does not.
    expect(conv('frames', { strides: attr.ints([2]), pads: attr.ints([1, 1]) })).toEqual(strided);
    expect(conv('frames', { strides: attr.ints([3]), pads: attr.ints([1, 1]) })?.[2]).not.toBe(strided?.[2]);
    // The numbers follow the same rule: floor((9 + 2 - 3) / 2) + 1 = 5.
    expect(conv(9, { strides: attr.ints([2]), pads: attr.ints([1, 1]) })?.[2]).toBe(5);
  });

  it('a zero stride (a hostile file) gives no length, not an infinite one', () => {
    expect(conv(9, { strides: attr.ints([0]) })?.[2]).toBeNull();
    expect(conv('frames', { strides: attr.ints([0]) })?.[2]).toBeNull();
  });
});
