// prune-heads against independent references: the fixtures' prune_heads oracles (computed by PyTorch on the same
// weights), and the head-mask model of importance scoring (the same heads zeroed by a Mul instead of cut out), on
// every form of attention the fixtures hold; KV-cache fixtures with their past inputs cut to the kept KV heads.
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gapIt } from '../known-gaps';
import { analyzeWithSites } from '../../src/analysis/analyze';
import { GraphBuilder } from '../../src/analysis/ir/builder';
import { loadModel } from '../../src/analysis/ir/load';
import { saveModel } from '../../src/analysis/ir/save';
import { f32 } from '../../src/analysis/ir/tensor-data';
import { resolveProjection } from '../../src/rewriters/prune/edit/projection';
import { setInput } from '../../src/rewriters/prune/edit/weights';
import { rewriteModel } from '../../src/rewriters/pipeline';
import { RuleError } from '../../src/rewriters/rule';
import {
  expectPrunedStorage, feedsOf, fileSize, fixture, floatParams, fixtureFloats, fixtureNames, manifestOf, maskedOutputs, maxAbsDiff, outputsOf, rewriteFixture, scratch, sitesOf, type Feeds,
} from './shared-prune-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = scratch('prune-heads'); });
afterAll(() => tmp.cleanup());

describe('prune_heads oracles', () => {
  const withOracle = fixtureNames().filter((n) => manifestOf(n).oracles?.prune_heads);

  it('exist on the BERT, GPT-2 and Llama fixtures', () => {
    expect(withOracle).toEqual(expect.arrayContaining(['bert-eager-ts-op17', 'gpt2-eager-ts-op17', 'llama-eager-ts-op17']));
  });

  for (const name of withOracle) gapIt('prune-oracle', name)(`${name}: the pruned model matches the oracle within 1e-4 and its file is smaller`, async () => {
    const m = manifestOf(name);
    const oracle = m.oracles!.prune_heads as unknown as { heads: Record<string, number[]>; outputs: { name: string; file: string }[] };
    // The transformers fixtures key the oracle by layer (one self-attention block per layer, so layer l is site l);
    // the torch.nn and timm ones by site id, cross-attention included. Either way the keys are site ids here.
    const sites = sitesOf(fixture(name).model);
    expect(sites.length).toBe(m.truth.blocks);
    if (!name.startsWith('nn') && !name.startsWith('timm')) expect(sites.every((s) => s.kind === 'self')).toBe(true);
    const heads = Object.fromEntries(Object.entries(oracle.heads).map(([layer, hs]) => [Number(layer), hs]));
    const { file, report } = rewriteFixture(name, [{ rule: 'prune-heads', params: { heads } }], tmp.dir, 'oracle');
    const got = await outputsOf(file, feedsOf(name));
    for (const o of oracle.outputs) {
      const want = fixtureFloats(name, o.file);
      expect(maxAbsDiff(got[o.name], want), o.name).toBeLessThanOrEqual(1e-4);
      // The unpruned model is far from the oracle: the comparison can fail.
      const original = await outputsOf(fixture(name).model, feedsOf(name));
      expect(maxAbsDiff(original[o.name], want)).toBeGreaterThan(1e-3);
    }
    expectPrunedStorage(name, heads, file);
    // The report: heads after, and FLOPs in proportion to the heads kept.
    const changes = report.applied[0].changes;
    for (const c of changes) {
      const removed = heads[c.site].length;
      const h = sites[c.site].heads!;
      expect(c.after.heads).toBe(h - removed);
      expect(c.flopsAfter! / c.flopsBefore!).toBeCloseTo((h - removed) / h, 10);
      expect(c.after.params as number).toBeLessThan(c.before.params as number);
    }
    // The rewritten model is analysed with the new head counts.
    expect(sitesOf(file).map((s) => s.heads)).toEqual(sites.map((s) => s.heads! - (heads[s.id]?.length ?? 0)));
  });
});

/** Heads to prune per site: one head on even sites, the first and last on odd ones. */
function choice(name: string): Record<number, number[]> {
  const out: Record<number, number[]> = {};
  for (const s of sitesOf(fixture(name).model)) out[s.id] = s.id % 2 ? [0, s.heads! - 1] : [1];
  return out;
}

