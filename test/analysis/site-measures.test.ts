// What speed bounds read off a model's sites (runtime/measure/trust.ts): the projection widths pruning's bound scales
// the projections by (Q and the output projection heads·size wide, K and V KV heads·size, so grouped KV heads count
// once per group), and the kernels that compute the scores (a bound holds only between models whose kernels agree).
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { projectionWork, scoreKernels } from '../../src/analysis/report/site-measures';
import { rewriteModel } from '../../src/rewriters/pipeline';
import { fixture } from '../helpers/fixtures';
import { scratch } from '../rewriters/shared-prune-helpers';

describe('site measures', () => {
  const tmp = scratch('projection-width');
  afterAll(() => tmp.cleanup());

  it('sums (heads + KV heads)·(head size + V head size) over the sites', () => {
    // 4 sites of 8 query heads over 4 KV heads of 32.
    expect(projectionWork(analyzeModel(fixture('bytelm-llama-trained').model).sites)).toBe(4 * 12 * 64);
    // 2 sites of 4 query heads over 2 KV heads of 32, already fused.
    expect(projectionWork(analyzeModel(fixture('fused-gqa').model).sites)).toBe(2 * 6 * 64);
  });

  it("follows the heads pruning removes, and is unknown where a site's heads are", () => {
    const out = path.join(tmp.dir, 'pruned.onnx');
    rewriteModel(fixture('llama-eager-ts-op17').model, [{ rule: 'prune-heads', params: { heads: { 0: [0, 1] } } }], out);
    const before = projectionWork(analyzeModel(fixture('llama-eager-ts-op17').model).sites);
    const after = projectionWork(analyzeModel(out).sites);
    expect(before).not.toBeNull();
    const perSite = before! / 2;
    // Site 0 loses 2 of its query heads; its KV heads stay (each still serves a query head).
    const site0 = analyzeModel(out).sites[0];
    expect(after).toBe(perSite + (site0.heads! + site0.kvHeads!) * 64);
    expect(site0.heads).toBe(2);
    expect(projectionWork([{ heads: null, kvHeads: null, headDim: 32 }])).toBeNull();
  });

  it('names the kernels that compute the scores: standard ops however written, fused operators by name', () => {
    expect(scoreKernels(analyzeModel(fixture('llama-eager-ts-op17').model).sites)).toBe('standard ops');
    expect(scoreKernels(analyzeModel(fixture('llama-sdpa-ts-op17').model).sites)).toBe('standard ops');
    expect(scoreKernels(analyzeModel(fixture('fused-gqa').model).sites)).toBe('com.microsoft.GroupQueryAttention');
    expect(scoreKernels([{ form: 'com.microsoft.MultiHeadAttention' }, { form: 'unfused' }, { form: 'com.microsoft.MultiHeadAttention' }])).toBe('com.microsoft.MultiHeadAttention, standard ops');
  });
});
