// The `plan` rule (issue 10, heterogeneous plans) on real fixtures: a plan of dense heads changes nothing, a plan of
// one window everywhere is the uniform window rule, each head of a mixed plan computes what the uniform rule of its
// choice computes for that head, pruned heads are prune-heads' result, and a mixed plan on a written-out attention
// equals a direct float64 attention with each head's own visibility.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRewriteArgs } from '../../src/cli/rewrite';
import { rewriteInMemory } from '../../src/rewriters/pipeline';
import { fixture } from '../helpers/fixtures';
import { visible } from '../../src/rewriters/sparse/pattern';
import {
  floatOutputs, maxAbsDiff, qkvFeeds, randomQkv, referenceAttention, referenceBlockTopk, rewriteTo, runModel, synthesizedFeeds, tempDir,
  tinyAttention, type TinyShape,
} from './sparse-helpers';
import { HEAD_OUT, headSlice, planRequest, rewriteWithHeads } from './plan-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = tempDir('plan-rule'); });
afterAll(() => tmp.cleanup());

const model = (name: string) => fixture(name).model;
const all = (n: number, c: string) => Array.from({ length: n }, () => c);

async function outputsOf(file: string, feeds: ReturnType<typeof synthesizedFeeds>) {
  return floatOutputs(file, feeds);
}

function expectClose(a: Record<string, Float32Array>, b: Record<string, Float32Array>, tol: number, what: string): void {
  expect(Object.keys(a).length).toBeGreaterThan(0);
  for (const o of Object.keys(b)) expect(maxAbsDiff(a[o], b[o]), `${what}: ${o}`).toBeLessThan(tol);
}

