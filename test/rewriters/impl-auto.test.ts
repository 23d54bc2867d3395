// `--impl auto` (src/orchestrate/impl-auto.ts): every exact candidate of a rule is written and timed in one run, the
// fastest median is kept, and the report says what was measured and what was not (with the reason). What is checked
// here is the orchestration, not which form wins (that is a benchmark's business): each candidate is listed with a
// median inside its interval, the chosen one has the smallest median, the resolved step is a concrete form whose
// model gives the mask form's outputs, and a rule without forms is refused by name.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../src/analysis/ir/load';
import { implCandidates, resolveAutoImpl } from '../../src/orchestrate/impl-auto';
import type { RuntimeClient } from '../../src/runtime/client';
import { startClient } from '../runtime/helpers';
import { fixture } from '../helpers/fixtures';
import { floatOutputs, maxAbsDiff, rewriteTo, synthesizedFeeds, tempDir } from './sparse-helpers';

let client: RuntimeClient;
let close: () => Promise<void>;
let tmp: { dir: string; cleanup: () => void };
beforeAll(async () => {
  ({ client, close } = await startClient());
  tmp = tempDir('impl-auto');
});
afterAll(async () => {
  await close();
  tmp.cleanup();
});

/** The element types of a model's weights: 'float16' where the precision conversion ran (ONNX type 10). */
function weightTypes(file: string): string[] {
  const types = new Set<string>();
  for (const v of loadModel(file).graph.values.values()) if (v.initializer) types.add(v.initializer.dataType === 10 ? 'float16' : String(v.initializer.dataType));
  return [...types];
}

