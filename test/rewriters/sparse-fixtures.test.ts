// Every sparse rule on every shared fixture it applies to: the rewritten model loads and runs in onnxruntime (CPU) on
// inputs from the runtime's synthesis (13 new tokens, 5 cached ones where the model has a KV cache: not a multiple of
// any block), its outputs keep their shapes and are finite, the compute-reducing forms give the mask forms' outputs,
// a window longer than the sequence changes nothing, and each variant differs from the original (the rewrite did
// something). The input model is never modified.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { getRule } from '../../src/rewriters/registry';
import '../../src/rewriters/rules';
import { fixture, fixtureNames } from '../helpers/fixtures';
import { floatOutputs, maxAbsDiff, rewriteTo, synthesizedFeeds, tempDir } from './sparse-helpers';

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
  'window-blocked-rows': { rule: 'window', params: { window: 4, impl: 'blocked', rows: 4, modelMask: 'rows' }, sameAs: 'window-mask' },
  'window-long-mask': { rule: 'window', params: { window: 64 }, identity: true },
  'window-long-blocked': { rule: 'window', params: { window: 64, impl: 'blocked' }, identity: true },
  sink: { rule: 'sink', params: { window: 3, sink: 2 } },
  strided: { rule: 'strided', params: { window: 3, stride: 3 } },
  power: { rule: 'power', params: { window: 2 } },
  neighborhood2d: { rule: 'neighborhood2d', params: { radius: 1 } },
  'topk-mask': { rule: 'block-topk', params: { block: 4, k: 1 } },
  'topk-gather': { rule: 'block-topk', params: { block: 4, k: 1, impl: 'gather' }, sameAs: 'topk-mask' },
  'topk-gather-rows': { rule: 'block-topk', params: { block: 4, k: 1, impl: 'gather', modelMask: 'rows' }, sameAs: 'topk-mask' },
};

const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe.each(fixtureNames())('%s', (name) => {
  it('every sparse rule that applies runs, keeps output shapes, and its fast forms match its mask forms', async () => {
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
      const { file } = rewriteTo(model, [{ rule: v.rule, params: v.params }], tmp.dir, `${name}-${key}`);
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