describe('plan on real fixtures (mask form)', () => {
  it('a plan of dense heads leaves the outputs as they were (bytelm-llama-trained)', async () => {
    const m = model('bytelm-llama-trained');
    const feeds = synthesizedFeeds(m, 40, 0);
    const { file, report } = rewriteTo(m, [planRequest({ 0: all(8, 'dense'), 2: all(8, 'dense') })], tmp.dir, 'dense');
    expectClose(await outputsOf(file, feeds), await outputsOf(m, feeds), 1e-6, 'all dense');
    expect(report.applied[0].changes.map((c) => c.after.plan)).toEqual(['8×dense', '8×dense']);
  });

  it.each(['llama-eager-ts-op17', 'gpt2-eager-ts-op17', 'nnmha-decoder-op14'])('%s: window W on every head of every site is the uniform window rule', async (name) => {
    const m = model(name);
    const feeds = synthesizedFeeds(m, 37, 0);
    const uniform = rewriteTo(m, [{ rule: 'window', params: { window: 5 } }], tmp.dir, `${name}-uniform`);
    const viaPlan = rewriteTo(m, [planRequest({ 0: all(4, 'window 5'), 1: all(4, 'window 5') })], tmp.dir, `${name}-plan-w5`);
    const original = await outputsOf(m, feeds);
    const u = await outputsOf(uniform.file, feeds);
    expectClose(await outputsOf(viaPlan.file, feeds), u, 1e-4, 'plan vs uniform');
    expect(Object.keys(original).some((o) => maxAbsDiff(u[o], original[o]) > 1e-3), 'the window changes the outputs').toBe(true);
  });

  it('each head of a mixed plan computes what the uniform rule of its choice computes for it (llama-eager-ts-op17, site 0)', async () => {
    const m = model('llama-eager-ts-op17');
    const feeds = synthesizedFeeds(m, 41, 0);
    const choices = ['window 3', 'sink 2 + window 4', 'strided 3 + window 2', 'power + window 2'];
    const uniform: [number, { rule: string; params: Record<string, number> }][] = [
      [0, { rule: 'window', params: { window: 3 } }],
      [1, { rule: 'sink', params: { sink: 2, window: 4 } }],
      [2, { rule: 'strided', params: { stride: 3, window: 2 } }],
      [3, { rule: 'power', params: { window: 2 } }],
    ];
    const mixed = (await runModel(rewriteWithHeads(m, [planRequest({ 0: choices })], tmp.dir, 'mixed', 0), feeds))[HEAD_OUT].data as Float32Array;
    const dense = (await runModel(rewriteWithHeads(m, [], tmp.dir, 'mixed-dense', 0), feeds))[HEAD_OUT].data as Float32Array;
    for (const [h, req] of uniform) {
      const file = rewriteWithHeads(m, [{ ...req, sites: [0] }], tmp.dir, `mixed-ref-${h}`, 0);
      const ref = (await runModel(file, feeds))[HEAD_OUT].data as Float32Array;
      expect(maxAbsDiff(headSlice(mixed, 4, h), headSlice(ref, 4, h)), `head ${h}: ${choices[h]}`).toBeLessThan(1e-5);
      expect(maxAbsDiff(headSlice(mixed, 4, h), headSlice(dense, 4, h)), `head ${h} changed`).toBeGreaterThan(1e-3);
    }
  });

  it('pruned heads in a plan are prune-heads of the same heads (gpt2-eager-ts-op17, bytelm-llama-trained)', async () => {
    for (const [name, heads] of [['gpt2-eager-ts-op17', 4], ['bytelm-llama-trained', 8]] as const) {
      const m = model(name);
      const feeds = synthesizedFeeds(m, 29, 0);
      const choices = all(heads, 'dense');
      choices[1] = 'pruned';
      choices[heads - 1] = 'pruned';
      const viaPlan = rewriteTo(m, [planRequest({ 1: choices })], tmp.dir, `${name}-plan-pruned`);
      const pruned = rewriteTo(m, [{ rule: 'prune-heads', params: { heads: { 1: [1, heads - 1] } } }], tmp.dir, `${name}-prune-heads`);
      expectClose(await outputsOf(viaPlan.file, feeds), await outputsOf(pruned.file, feeds), 1e-6, `${name}: plan vs prune-heads`);
      expect(viaPlan.report.applied[0].changes[0].after.plan).toBe(`${heads - 2}×dense, 2×pruned`);
    }
  });

  it('after pruning, a strided head keeps the shard of its original index (llama-eager-ts-op17, site 0)', async () => {
    const m = model('llama-eager-ts-op17');
    const feeds = synthesizedFeeds(m, 33, 0);
    const viaPlan = (await runModel(rewriteWithHeads(m, [planRequest({ 0: ['pruned', 'strided 2 + window 2', 'strided 2 + window 2', 'window 3'] })], tmp.dir, 'pruned-strided', 0), feeds))[HEAD_OUT].data as Float32Array;
    const strided = (await runModel(rewriteWithHeads(m, [{ rule: 'strided', params: { stride: 2, window: 2 }, sites: [0] }], tmp.dir, 'strided-ref', 0), feeds))[HEAD_OUT].data as Float32Array;
    const window = (await runModel(rewriteWithHeads(m, [{ rule: 'window', params: { window: 3 }, sites: [0] }], tmp.dir, 'window-ref', 0), feeds))[HEAD_OUT].data as Float32Array;
    // The plan's site has heads 1, 2, 3 of the original as its heads 0, 1, 2.
    expect(maxAbsDiff(headSlice(viaPlan, 3, 0), headSlice(strided, 4, 1))).toBeLessThan(1e-5);
    expect(maxAbsDiff(headSlice(viaPlan, 3, 1), headSlice(strided, 4, 2))).toBeLessThan(1e-5);
    expect(maxAbsDiff(headSlice(viaPlan, 3, 2), headSlice(window, 4, 3))).toBeLessThan(1e-5);
  });
});

