// Models exported with a fixed batch of 1 (no dynamic axes, as vision models and many quick exports are): the batch
// axis is a constant 1, which no layout factor carries. The analysis must still read [batch, heads, queries, keys]
// scores and [batch, positions, features] activations, so that the standard-layout pass, the fast sparse forms, fuse
// and the head rewrites apply as they do with a dynamic batch. The fixtures are pinned to their own inputs' shapes here
// (a copy in a scratch folder); two more are real fixed-batch exports (test/models).
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { rewriteModel, type RuleRequest } from '../../src/rewriters/pipeline';
import { pinFixture } from '../helpers/pinned';
import { feedsOf, fixture, maskedOutputs, maxAbsDiff, outputsOf, scratch, type Feeds } from '../rewriters/shared-prune-helpers';

const MODELS = path.join(__dirname, '..', 'models');

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = scratch('static-batch'); });
afterAll(() => tmp.cleanup());

function rewrite(file: string, requests: RuleRequest[], tag: string) {
  const out = path.join(tmp.dir, `${path.basename(file, '.onnx')}.${tag}.onnx`);
  return { out, report: rewriteModel(file, requests, out) };
}

async function expectSame(a: string, b: string, feeds: Feeds, tol: number): Promise<void> {
  const [x, y] = [await outputsOf(a, feeds), await outputsOf(b, feeds)];
  for (const k of Object.keys(x)) expect(maxAbsDiff(x[k], y[k]), k).toBeLessThanOrEqual(tol);
}

async function expectPruneEqualsZeroing(file: string, heads: Record<number, number[]>, feeds: Feeds): Promise<string[]> {
  const { out, report } = rewrite(file, [{ rule: 'prune-heads', params: { heads } }], 'pruned');
  const want = await maskedOutputs(file, heads, feeds, tmp.dir, { onlyZeroed: true });
  const [got, before] = [await outputsOf(out, feeds), await outputsOf(file, feeds)];
  for (const [k, w] of Object.entries(want)) {
    expect(maxAbsDiff(got[k], w), k).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(before[k], w), `${k} changed`).toBeGreaterThan(1e-4);
  }
  return report.warnings;
}

const pixels = (): Feeds => ({ pixel_values: new ort.Tensor('float32', Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37)), [1, 3, 32, 32]) });

describe('fixtures pinned to a batch of 1', () => {
  // Decoders (causal + padding, written out and SDPA-decomposed), an encoder, torch.nn's heads folded into the batch.
  const cases: [string, Record<number, number[]>][] = [
    ['gpt2-eager-ts-op17', { 0: [1], 1: [0, 3] }],
    ['llama-sdpa-ts-op17', { 0: [1] }],
    ['bert-eager-ts-op17', { 1: [2] }],
    ['nnmha-decoder-op14', { 0: [0, 2] }],
  ];

  it.each(cases)('%s: bound like the dynamic export, the batch of 1 included', (name) => {
    const feeds = feedsOf(name);
    expect(Object.values(feeds).every((t) => t.dims[0] === 1)).toBe(true);
    const dynamic = analyzeModel(fixture(name).model).sites;
    const fixed = analyzeModel(pinFixture(name, tmp.dir, feeds)).sites;
    expect(fixed.map((s) => [s.heads, s.kvHeads, s.headDim, s.maskType, s.scale])).toEqual(dynamic.map((s) => [s.heads, s.kvHeads, s.headDim, s.maskType, s.scale]));
    for (const [i, s] of fixed.entries()) {
      // Heads folded into a batch of 1 ([batch·heads, q, k]) leave the heads alone on that axis.
      const folded = dynamic[i].binding?.scoreAxes.map((a) => (a.length > 1 ? a.filter((x) => x !== 'batch') : a));
      expect(s.binding?.scoreAxes).toEqual(folded);
      expect(s.binding?.tokens?.q.batch).toBe(dynamic[i].binding?.tokens?.q.batch);
    }
  });

  it.each(cases)('%s: fuse, the fast sparse forms and prune-heads apply and are exact', async (name, heads) => {
    const feeds = feedsOf(name);
    const file = pinFixture(name, tmp.dir, feeds);
    const fused = rewrite(file, [{ rule: 'fuse', params: {} }], 'fuse');
    expect(fused.report.warnings.join('\n')).not.toMatch(/kept its layout|not fused/);
    await expectSame(file, fused.out, feeds, 1e-4);
    const seq = feeds.input_ids.dims[1];
    for (const [rule, params, fast] of [['window', { window: 4 }, 'blocked'], ['block-topk', { block: 4, k: 1 }, 'gather']] as const) {
      const mask = rewrite(file, [{ rule, params: { ...params, impl: 'mask' } } as RuleRequest], `${rule}-mask`);
      const quick = rewrite(file, [{ rule, params: { ...params, impl: fast } } as RuleRequest], `${rule}-${fast}`);
      // The fast form is really there (the old failure fell back to the mask form, or skipped every site).
      expect(quick.report.applied[0].changes.every((c) => (c.after as { impl?: string }).impl === fast), `${rule} ${fast}`).toBe(true);
      expect(quick.report.warnings.join('\n')).not.toMatch(/used the mask form|skipped/);
      expect(seq).toBeGreaterThan(8);
      await expectSame(mask.out, quick.out, feeds, 1e-5);
    }
    await expectPruneEqualsZeroing(file, heads, feeds);
  });
});