/** KV-cache inputs cut to the KV heads the pruned model keeps (the masked model reads them in full). */
function cutCaches(name: string, feeds: Feeds, pruned: string): Feeds {
  const before = sitesOf(fixture(name).model);
  const after = loadModel(pruned);
  const out: Feeds = { ...feeds };
  for (const s of before) {
    for (const input of s.kvCache.pastInputs) {
      const t = feeds[input];
      const declared = after.graph.values.get(input)?.info?.type?.tensorType?.shape?.dim?.[1]?.dimValue;
      const keep = Number(declared);
      if (!t || keep === t.dims[1]) continue;
      // Which KV heads stay: those read by a kept query head (grouped-query: ⌊h / (heads / kvHeads)⌋).
      const group = s.heads! / s.kvHeads!;
      const removed = new Set(choice(name)[s.id]);
      const kept = [...new Set(Array.from({ length: s.heads! }, (_, h) => h).filter((h) => !removed.has(h)).map((h) => Math.floor(h / group)))];
      expect(kept.length).toBe(keep);
      const [b, , p, d] = t.dims as number[];
      const src = t.data as Float32Array;
      const data = new Float32Array(b * kept.length * p * d);
      for (let i = 0; i < b; i++) kept.forEach((kv, j) => data.set(src.subarray(((i * t.dims[1] + kv) * p) * d, ((i * t.dims[1] + kv + 1) * p) * d), ((i * kept.length + j) * p) * d));
      out[input] = new ort.Tensor('float32', data, [b, kept.length, p, d]);
    }
  }
  return out;
}

describe('prune-heads equals zeroing the same heads', () => {
  for (const name of fixtureNames()) gapIt('prune-vs-zeroing', name)(name, async () => {
    const heads = choice(name);
    const { file, report } = rewriteFixture(name, [{ rule: 'prune-heads', params: { heads } }], tmp.dir, 'vs-mask');
    const feeds = feedsOf(name);
    const want = await maskedOutputs(name, heads, feeds, tmp.dir);
    const got = await outputsOf(file, cutCaches(name, feeds, file));
    const untouched = await outputsOf(fixture(name).model, feeds);
    for (const [out, w] of Object.entries(want)) {
      if (out.startsWith('present')) continue; // the pruned cache holds fewer heads by design
      expect(maxAbsDiff(got[out], w), out).toBeLessThanOrEqual(1e-4);
      expect(maxAbsDiff(untouched[out], w), `${out}: zeroing changed nothing, the test would prove nothing`).toBeGreaterThan(1e-5);
    }
    expectPrunedStorage(name, heads, file);
    expect(report.applied[0].changes.length).toBe(Object.keys(heads).length);
  });
});

describe('layers that share one weight (torch.nn.TransformerEncoder clones, stored once by the exporter)', () => {
  const name = 'nnmha-seqfirst-padmask-op13';

  it('the fixture stores both layers\' projections once', () => {
    const [a, b] = sitesOf(fixture(name).model);
    expect(b.projections.q!.weight).toBe(a.projections.q!.weight);
    expect(b.projections.o!.weight).toBe(a.projections.o!.weight);
  });

  it('heads no layer keeps leave the file; each layer takes its own from one copy, equal to zeroing them', async () => {
    const heads = { 0: [1], 1: [1, 3] }; // head 1 goes everywhere: its slices can leave the shared weight
    const { file } = rewriteFixture(name, [{ rule: 'prune-heads', params: { heads } }], tmp.dir, 'shared-union');
    const feeds = feedsOf(name);
    const want = await maskedOutputs(name, heads, feeds, tmp.dir);
    const got = await outputsOf(file, feeds);
    expect(maxAbsDiff(got.logits, want.logits)).toBeLessThanOrEqual(1e-4);
    expect(fileSize(file)).toBeLessThan(fileSize(fixture(name).model));
    // One copy of the kept Q/K/V/O entries (3 of 4 heads), not one per layer.
    expect(floatParams(fixture(name).model) - floatParams(file)).toBeGreaterThanOrEqual((4 * 64 * 16) * 0.99);
    expect(sitesOf(file).map((s) => s.heads)).toEqual([3, 2]);
  });

  it('when every head is kept by some layer, no layer gets a copy: the parameters do not grow', async () => {
    const heads = { 0: [1], 1: [2, 3] };
    const { file } = rewriteFixture(name, [{ rule: 'prune-heads', params: { heads } }], tmp.dir, 'shared-all');
    expect(floatParams(file)).toBeLessThanOrEqual(floatParams(fixture(name).model));
    const g = loadModel(file).graph;
    expect(g.nodes.filter((n) => n.opType === 'Gather' && n.name.includes('::prune-heads/')).length).toBeGreaterThanOrEqual(8);
  });

  it('a layer pruned again reads its heads through the Gather of the shared weight', async () => {
    const first = rewriteFixture(name, [{ rule: 'prune-heads', params: { heads: { 0: [1], 1: [2, 3] } } }], tmp.dir, 'shared-once');
    const again = path.join(tmp.dir, 'shared-twice.onnx');
    rewriteModel(first.file, [{ rule: 'prune-heads', params: { heads: { 0: [0] } } }], again); // old head 0 of site 0
    const feeds = feedsOf(name);
    const want = await maskedOutputs(name, { 0: [0, 1], 1: [2, 3] }, feeds, tmp.dir);
    expect(maxAbsDiff((await outputsOf(again, feeds)).logits, want.logits)).toBeLessThanOrEqual(1e-4);
    expect(floatParams(again)).toBeLessThanOrEqual(floatParams(first.file));
  });

  it('a layer left unpruned keeps the whole weight, and the pruned one reads its heads from it', async () => {
    const heads = { 1: [0] };
    const { file } = rewriteFixture(name, [{ rule: 'prune-heads', params: { heads } }], tmp.dir, 'shared-one');
    const feeds = feedsOf(name);
    const want = await maskedOutputs(name, heads, feeds, tmp.dir);
    expect(maxAbsDiff((await outputsOf(file, feeds)).logits, want.logits)).toBeLessThanOrEqual(1e-4);
    expect(floatParams(file)).toBeLessThanOrEqual(floatParams(fixture(name).model));
  });
});