describe('plan on a written-out attention against a direct reference', () => {
  it('every head gets exactly its own visibility, block-topk heads included', async () => {
    const s: TinyShape = { heads: 6, dim: 8, causal: true };
    const file = tinyAttention(tmp.dir, s, 'tiny-plan');
    const x = randomQkv(s, 37, 37, 7);
    const choices = ['dense', 'window 5', 'sink 3 + window 4', 'strided 4 + window 3', 'power + window 2', 'block-topk 8,1'];
    const { file: out } = rewriteTo(file, [planRequest({ 0: choices })], tmp.dir, 'tiny-plan-mask');
    const got = (await runModel(out, qkvFeeds(s, x))).out.data as Float32Array;
    const topk = referenceBlockTopk(s, x, 8, 1);
    const patterns = [
      null,
      { kind: 'window', window: 5, causal: true },
      { kind: 'sink', sink: 3, window: 4 },
      { kind: 'strided', stride: 4, window: 3 },
      { kind: 'power', window: 2 },
    ] as const;
    const ref = referenceAttention(s, x, (i, j, h) => {
      if (j > i) return false;
      if (h === 5) return topk(i, j, h);
      const p = patterns[h];
      return p === null || visible(p, i, j, h);
    });
    expect(maxAbsDiff(got, ref)).toBeLessThan(1e-5);
  });
});

describe('bad plans are refused with one line naming the place', () => {
  const write = (name: string, text: string) => {
    const f = path.join(tmp.dir, name);
    fs.writeFileSync(f, text);
    return f;
  };
  const parse = (file: string) => () => parseRewriteArgs(['m.onnx', '--plan', file, '-o', 'o.onnx']);

  it('in the file: unreadable, not JSON, an entry that means nothing', () => {
    expect(parse(path.join(tmp.dir, 'missing.json'))).toThrow(/^--plan .*missing\.json: cannot read the file \(ENOENT\)$/);
    expect(parse(write('cut.json', '{"version":1,'))).toThrow(/^--plan .*cut\.json: not JSON \(/);
    expect(parse(write('zero.json', '{"version":1,"sites":{"2":["dense","window 0"]}}'))).toThrow(/^--plan .*zero\.json: site 2, head 1: "window 0": window must be a whole number >= 1$/);
    expect(parse(write('word.json', '{"version":1,"sites":{"0":["sparse"]}}'))).toThrow(/site 0, head 0: "sparse": expected dense/);
    const ok = parseRewriteArgs(['m.onnx', '--plan', write('ok.json', '{"version":1,"sites":{"1":["dense", "window 8"]}}'), '-o', 'o.onnx']);
    expect(ok.requests).toEqual([{ rule: 'plan', params: { plan: { version: 1, sites: { 1: [{ kind: 'dense' }, { kind: 'window', window: 8 }] } } } }]);
  });

  it('against the model: a site that does not exist, a head count that differs, a choice the site cannot take', () => {
    const refused = (m: string, sites: Record<number, string[]>) => {
      try {
        rewriteInMemory(model(m), [planRequest(sites)]);
      } catch (e) {
        expect((e as Error).message).not.toContain('\n');
        return (e as Error).message;
      }
      return 'accepted';
    };
    expect(refused('llama-eager-ts-op17', { 5: all(4, 'dense') })).toBe('plan: site 5 does not exist (the model has sites 0-1)');
    expect(refused('llama-eager-ts-op17', { 1: all(3, 'window 8') })).toBe('plan: site 1: the plan gives 3 heads, the site has 4 query heads');
    expect(refused('bert-eager-ts-op17', { 0: ['dense', 'sink 4 + window 8', 'dense', 'dense'] })).toBe(
      'plan: site 0, head 1 (sink 4 + window 8): sink is defined for causal sites; this one is bidirectional',
    );
    expect(refused('nnmha-cross-kvdim-op14', { 1: ['window 4', 'dense', 'dense', 'dense'] })).toMatch(/^plan: site 1, head 0 \(window 4\): cross-attention/);
  });
});
