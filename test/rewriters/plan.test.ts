// The `plan` rule (issue 10, heterogeneous plans) on real fixtures: a plan of dense heads changes nothing, a plan of
// one window everywhere is the uniform window rule, each head of a mixed plan computes what the uniform rule of its
// choice computes for that head, pruned heads are prune-heads' result, and a mixed plan on a written-out attention
// equals a direct float64 attention with each head's own visibility.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRewriteArgs, renderRewrite } from '../../src/cli/rewrite';
import { rewriteInMemory } from '../../src/rewriters/pipeline';
import { analyzeModel } from '../../src/analysis/analyze';
import { fixture } from '../helpers/fixtures';
import { visible } from '../../src/rewriters/sparse/pattern';
import {
  floatOutputs, maxAbsDiff, qkvFeeds, randomQkv, referenceAttention, referenceBlockTopk, rewriteTo, runModel, synthesizedFeeds, tempDir,
  tinyAttention, type TinyShape,
} from './sparse-helpers';
import { fullScoreGroups, HEAD_OUT, headSlice, plan, planRequest, rewriteWithHeads } from './plan-helpers';
import { checkStep, stepFlags, stepLabel } from '../../src/shared/rule-steps';

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

  it('a plan that prunes every head of a site is prune-heads of them all (gpt2-eager-ts-op17, site 0)', async () => {
    const m = model('gpt2-eager-ts-op17');
    const feeds = synthesizedFeeds(m, 17, 0);
    const viaPlan = rewriteTo(m, [planRequest({ 0: all(4, 'pruned'), 1: ['window 3', 'dense', 'dense', 'dense'] })], tmp.dir, 'all-pruned');
    const pruned = rewriteTo(m, [{ rule: 'prune-heads', params: { heads: { 0: [0, 1, 2, 3] } } }, { rule: 'plan', params: { plan: plan({ 1: ['window 3', 'dense', 'dense', 'dense'] }) } }], tmp.dir, 'all-pruned-ref');
    expectClose(await outputsOf(viaPlan.file, feeds), await outputsOf(pruned.file, feeds), 1e-6, 'plan vs prune-heads');
    expect(viaPlan.report.applied[0].changes.map((c) => [c.site, c.after.keptHeads])).toEqual([[0, 0], [1, 4]]);
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

describe('the compute-reducing form (heads split into groups by choice)', () => {
  const MIXED: Record<string, Record<number, string[]>> = {
    'bytelm-llama-trained': {
      0: ['window 5', 'window 5', 'dense', 'sink 2 + window 4', 'window 5', 'strided 3 + window 2', 'block-topk 8,1', 'pruned'],
      // Several heads per sink, strided and power group, the strided heads' shards by their original index (one of
      // them after a pruned head), and no dense group.
      1: ['strided 4 + window 8', 'power + window 4', 'strided 4 + window 8', 'sink 4 + window 8', 'power + window 4', 'sink 4 + window 8', 'pruned', 'strided 4 + window 8'],
      3: ['window 9', 'window 9', 'window 9', 'window 9', 'window 9', 'window 9', 'dense', 'dense'],
    },
    'llama-eager-ts-op17': { 0: ['power + window 2', 'window 6', 'block-topk 8,1', 'window 6'], 1: ['pruned', 'window 3', 'dense', 'window 3'] },
    'gpt2-eager-ts-op17': { 1: ['window 4', 'dense', 'window 4', 'strided 2 + window 3'] },
    'nnmha-decoder-op14': { 0: ['window 7', 'window 7', 'window 7', 'dense'], 1: all(4, 'window 3') },
  };
  it.each(Object.keys(MIXED))('%s: equals the mask form, and every sparse group took its compute-reducing form', async (name) => {
    const m = model(name);
    const feeds = synthesizedFeeds(m, 43, 0);
    const mask = rewriteTo(m, [planRequest(MIXED[name], 'mask')], tmp.dir, `${name}-mixed-mask`);
    const blocked = rewriteTo(m, [planRequest(MIXED[name], 'blocked')], tmp.dir, `${name}-mixed-blocked`);
    expectClose(await outputsOf(blocked.file, feeds), await outputsOf(mask.file, feeds), 1e-4, 'blocked vs mask');
    expect(blocked.report.warnings.filter((w) => !w.includes("standard layout first"))).toEqual([]);
    for (const c of blocked.report.applied[0].changes) {
      if (c.after.plan === `${String(c.after.keptHeads)}×dense`) continue;
      expect(c.after.impl, `site ${c.site}`).toBe('blocked');
      expect(String(c.after.groups), `site ${c.site}`).not.toMatch(/\(mask\)/);
    }
    // In the graph: only a dense group's Softmax reads a full [B, Hg, S, S] score tensor; the others read blocks.
    for (const g of fullScoreGroups(analyzeModel(m), blocked.model, blocked.report.applied[0].changes)) {
      expect(g.full, `site ${g.site}: Softmaxes over full score rows`).toBe(g.allowed);
    }
    // At the report's length (1024 tokens) the split form computes less than the mask form.
    expect(blocked.report.flopsAfter).toBeLessThan(mask.report.flopsAfter);
  });
});

describe('plan on fused operators', () => {
  const CAUSAL = ['window 3', 'sink 2 + window 3', 'strided 2 + window 2', 'dense'];
  const BIDIRECTIONAL = ['window 3', 'dense', 'window 5', 'window 3'];
  it.each(['fused-gqa', 'fused-mha', 'fused-onnx23', 'fused-contrib_attention'])(
    '%s: the per-head mask through the operator\'s mask input equals the plan on the written-out operator, and the blocked form',
    async (name) => {
      const m = model(name);
      const causal = analyzeModel(m).sites[0].causal;
      const sites = { 0: causal ? CAUSAL : BIDIRECTIONAL, 1: all(4, 'window 4') };
      const feeds = synthesizedFeeds(m, 19, 0);
      const fused = rewriteTo(m, [planRequest(sites)], tmp.dir, `${name}-plan-fused`);
      expect(fused.report.applied[0].changes.map((c) => c.after.impl)).toEqual(['mask', 'mask']);
      const written = rewriteTo(m, [{ rule: 'expand', params: {} }, planRequest(sites)], tmp.dir, `${name}-plan-written`);
      const blocked = rewriteTo(m, [planRequest(sites, 'blocked')], tmp.dir, `${name}-plan-blocked`);
      expect(blocked.report.applied[0].changes.map((c) => c.after.impl)).toEqual(['blocked', 'blocked']);
      const ref = await outputsOf(written.file, feeds);
      expectClose(await outputsOf(fused.file, feeds), ref, 1e-4, 'fused mask vs written-out mask');
      expectClose(await outputsOf(blocked.file, feeds), ref, 1e-4, 'blocked vs written-out mask');
      const original = await outputsOf(m, feeds);
      expect(Object.keys(original).some((o) => maxAbsDiff(ref[o], original[o]) > 1e-3), 'the plan changes the outputs').toBe(true);
    },
  );
});

describe('plan on a written-out attention against a direct reference', () => {
  it.each([
    ['mask', 37, 37], ['blocked', 37, 37], ['mask', 21, 45], ['blocked', 21, 45],
  ] as const)('%s form, %i queries after %i keys: every head gets exactly its own visibility, block-topk heads included', async (impl, sq, sk) => {
    const s: TinyShape = { heads: 6, dim: 8, causal: true };
    const file = tinyAttention(tmp.dir, s, 'tiny-plan');
    const x = randomQkv(s, sq, sk, 7);
    const choices = ['dense', 'window 5', 'sink 3 + window 4', 'strided 4 + window 3', 'power + window 2', 'block-topk 8,1'];
    const { file: out, report } = rewriteTo(file, [planRequest({ 0: choices }, impl)], tmp.dir, `tiny-plan-${impl}`);
    expect(report.applied[0].changes[0].after.impl).toBe(impl);
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

describe('the README example', () => {
  it('is a plan file the rule accepts on bytelm-llama-trained, reported site by site', () => {
    const readme = fs.readFileSync(path.resolve(__dirname, '..', '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Per-head plans'));
    const json = /```json\n([\s\S]*?)```/.exec(section)![1];
    const file = path.join(tmp.dir, 'readme-plan.json');
    fs.writeFileSync(file, json);
    const { requests } = parseRewriteArgs(['m.onnx', '--plan', file, '-o', 'o.onnx']);
    const { report } = rewriteInMemory(model('bytelm-llama-trained'), requests);
    const text = renderRewrite(report, 'model.onnx', 'out.onnx');
    expect(text).toContain('plan (mask) on sites 0, 3\n  site 0: 6×window 64, 1×dense, 1×pruned\n  site 3: 1×sink 4 + window 64,');
    expect(report.applied[0].changes[0].after.heads).toEqual([...all(6, 'window 64'), 'dense', 'pruned']);
    expect(report.applied[0].changes.map((c) => `site ${c.site}: ${String(c.after.plan)}`)).toEqual([
      'site 0: 6×window 64, 1×dense, 1×pruned',
      'site 3: 1×sink 4 + window 64, 1×strided 8 + window 32, 1×power + window 16, 1×block-topk 32,4, 2×dense, 2×window 128',
    ]);
  });
});

describe('a plan as a rewrite step', () => {
  it('is named by its choices, and prints as a command line that reads back to the same step', () => {
    const step = { rule: 'plan', params: { plan: plan({ 0: ['window 64', 'window 64', 'dense', 'pruned'], 1: all(4, 'sink 4 + window 32') }), impl: 'blocked' } };
    expect(stepLabel(step)).toBe('plan site 0: 2×window 64, 1×dense, 1×pruned; site 1: 4×sink 4 + window 32 (blocked)');
    const words = stepFlags(step);
    expect(parseRewriteArgs(['m.onnx', ...words, '-o', 'o.onnx']).requests).toEqual([step]);
    expect(checkStep(JSON.parse(JSON.stringify(step)))).toEqual(step);
    expect(checkStep({ rule: 'plan', params: { plan: { version: 1, sites: { 0: [{ kind: 'window', window: -1 }] } } } })).toBe("plan: 'plan' is not a valid plan");
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
