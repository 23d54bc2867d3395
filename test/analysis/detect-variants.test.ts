import { describe, expect, it } from 'vitest';
import { analyzeLoaded } from '../../src/analysis/analyze';
import { GraphBuilder } from '../../src/analysis/ir/builder';
import { f32 } from '../../src/analysis/ir/tensor-data';
import { buildAttentionVariant, type VariantOptions } from './attention-variants';

describe('detection beyond the fixtures', () => {
  it('reads a scale written as Div by sqrt(d)', () => {
    const r = analyzeLoaded(buildAttentionVariant({ scores: 'div' }));
    expect(r.sites).toHaveLength(1);
    expect(r.sites[0]).toMatchObject({ heads: 4, kvHeads: 4, headDim: 16, causal: false, maskType: 'none' });
    expect(r.sites[0].scale).toBeCloseTo(0.25, 6);
  });

  it("binds Paddle's reshapes, where 0 copies the input's dim ([0, 0, heads, d] and [0, 0, hidden])", () => {
    const s = analyzeLoaded(buildAttentionVariant({ zeroCopy: true })).sites[0];
    expect(s).toMatchObject({ heads: 4, kvHeads: 4, headDim: 16, maskType: 'none' });
    expect(s.binding).toMatchObject({ batch: 'batch', queryPositions: 'sequence', keyPositions: 'sequence' });
  });

  it('reads logit soft-capping (tanh) and keeps the scale apart from the cap', () => {
    const s = analyzeLoaded(buildAttentionVariant({ scores: 'softcap', softcap: 30 })).sites[0];
    expect(s.softcap).toBeCloseTo(30, 5);
    expect(s.scale).toBeCloseTo(0.25, 6);
  });

  it('reads a T5-style relative position bias', () => {
    const s = analyzeLoaded(buildAttentionVariant({ scores: 'relative-bias' })).sites[0];
    expect(s.maskType).toBe('relative-bias');
    expect(s.position).toBe('relative-bias');
    expect(s.scale).toBe(1);
    expect(s.causal).toBe(false);
  });

  it('reads a sliding-window mask built from position ranges, with its length', () => {
    const s = analyzeLoaded(buildAttentionVariant({ scores: 'sliding-window', window: 16 })).sites[0];
    expect(s.causal).toBe(true);
    expect(s.maskType).toBe('sliding-window');
    expect(s.window).toBe(16);
  });

  it('counts the keys a window keeps exactly, however its far edge is written', () => {
    const keys = (windowEdge: VariantOptions['windowEdge']) => analyzeLoaded(buildAttentionVariant({ scores: 'sliding-window', window: 16, windowEdge })).sites[0].window;
    // key > query − 16 and its complement: distances 0 … 15.
    expect(keys('keep-greater')).toBe(16);
    expect(keys('hide-less-equal')).toBe(16);
    // query − key <= 16, and not 16 < query − key: distances 0 … 16.
    expect(keys('distance-less-equal')).toBe(17);
    expect(keys('hide-constant-less')).toBe(17);
  });

  it('reads a mask that also compares a position against a constant as a general one, unless the comparison always holds', () => {
    // Keys before position 4 only: called causal, a rewrite would read one row of the mask as all of it.
    expect(analyzeLoaded(buildAttentionVariant({ scores: 'position-cut' })).sites[0].maskType).toBe('bias');
    // key >= 0 holds for every position.
    expect(analyzeLoaded(buildAttentionVariant({ scores: 'causal-nonnegative' })).sites[0].maskType).toBe('causal');
  });

  it('reads ALiBi: per-head slopes times position distance', () => {
    const s = analyzeLoaded(buildAttentionVariant({ scores: 'alibi' })).sites[0];
    expect(s.maskType).toBe('alibi');
    expect(s.position).toBe('alibi');
  });

  it('finds windowed vision attention (tokens regrouped into windows)', () => {
    const s = analyzeLoaded(buildAttentionVariant({ windowTokens: 16 })).sites[0];
    expect(s).toMatchObject({ heads: 4, headDim: 16, kind: 'self' });
  });

  it('reads attention written with Einsum', () => {
    const s = analyzeLoaded(buildAttentionVariant({ product: 'einsum' })).sites[0];
    expect(s).toMatchObject({ heads: 4, headDim: 16, kind: 'self', form: 'unfused' });
    expect(s.scale).toBeCloseTo(0.25, 6);
  });

  it("reads onnxruntime's FusedMatMul with the scale folded into alpha", () => {
    const s = analyzeLoaded(buildAttentionVariant({ product: 'fused-matmul' })).sites[0];
    expect(s).toMatchObject({ heads: 4, headDim: 16 });
    expect(s.scale).toBeCloseTo(0.25, 6);
  });

  it('lists a non-attention Softmax as unmatched with a reason', () => {
    const r = analyzeLoaded(buildAttentionVariant());
    expect(r.sites).toHaveLength(1);
    expect(r.unmatched).toHaveLength(1);
    expect(r.unmatched[0].reason).toMatch(/weight/);
  });
});

