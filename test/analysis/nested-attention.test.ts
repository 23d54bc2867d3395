// Attention inside subgraph bodies is not analysed; a report of the main graph alone said "0 attention sites" about
// an optimum merged decoder, whose whole model sits in the two branches of one If. Such nodes are now listed as
// unmatched with where they are, and the report warns once.
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/analysis/ir/builder';
import { analyzeLoaded } from '../../src/analysis/analyze';
import { buildAttentionVariant } from './attention-variants';
import { isConstantLike, isFixed } from '../../src/analysis/attention/match';
import { ShapeInfo } from '../../src/analysis/ir/shapes';

/** A body with one Softmax and, when `inner`, a Loop whose body holds a GroupQueryAttention. */
function body(name: string, inner: boolean) {
  const loop = {
    name: `${name}_loop`, opType: 'Loop', domain: '', input: ['', ''], output: [`${name}_l`],
    attribute: [{ name: 'body', type: 5, g: { name: 'lb', node: [{ name: `${name}_gqa`, opType: 'GroupQueryAttention', domain: 'com.microsoft', input: ['x'], output: ['g'] }] } }],
  };
  return {
    name,
    node: [{ name: `${name}_softmax`, opType: 'Softmax', domain: '', input: ['x'], output: [`${name}_y`] }, ...(inner ? [loop] : [])],
    output: [{ name: `${name}_y`, type: { tensorType: { elemType: 1 } } }],
  };
}

describe('attention inside subgraphs', () => {
  it('is listed as unmatched with its place, nested bodies included, and the report warns', () => {
    const b = GraphBuilder.create();
    const x = b.input('x', 'float32', [2]);
    const node = b.node('If', [b.input('use_cache_branch', 'bool', [1])], { name: 'optimum::if', outputs: ['y'] });
    node.attributes.set('then_branch', { name: 'then_branch', type: 5, g: body('with_past', true) });
    node.attributes.set('else_branch', { name: 'else_branch', type: 5, g: body('no_past', false) });
    b.output(b.op('Relu', [x]), 'float32');
    b.output('y', 'float32');
    const r = analyzeLoaded(b.finish());
    expect(r.sites).toEqual([]);
    expect(r.unmatched).toEqual([
      { node: 'with_past_softmax', reason: "inside the then_branch of If 'optimum::if': subgraphs are not analysed" },
      { node: 'with_past_gqa', reason: "inside the body of Loop 'with_past_loop' in the then_branch of If 'optimum::if': subgraphs are not analysed" },
      { node: 'no_past_softmax', reason: "inside the else_branch of If 'optimum::if': subgraphs are not analysed" },
    ]);
    expect(r.warnings.join('\n')).toMatch(/^3 softmax\/attention node\(s\) are inside subgraphs \(If 'optimum::if'\), which the analysis does not read: .*decoder_model_merged\.onnx/m);
  });

  it('a model without subgraphs gets no such entry', () => {
    const r = analyzeLoaded(buildAttentionVariant());
    expect(r.warnings.some((w) => /subgraphs/.test(w))).toBe(false);
    expect(r.unmatched.some((u) => /subgraphs/.test(u.reason))).toBe(false);
  });
});

describe('a Loop that reads a captured value', () => {
  it('is not a constant, though its inputs are a shape, a constant and nothing', () => {
    // PyTorch 1.13's repeat_interleave: the body picks slices of K from the enclosing graph, so the Loop's inputs say
    // nothing of what it outputs.
    const b = GraphBuilder.create();
    const k = b.input('k', 'float32', ['batch', 4]);
    const trips = b.op('Shape', [k]);
    const loop = b.node('Loop', [trips, null], { name: 'repeat', outputs: ['repeated'] });
    loop.attributes.set('body', { name: 'body', type: 5, g: { name: 'b', node: [{ name: 'pick', opType: 'Identity', domain: '', input: ['k'], output: ['o'] }] } });
    const ctx = { graph: b.graph, shapes: new ShapeInfo(b.graph), order: new Map() };
    const out = b.graph.values.get('repeated')!;
    expect(isConstantLike(ctx, out)).toBe(false);
    expect(isFixed(out)).toBe(false);
    // The control: a Shape alone is constant-like (it does not read the data).
    expect(isConstantLike(ctx, trips)).toBe(true);
  });
});