describe('grouped-query sites', () => {
  it('a KV head goes only when all its query heads go', () => {
    // llama: 4 query heads, 2 KV heads; heads 0 and 1 share KV head 0.
    const both = rewriteFixture('llama-eager-ts-op17', [{ rule: 'prune-heads', params: { heads: { 0: [0, 1], 1: [1, 2] } } }], tmp.dir, 'kv');
    const [c0, c1] = both.report.applied[0].changes;
    expect(c0.after).toMatchObject({ heads: 2, kvHeads: 1 });
    expect(c1.after).toMatchObject({ heads: 2, kvHeads: 2 });
    // The weights say the same: K and V of site 0 now project to one head of 32, site 1 keeps both.
    const g = loadModel(both.file).graph;
    const width = (node: string) => g.nodeByName(node)!.input(1)!.initializer!.dims;
    expect(width('/m/model/layers.0/self_attn/k_proj/MatMul')).toEqual([128, 32]);
    expect(width('/m/model/layers.0/self_attn/v_proj/MatMul')).toEqual([128, 32]);
    expect(width('/m/model/layers.0/self_attn/q_proj/MatMul')).toEqual([128, 64]);
    expect(width('/m/model/layers.1/self_attn/k_proj/MatMul')).toEqual([128, 64]);
  });

  it('uneven groups read their KV heads through a Gather; even ones keep no repeat at all', () => {
    const { file } = rewriteFixture('llama-eager-ts-op17', [{ rule: 'prune-heads', params: { heads: { 0: [1], 1: [0, 3] } } }], tmp.dir, 'gather');
    const names = loadModel(file).graph.nodes.map((n) => n.name);
    expect(names.filter((n) => n.includes('::prune-heads/repeat_')).length).toBe(2); // K and V of site 0 only
    expect(names.some((n) => n.startsWith('/m/model/layers.1/') && n.includes('Expand'))).toBe(false);
  });

  it('on a KV-cache model the cache inputs and outputs are declared with the kept KV heads', () => {
    const { file } = rewriteFixture('gpt2-past-eager-ts-op17', [{ rule: 'prune-heads', params: { heads: { 0: [1, 2] } } }], tmp.dir, 'cache');
    const g = loadModel(file).graph;
    const dim1 = (n: string) => Number(g.values.get(n)?.info?.type?.tensorType?.shape?.dim?.[1]?.dimValue);
    expect(dim1('past_key_values.0.key')).toBe(2);
    expect(dim1('present.0.value')).toBe(2);
    expect(dim1('past_key_values.1.key')).toBe(4);
  });
});