describe('projections', () => {
  it('multi-query attention (one KV head) with RoPE: the rotate-half slice is not a fused-QKV split', async () => {
    const { buildLlama } = await import('../../src/synth/llama');
    const model = buildLlama({ layers: 1, hidden: 64, heads: 4, kvHeads: 1, headDim: 16, intermediate: 128, vocab: 32 }).model;
    const s = analyzeLoaded(model).sites[0];
    expect(s).toMatchObject({ heads: 4, kvHeads: 1, headDim: 16, position: 'rope' });
    expect(s.projections.k?.fused).toBeUndefined();
  });

  it('a Split feeding a fused operator gives each projection its slice of the weight', async () => {
    const { analyzeModel } = await import('../../src/analysis/analyze');
    const { fixture } = await import('../helpers/fixtures');
    const s = analyzeModel(fixture('gpt2-sdpa-dynamo-op23').model).sites[0];
    expect(s.projections.q?.weight).toBe(s.projections.v?.weight);
    expect([s.projections.q?.sliceStart, s.projections.k?.sliceStart, s.projections.v?.sliceStart]).toEqual([0, 128, 256]);
  });
});

describe('self or cross attention', () => {
  // One rule for written-out and fused sites: a fused operator whose keys and values come in as graph inputs (a
  // precomputed encoder cache) while its queries are projected here is cross-attention, as a written-out one is.
  const fusedMha = (kvFromInputs: boolean) => {
    const b = GraphBuilder.create({ opsets: { '': 17, 'com.microsoft': 1 } });
    const x = b.input('x', 'float32', [1, 'sequence', 64]);
    const w = (name: string) => b.initializer(name, [64, 64], f32(Array.from({ length: 64 * 64 }, (_, i) => Math.sin(i) * 0.05)));
    const q = b.op('MatMul', [x, w('Wq')]);
    const k = kvFromInputs ? b.input('encoder_key', 'float32', [1, 'encoder_sequence', 64]) : b.op('MatMul', [x, w('Wk')]);
    const v = kvFromInputs ? b.input('encoder_value', 'float32', [1, 'encoder_sequence', 64]) : b.op('MatMul', [x, w('Wv')]);
    const out = b.op('MultiHeadAttention', [q, k, v], { domain: 'com.microsoft', attrs: { num_heads: { type: 'int', value: 4 } } });
    b.output(out, 'float32', [1, 'sequence', 64]);
    return b.finish();
  };

  it('reads a fused operator over encoder keys and values as cross-attention, and over its own projections as self', () => {
    expect(analyzeLoaded(fusedMha(true)).sites.map((s) => s.kind)).toEqual(['cross']);
    expect(analyzeLoaded(fusedMha(false)).sites.map((s) => s.kind)).toEqual(['self']);
  });
});

describe('rewritten models', () => {
  it('a block-topk site keeps its causal+padding mask type (the data-dependent selection is not a relative bias)', async () => {
    const { rewriteInMemory } = await import('../../src/rewriters/pipeline');
    const { fixture } = await import('../helpers/fixtures');
    const { model } = rewriteInMemory(fixture('llama-eager-ts-op17').model, [{ rule: 'block-topk', params: { block: 8, k: 2 } }]);
    const sites = analyzeLoaded(model).sites;
    expect(sites).toHaveLength(2);
    for (const s of sites) expect(s).toMatchObject({ maskType: 'causal+padding', position: 'rope', heads: 4, kvHeads: 2 });
  });
});