describe('a decoding step exported with fixed shapes (1 new token, 16 cached)', () => {
  // The query positions start at the cache's length, read from a shape: a number here, which is no window offset.
  it.each(['llama-past-eager-ts-op17', 'gpt2-past-eager-ts-op17', 'llama-past-sdpa-ts-op17'])('%s: causal with padding, as the dynamic export', (name) => {
    const step = pinFixture(name, tmp.dir, { batch: 1, sequence: 1, past_sequence: 16, total_sequence: 17, 'past_sequence + sequence': 17 }, 'step');
    const sites = analyzeModel(step).sites;
    expect(sites.map((s) => s.binding?.keyPositions)).toEqual(sites.map(() => 17));
    expect(sites.map((s) => [s.maskType, s.window])).toEqual(analyzeModel(fixture(name).model).sites.map((s) => [s.maskType, s.window]));
    expect(sites.every((s) => s.maskType === 'causal+padding')).toBe(true);
  });
});

describe('real exports with a fixed batch of 1', () => {
  it('timm packed-QKV ViT: rewritten into the standard layout; fuse exact, prune-heads equals zeroing', async () => {
    const file = path.join(MODELS, 'timm-static-op14.onnx');
    const r = analyzeModel(file);
    expect(r.sites.map((s) => [s.heads, s.headDim, s.binding?.batch, s.binding?.tokens?.q.batch])).toEqual([[4, 8, 1, 0], [4, 8, 1, 0]]);
    const fused = rewrite(file, [{ rule: 'fuse', params: {} }], 'fuse');
    expect(fused.report.applied[0].changes.map((c) => (c.after as { form?: string }).form)).toEqual(['com.microsoft.MultiHeadAttention', 'com.microsoft.MultiHeadAttention']);
    await expectSame(file, fused.out, pixels(), 1e-5);
    await expectPruneEqualsZeroing(file, { 0: [1], 1: [0, 3] }, pixels());
  });

  it('PVT spatial-reduction attention: K and V packed apart from Q, from a reduced input; prune-heads equals zeroing', async () => {
    const file = path.join(MODELS, 'pvt-sr-op14.onnx');
    const r = analyzeModel(file);
    expect(r.sites.map((s) => [s.kind, s.heads, s.headDim, s.binding?.queryPositions, s.binding?.keyPositions])).toEqual([['cross', 2, 16, 64, 16], ['cross', 2, 16, 64, 16]]);
    const warnings = await expectPruneEqualsZeroing(file, { 0: [1], 1: [0] }, pixels());
    expect(warnings.join('\n')).toMatch(/site 0 rewritten into the standard layout first/);
    const fused = rewrite(file, [{ rule: 'fuse', params: {} }], 'fuse');
    await expectSame(file, fused.out, pixels(), 1e-5);
  });
});
