// Every sparse rule on every shared fixture it applies to: the rewritten model loads and runs in onnxruntime (CPU) on
// inputs from the runtime's synthesis (13 new tokens, 5 cached ones where the model has a KV cache: not a multiple of
// any block), its outputs keep their shapes and are finite, the compute-reducing forms give the mask forms' outputs,
// a window longer than the sequence changes nothing, and each variant differs from the original (the rewrite did
// something). The input model is never modified.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gapIt } from '../known-gaps';
import { analyzeModel } from '../../src/analysis/analyze';
import { getRule } from '../../src/rewriters/registry';
import '../../src/rewriters/rules';
import { fixture, fixtureNames } from '../helpers/fixtures';
import { floatOutputs, maxAbsDiff, rewriteTo, synthesizedFeeds, tempDir, type Feeds } from './sparse-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = tempDir('sparse-fixtures'); });
afterAll(() => tmp.cleanup());

interface Variant {
  rule: string;
  params: Record<string, unknown>;
  /** Compare with this variant's outputs (a mask form) instead of expecting a change from the original. */
  sameAs?: string;
  /** Expect the original's outputs (an identity). */
  identity?: boolean;
}

const VARIANTS: Record<string, Variant> = {
  'window-mask': { rule: 'window', params: { window: 4 } },
  'window-blocked': { rule: 'window', params: { window: 4, impl: 'blocked' }, sameAs: 'window-mask' },
  'window-long-mask': { rule: 'window', params: { window: 64 }, identity: true },
  'window-long-blocked': { rule: 'window', params: { window: 64, impl: 'blocked' }, identity: true },
  sink: { rule: 'sink', params: { window: 3, sink: 2 } },
  strided: { rule: 'strided', params: { window: 3, stride: 3 } },
  power: { rule: 'power', params: { window: 2 } },
  'sink-blocked': { rule: 'sink', params: { window: 3, sink: 2, impl: 'blocked', rows: 4 }, sameAs: 'sink' },
  'strided-blocked': { rule: 'strided', params: { window: 3, stride: 3, impl: 'blocked', rows: 4 }, sameAs: 'strided' },
  'power-blocked': { rule: 'power', params: { window: 2, impl: 'blocked', rows: 4 }, sameAs: 'power' },
  neighborhood2d: { rule: 'neighborhood2d', params: { radius: 1 } },
  'neighborhood2d-blocked': { rule: 'neighborhood2d', params: { radius: 1, impl: 'blocked' }, sameAs: 'neighborhood2d' },
  'neighborhood2d-r2': { rule: 'neighborhood2d', params: { radius: 2 } },
  'neighborhood2d-r2-blocked': { rule: 'neighborhood2d', params: { radius: 2, impl: 'blocked' }, sameAs: 'neighborhood2d-r2' },
  'topk-mask': { rule: 'block-topk', params: { block: 4, k: 1 } },
  'topk-gather': { rule: 'block-topk', params: { block: 4, k: 1, impl: 'gather' }, sameAs: 'topk-mask' },
  // Keeping 64 blocks of 4 keeps every key of these inputs (13 new tokens and a short cache, or a ViT's 65 patches).
  'topk-all-mask': { rule: 'block-topk', params: { block: 4, k: 64 }, identity: true },
  'topk-all-gather': { rule: 'block-topk', params: { block: 4, k: 64, impl: 'gather' }, identity: true },
};

const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe.each(fixtureNames())('%s', (name) => {
  gapIt('sparse-rules', name)('every sparse rule that applies runs, keeps output shapes, and its fast forms match its mask forms', async () => {
    const model = fixture(name).model;
    const hashBefore = sha(model);
    const report = analyzeModel(model);
    const feeds = synthesizedFeeds(model, 13, 5);
    const original = await floatOutputs(model, feeds);
    const outputs: Record<string, Record<string, Float32Array>> = {};
    const applied: string[] = [];
    for (const [key, v] of Object.entries(VARIANTS)) {
      const rule = getRule(v.rule)!;
      if (!report.sites.some((s) => rule.skipReason(s, v.params as never, report) === null)) continue;
      const { file, report: rewritten } = rewriteTo(model, [{ rule: v.rule, params: v.params }], tmp.dir, `${name}-${key}`);
      // A compute-reducing form must be what a written-out site gets (fused sites may fall back, with a warning).
      const impl = (v.params as { impl?: string }).impl;
      if (impl && impl !== 'mask') {
        for (const c of rewritten.applied[0].changes) {
          if (!report.sites[c.site].anchors.fused) expect(c.after.impl, `${key}: site ${c.site}`).toBe(impl);
        }
        // The analysis reads the rewritten model back with the same sites (the forms' own nodes belong to them).
        expect(analyzeModel(file).sites.length, `${key}: sites read back`).toBe(report.sites.length);
      }
      const out = await floatOutputs(file, feeds);
      outputs[key] = out;
      applied.push(key);
      for (const [o, data] of Object.entries(original)) {
        expect(out[o]?.length, `${key}: output ${o}`).toBe(data.length);
        expect(out[o].every(Number.isFinite), `${key}: output ${o} finite`).toBe(true);
      }
      const reference = v.identity ? original : v.sameAs ? outputs[v.sameAs] : undefined;
      if (reference) {
        for (const o of Object.keys(original)) expect(maxAbsDiff(out[o], reference[o]), `${key} vs ${v.identity ? 'original' : v.sameAs}: ${o}`).toBeLessThan(1e-4);
      } else {
        const changed = Object.keys(original).some((o) => maxAbsDiff(out[o], original[o]) > 1e-3);
        expect(changed, `${key} changed the outputs`).toBe(true);
      }
    }
    // Which rules apply, by the kind of model.
    const vision = report.model.inputs.some((i) => i.role === 'pixel_values');
    const causal = report.sites.some((s) => s.causal);
    expect(applied.includes('neighborhood2d')).toBe(vision);
    expect(applied.includes('sink')).toBe(causal);
    expect(applied).toContain('window-mask');
    expect(sha(model)).toBe(hashBefore);
  });
});