describe('prune-heads composes with itself and with gqa', () => {
  // Head numbers refer to the model as each rule sees it: after pruning head 1 of four, old head 0 is still head 0.
  it.each(['llama-eager-ts-op17', 'gpt2-sdpa-dynamo-op23', 'gpt2-eager-ts-op17', 'fused-gqa', 'bytelm-llama-trained'])(
    '%s: pruning head 1 then head 0 equals pruning heads 0 and 1 at once; gqa at the existing grouping first changes nothing',
    async (name) => {
      const twice = rewriteFixture(name, [
        { rule: 'prune-heads', params: { heads: { 0: [1] } } },
        { rule: 'prune-heads', params: { heads: { 0: [0] } } },
      ], tmp.dir, 'twice');
      const once = rewriteFixture(name, [{ rule: 'prune-heads', params: { heads: { 0: [0, 1] } } }], tmp.dir, 'once');
      const kv = sitesOf(fixture(name).model)[0].kvHeads!;
      const grouped = rewriteFixture(name, [{ rule: 'gqa', params: { groups: kv } }, { rule: 'prune-heads', params: { heads: { 0: [0, 1] } } }], tmp.dir, 'gqa-prune');
      const feeds = feedsOf(name);
      const [a, b, c] = [await outputsOf(twice.file, feeds), await outputsOf(once.file, feeds), await outputsOf(grouped.file, feeds)];
      for (const out of Object.keys(b)) {
        expect(maxAbsDiff(a[out], b[out]), out).toBeLessThanOrEqual(1e-5);
        expect(maxAbsDiff(c[out], b[out]), out).toBeLessThanOrEqual(1e-4);
      }
    },
  );
});

describe('pruning every head of a site', () => {
  it('without an output bias equals drop-attention', async () => {
    const all = rewriteFixture('llama-eager-ts-op17', [{ rule: 'prune-heads', params: { heads: { 1: [0, 1, 2, 3] } } }], tmp.dir, 'all');
    const drop = rewriteFixture('llama-eager-ts-op17', [{ rule: 'drop-attention', params: { sites: [1] } }], tmp.dir, 'drop');
    const feeds = feedsOf('llama-eager-ts-op17');
    const [a, b] = [await outputsOf(all.file, feeds), await outputsOf(drop.file, feeds)];
    expect(maxAbsDiff(a.logits, b.logits)).toBeLessThanOrEqual(1e-6);
    expect(all.report.applied[0].changes[0]).toMatchObject({ flopsAfter: 0, bytesAfter: 0, after: { heads: 0 } });
    expect(sitesOf(all.file).length).toBe(1);
  });

  it('keeps the output projection bias, which drop-attention removes', async () => {
    // The fixtures' output biases are all zero: give site 0 of BERT a real one first.
    const name = 'bert-eager-ts-op17';
    const model = loadModel(fixture(name).model);
    const { report } = analyzeWithSites(model);
    const o = resolveProjection(model.graph, report.sites[0].projections.o!);
    expect(o.bias).toBeDefined();
    const b = new GraphBuilder(model);
    const bias = Float32Array.from({ length: o.bias!.data.length }, (_, i) => Math.sin(i) * 0.5);
    setInput(o.bias!.node, o.bias!.input, b.initializer('test_o_bias', [bias.length], f32(bias)));
    const biased = `${tmp.dir}/bert-o-bias.onnx`;
    saveModel(b.finish(), biased);
    const heads = { 0: [0, 1, 2, 3] };
    const all = `${tmp.dir}/bert-o-bias.all.onnx`;
    const drop = `${tmp.dir}/bert-o-bias.drop.onnx`;
    rewriteModel(biased, [{ rule: 'prune-heads', params: { heads } }], all);
    rewriteModel(biased, [{ rule: 'drop-attention', params: { sites: [0] } }], drop);
    const feeds = feedsOf(name);
    const want = await maskedOutputs(biased, heads, feeds, tmp.dir);
    const got = await outputsOf(all, feeds);
    expect(maxAbsDiff(got.last_hidden_state, want.last_hidden_state)).toBeLessThanOrEqual(1e-4);
    const dropped = await outputsOf(drop, feeds);
    expect(maxAbsDiff(dropped.last_hidden_state, want.last_hidden_state)).toBeGreaterThan(1e-3);
  });
});

describe('bad parameters are RuleErrors naming the rule', () => {
  const model = () => fixture('llama-eager-ts-op17').model;
  const attempt = (heads: unknown) => () => rewriteModel(model(), [{ rule: 'prune-heads', params: { heads } }], `${tmp.dir}/never.onnx`);
  it.each([
    [{ 0: [4] }, /prune-heads: site 0 has 4 heads \(0-3\); head 4 is out of range/],
    [{ 0: [-1] }, /head -1 is out of range/],
    [{ 7: [0] }, /prune-heads: site 7 does not exist/],
    [{ 0: [1, 1] }, /head 1 is listed twice/],
    [{}, /prune-heads: name at least one site/],
    [{ 0: [] }, /give at least one head/],
  ])('%j', (heads, message) => {
    expect(attempt(heads)).toThrow(RuleError);
    expect(attempt(heads)).toThrow(message);
  });
});
