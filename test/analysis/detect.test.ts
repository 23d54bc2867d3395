import { describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { fixture, fixtureNames } from '../helpers/fixtures';
import { gapIt } from '../known-gaps';

// Ground truth for every shared fixture: the number of blocks and, per block, kind, causality, heads, KV heads and
// head size, exactly as the manifest states them.
describe('attention detection matches every fixture truth', () => {
  const names = fixtureNames();
  it('has fixtures to check', () => {
    expect(names.length).toBeGreaterThanOrEqual(31);
  });
  for (const name of names) {
    gapIt('detect-truth', name)(name, () => {
      const { model, manifest } = fixture(name);
      const t = manifest.truth;
      const report = analyzeModel(model);
      expect(report.sites.length).toBe(t.blocks);
      report.sites.forEach((s, i) => {
        expect(s.id).toBe(i);
        expect(s.kind).toBe(t.kinds[i]);
        expect(s.causal).toBe(t.causal_per_block ? t.causal_per_block[i] : t.causal);
        expect(s.heads).toBe(t.heads);
        expect(s.kvHeads).toBe(t.kv_heads);
        expect(s.headDim).toBe(t.head_dim);
        expect(s.nodes.length).toBeGreaterThan(0);
        expect(s.scale).toBeCloseTo(1 / Math.sqrt(t.head_dim), 6);
      });
      if (t.kv_cache) expect(report.sites.every((s) => s.kvCache.reads && s.kvCache.writes)).toBe(true);
      else expect(report.sites.some((s) => s.kvCache.reads)).toBe(false);
      // Every Softmax in these models is attention: nothing is left unclaimed.
      expect(report.unmatched).toEqual([]);
      // The report is plain JSON.
      expect(JSON.parse(JSON.stringify(report))).toEqual(report);
    });
  }
});

describe('site details', () => {
  it('reads RoPE, grouped-query projections and the causal+padding mask of Llama', () => {
    const r = analyzeModel(fixture('llama-eager-ts-op17').model);
    const s = r.sites[0];
    expect(s.position).toBe('rope');
    expect(s.maskType).toBe('causal+padding');
    expect(s.projections.q?.weight).toBeTruthy();
    expect(s.projections.k?.weight).not.toBe(s.projections.q?.weight);
    expect(s.projections.o?.weight).toBeTruthy();
    expect(r.model.inputs.find((i) => i.name === 'input_ids')).toMatchObject({ role: 'input_ids', vocabSize: 256 });
  });

  it('reads the fused QKV weight of GPT-2 as three slices of one initializer', () => {
    const s = analyzeModel(fixture('gpt2-eager-ts-op17').model).sites[0];
    expect(s.projections.q?.fused).toBe('qkv');
    expect(s.projections.q?.weight).toBe(s.projections.k?.weight);
    expect([s.projections.q?.sliceStart, s.projections.k?.sliceStart, s.projections.v?.sliceStart]).toEqual([0, 128, 256]);
  });

  it('finds past inputs and present outputs of a KV-cache decoder', () => {
    const s = analyzeModel(fixture('llama-past-eager-ts-op17').model).sites[1];
    expect(s.kvCache.pastInputs.sort()).toEqual(['past_key_values.1.key', 'past_key_values.1.value']);
    expect(s.kvCache.presentOutputs.length).toBe(2);
  });

  it('reads fused operators from their attributes', () => {
    const gqa = analyzeModel(fixture('fused-gqa').model).sites[0];
    expect(gqa.form).toBe('com.microsoft.GroupQueryAttention');
    const onnx = analyzeModel(fixture('fused-onnx23').model).sites[0];
    expect(onnx.form).toBe('onnx.Attention');
  });

  it('tells learned absolute positions (BART, ViT) from none', () => {
    expect(analyzeModel(fixture('bart-eager-ts-op17').model).sites[0].position).toBe('learned-absolute');
    expect(analyzeModel(fixture('vit-eager-ts-op17').model).sites[0].position).toBe('learned-absolute');
  });

  it('computes analytic cost at the requested length', () => {
    const s = analyzeModel(fixture('llama-long-eager-ts-op17').model, { seqLen: 4096 }).sites[0];
    expect(s.flops).toBe(2 * 8 * 4096 * 4096 * 128);
    expect(s.attnMatrixBytes).toBe(4 * 8 * 4096 * 4096);
  });
});