describe('padded batches: the model\'s own padding mask survives the compute-reducing forms', () => {
  // Batch of two: the first row left-padded by 3, the second right-padded by 4. Outputs at padding positions are
  // meaningless (and ignored); every real position must agree between the fast and the mask forms.
  const S = 19;
  const real = (b: number, t: number) => (b === 0 ? t >= 3 : t < S - 4);
  function paddedFeeds(model: string): Feeds {
    const feeds = synthesizedFeeds(model, S, 0);
    const ids = new BigInt64Array(2 * S).map((_, i) => BigInt((i * 37 + 11) % 200));
    const mask = new BigInt64Array(2 * S).map((_, i) => (real(Math.floor(i / S), i % S) ? 1n : 0n));
    const out: Feeds = { ...feeds };
    for (const name of Object.keys(feeds)) {
      if (/input_ids/.test(name)) out[name] = new ort.Tensor('int64', ids, [2, S]);
      else if (/attention_mask/.test(name)) out[name] = new ort.Tensor('int64', mask, [2, S]);
      else if (/token_type_ids/.test(name)) out[name] = new ort.Tensor('int64', new BigInt64Array(2 * S), [2, S]);
    }
    return out;
  }
  function realDiff(a: Float32Array, b: Float32Array): number {
    const per = a.length / (2 * S);
    let m = 0;
    for (let i = 0; i < a.length; i++) {
      const t = Math.floor(i / per);
      if (real(Math.floor(t / S), t % S)) m = Math.max(m, Math.abs(a[i] - b[i]));
    }
    return m;
  }
  it.each([
    ['llama-eager-ts-op17', 'window', { window: 5 }, { window: 5, impl: 'blocked', rows: 4 }],
    ['llama-sdpa-ts-op17', 'window', { window: 5 }, { window: 5, impl: 'blocked', rows: 4 }],
    ['gpt2-eager-ts-op17', 'window', { window: 5 }, { window: 5, impl: 'blocked', rows: 4 }],
    ['bert-eager-ts-op17', 'window', { window: 3 }, { window: 3, impl: 'blocked', rows: 4 }],
    ['llama-eager-ts-op17', 'sink', { window: 5, sink: 2 }, { window: 5, sink: 2, impl: 'blocked', rows: 4 }],
    ['gpt2-eager-ts-op17', 'strided', { window: 3, stride: 4 }, { window: 3, stride: 4, impl: 'blocked', rows: 4 }],
    ['llama-sdpa-ts-op17', 'power', { window: 3 }, { window: 3, impl: 'blocked', rows: 4 }],
    ['llama-eager-ts-op17', 'block-topk', { block: 4, k: 1 }, { block: 4, k: 1, impl: 'gather' }],
    ['gpt2-eager-ts-op17', 'block-topk', { block: 4, k: 1 }, { block: 4, k: 1, impl: 'gather' }],
    ['bert-sdpa-ts-op17', 'block-topk', { block: 4, k: 1 }, { block: 4, k: 1, impl: 'gather' }],
    // The model's mask read row by row instead of through its last row.
    ['llama-eager-ts-op17', 'window', { window: 5 }, { window: 5, impl: 'blocked', rows: 4, modelMask: 'rows' }],
    ['gpt2-eager-ts-op17', 'block-topk', { block: 4, k: 1 }, { block: 4, k: 1, impl: 'gather', modelMask: 'rows' }],
  ])('%s %s: fast form equals mask form at every real position', async (name, rule, maskParams, fastParams) => {
    const model = fixture(name).model;
    const feeds = paddedFeeds(model);
    const mask = await floatOutputs(rewriteTo(model, [{ rule, params: maskParams }], tmp.dir, `${name}-pad-mask`).file, feeds);
    const fast = await floatOutputs(rewriteTo(model, [{ rule, params: fastParams }], tmp.dir, `${name}-pad-fast`).file, feeds);
    const original = await floatOutputs(model, feeds);
    const first = Object.keys(original)[0];
    expect(realDiff(fast[first], mask[first])).toBeLessThan(1e-4);
    expect(realDiff(mask[first], original[first])).toBeGreaterThan(1e-3);
  });

  it('block-topk ignores what sits at padding positions: other padding tokens, same outputs at real positions', async () => {
    const model = fixture('llama-eager-ts-op17').model;
    const { file } = rewriteTo(model, [{ rule: 'block-topk', params: { block: 4, k: 1, impl: 'gather' } }], tmp.dir, 'pad-content');
    const a = paddedFeeds(model);
    const ids = Float64Array.from(a.input_ids.data as BigInt64Array, Number);
    const other = BigInt64Array.from(ids, (v, i) => BigInt(real(Math.floor(i / S), i % S) ? v : (v * 7 + 3) % 250));
    const b = { ...a, input_ids: new ort.Tensor('int64', other, [2, S]) };
    const [x, y] = [await floatOutputs(file, a), await floatOutputs(file, b)];
    expect(realDiff(x.logits, y.logits)).toBeLessThan(1e-4);
  });
});
