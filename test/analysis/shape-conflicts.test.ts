// The check behind refusing a head rewrite whose result would fail at run time: known sizes that cannot broadcast,
// or a product whose contracted sizes differ. Unknown sizes and sizes of 1 never conflict.
import { describe, expect, it } from 'vitest';
import { attr, GraphBuilder } from '../../src/analysis/ir/builder';
import { shapeConflicts } from '../../src/analysis/ir/shape-conflicts';
import { ShapeInfo } from '../../src/analysis/ir/shapes';

function conflicts(build: (b: GraphBuilder) => void): string[] {
  const b = GraphBuilder.create({ opsets: { '': 17 } });
  build(b);
  return [...shapeConflicts(b.model.graph, new ShapeInfo(b.model.graph)).values()];
}

describe('shape conflicts', () => {
  it('names an element-wise op combining 3 heads with 4, and a product of 8 columns by 6 rows', () => {
    const found = conflicts((b) => {
      const q = b.input('q', 'float32', ['batch', 'seq', 3, 8]);
      b.op('Add', [q, b.input('u', 'float32', [4, 8])], { name: 'add_u' });
      b.op('MatMul', [b.input('x', 'float32', ['batch', 'seq', 8]), b.input('w', 'float32', [6, 2])], { name: 'proj' });
    });
    expect(found).toEqual(["Add 'add_u' combines [?, ?, 3, 8] with [4, 8]", "MatMul 'proj' multiplies [?, ?, 8] by [6, 2]"]);
  });

  it('broadcasting over 1, unknown sizes and matching products are fine', () => {
    expect(conflicts((b) => {
      const q = b.input('q', 'float32', ['batch', 'seq', 4, 8]);
      b.op('Add', [q, b.input('u', 'float32', [1, 8])]);
      b.op('Mul', [q, b.input('s', 'float32', ['batch', 1, 'heads', 8])]);
      b.op('MatMul', [b.input('x', 'float32', ['batch', 'seq', 8]), b.input('w', 'float32', [8, 2])]);
    })).toEqual([]);
  });
});

describe('the shapes the check reads', () => {
  it("ONNX Attention with 3-D inputs and fewer KV heads gives q_num_heads of V's head size, not V's width", () => {
    const b = GraphBuilder.create({ opsets: { '': 23 } });
    const q = b.input('q', 'float32', ['batch', 'seq', 128]);
    const kv = b.input('kv', 'float32', ['batch', 'seq', 64]);
    const out = b.op('Attention', [q, kv, kv], { attrs: { q_num_heads: attr.int(4), kv_num_heads: attr.int(2) } });
    b.op('MatMul', [out, b.input('wo', 'float32', [128, 128])], { name: 'o_proj' });
    const shapes = new ShapeInfo(b.model.graph);
    expect(shapes.shape(out)).toEqual(['batch', 'seq', 128]);
    expect([...shapeConflicts(b.model.graph, shapes).values()]).toEqual([]);
  });
});