describe('impl auto', () => {
  it('lists the exact forms per rule, the mask form first', () => {
    expect(implCandidates('window', { window: 256 }).map((c) => c.label)).toEqual([
      'mask', 'blocked, 32-row blocks', 'blocked, 64-row blocks', 'blocked, 128-row blocks', 'blocked, 256-row blocks',
      'fused, GroupQueryAttention local_window_size', 'fused, MultiHeadAttention per 128-row query block', 'fused, MultiHeadAttention per 256-row query block',
    ]);
    expect(implCandidates('sink', { window: 4, sink: 2 }).map((c) => c.params)).toEqual([{ impl: 'mask' }, { impl: 'blocked', rows: 16 }]);
    expect(implCandidates('block-topk', { block: 64, k: 8 }).map((c) => c.params.impl)).toEqual(['mask', 'gather']);
    expect(implCandidates('neighborhood2d', { radius: 1 }).map((c) => c.params.impl)).toEqual(['mask', 'blocked']);
    expect(implCandidates('gqa', { groups: 2 })).toEqual([]);
  });

  it.each([
    ['llama-eager-ts-op17', { rule: 'sink', params: { sink: 2, window: 8, impl: 'auto' } }],
    ['llama-eager-ts-op17', { rule: 'window', params: { window: 16, impl: 'auto' } }],
    ['vit-eager-ts-op17', { rule: 'neighborhood2d', params: { radius: 1, impl: 'auto' } }],
  ] as const)('%s %s: times every candidate and keeps the fastest, an exact form', async (name, step) => {
    const model = fixture(name).model;
    const { requests, choices } = await resolveAutoImpl(client, model, [{ ...step, params: { ...step.params } }], { seq: 48, ep: 'cpu', runs: 3 });
    expect(choices).toHaveLength(1);
    const c = choices[0];
    expect(c.ranOn).toBe('cpu');
    expect(c.measured[0].label).toBe('mask');
    // SparseAttention is listed for the token-pattern rules, never measured on CPU.
    const listed = step.rule === 'neighborhood2d' ? [] : ['com.microsoft.SparseAttention'];
    expect(c.notMeasured.filter((n) => listed.includes(n.label)).length).toBe(listed.length);
    // With the reason from onnxruntime's kernels: a sliding window is never block-aligned; on CPU nothing is saved.
    for (const n of c.notMeasured.filter((x) => listed.includes(x.label))) {
      expect(n.reason).toMatch(/never exact/);
      expect(n.reason).toMatch(/CPU kernel computes every score/);
    }
    expect(c.measured.length + c.notMeasured.length).toBe(implCandidates(step.rule, step.params).length + listed.length);
    for (const m of c.measured) {
      expect(m.latencyMs.runs).toBe(3);
      expect(m.latencyMs.p50).toBeGreaterThanOrEqual(m.latencyMs.ci95[0]);
      expect(m.latencyMs.p50).toBeLessThanOrEqual(m.latencyMs.ci95[1]);
    }
    const best = Math.min(...c.measured.map((m) => m.latencyMs.p50));
    expect(c.measured.find((m) => m.label === c.chosen.label)!.latencyMs.p50).toBe(best);
    // The resolved steps name a concrete form and reproduce the mask form's outputs.
    const last = requests[requests.length - 1];
    expect((last.params as { impl: string }).impl).not.toBe('auto');
    const feeds = synthesizedFeeds(model, 24, 0);
    const got = await floatOutputs(rewriteTo(model, requests, tmp.dir, `${name}-${step.rule}-auto`).file, feeds);
    const mask = await floatOutputs(rewriteTo(model, [{ rule: step.rule, params: { ...step.params, impl: 'mask' } }], tmp.dir, `${name}-${step.rule}-mask`).file, feeds);
    for (const k of Object.keys(mask)) expect(maxAbsDiff(got[k], mask[k])).toBeLessThan(1e-4);
  });

  it('on a fused GroupQueryAttention site, times the per-block forms and the operator\'s own window', async () => {
    const model = fixture('fused-gqa').model;
    const { requests, choices } = await resolveAutoImpl(client, model, [{ rule: 'window', params: { window: 64, impl: 'auto' } }], { seq: 32, ep: 'cpu', runs: 2 });
    const c = choices[0];
    // The blocked candidates are the per-block MultiHeadAttention form here; `fuse` first has nothing to fuse, so
    // the fused candidates act on the model's own operators (the per-block ones are then the same rewrites).
    expect(c.measured.map((m) => m.label)).toEqual([
      'mask', 'blocked, 16-row blocks', 'blocked, 32-row blocks', 'blocked, 64-row blocks', 'blocked, 128-row blocks', 'fused, GroupQueryAttention local_window_size',
    ]);
    expect(c.notMeasured.filter((n) => /^the same rewrite as blocked/.test(n.reason)).map((n) => n.label)).toEqual([
      'fused, MultiHeadAttention per 32-row query block', 'fused, MultiHeadAttention per 64-row query block', 'fused, MultiHeadAttention per 128-row query block',
    ]);
    expect(requests.every((r) => (r.params as { impl?: string }).impl !== 'auto')).toBe(true);
    // Whichever won gives the mask form's outputs.
    const feeds = synthesizedFeeds(model, 40, 0);
    const got = await floatOutputs(rewriteTo(model, requests, tmp.dir, 'fused-gqa-auto').file, feeds);
    const mask = await floatOutputs(rewriteTo(model, [{ rule: 'window', params: { window: 64 } }], tmp.dir, 'fused-gqa-mask').file, feeds);
    for (const k of Object.keys(mask)) expect(maxAbsDiff(got[k], mask[k])).toBeLessThan(1e-4);
  });

  it('with --precision fp16, writes and times the candidates in float16, and says so', async () => {
    const model = fixture('llama-eager-ts-op17').model;
    // What the runtime was given to time: the candidates' files exist while bench runs, so read their weights there.
    const timedTypes: string[][][] = [];
    const spy = Object.create(client) as RuntimeClient;
    spy.bench = async (req, opts) => {
      timedTypes.push(req.models.map((m) => weightTypes(m.path)));
      return client.bench(req, opts);
    };
    const { choices } = await resolveAutoImpl(spy, model, [{ rule: 'window', params: { window: 8, impl: 'auto' } }], { seq: 32, ep: 'cpu', runs: 2, precision: 'fp16' });
    expect(choices[0].precision).toBe('fp16');
    expect(timedTypes).toHaveLength(1);
    expect(timedTypes[0].length).toBe(choices[0].measured.length);
    for (const types of timedTypes[0]) expect(types).toContain('float16');
    // And without it, float32 as before.
    const { choices: fp32 } = await resolveAutoImpl(spy, model, [{ rule: 'window', params: { window: 8, impl: 'auto' } }], { seq: 32, ep: 'cpu', runs: 2 });
    expect(fp32[0].precision).toBe('fp32');
    for (const types of timedTypes[1]) expect(types).not.toContain('float16');
  });

  it('refuses auto where the rule has no forms to choose from', async () => {
    const model = fixture('llama-eager-ts-op17').model;
    await expect(resolveAutoImpl(client, model, [{ rule: 'gqa', params: { groups: 2, impl: 'auto' } }], { seq: 16, ep: 'cpu' })).rejects.toThrow(/gqa: --impl auto applies to the sparse rules/);
  });
});
