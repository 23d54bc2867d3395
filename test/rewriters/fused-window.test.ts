// The window on fused GroupQueryAttention sites, per query block (`window --impl blocked --rows R` after `fuse`, or on
// a model that was fused already): the per-block MultiHeadAttention form gives the outputs of the same window as a
// mask (within 1e-4) on the shared fixtures, on their inputs and on a batch of two with a right-padded row, with
// grouped KV heads (repeated for MultiHeadAttention) and with blocks that do not divide the sequence; where it
// cannot apply it says why and keeps GroupQueryAttention's own local_window_size.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { GraphBuilder } from '../../src/analysis/ir/builder';
import { loadModel } from '../../src/analysis/ir/load';
import * as path from 'node:path';
import { saveModel } from '../../src/analysis/ir/save';
import { rewriteInMemory, type RuleRequest } from '../../src/rewriters/pipeline';
import { fixture } from '../helpers/fixtures';
import { manifestFeeds, type Feeds } from '../analysis/helpers/ort';
import { paddedBatchFeeds, softcappedAttention } from './fuse-helpers';
import { floatOutputs, maxAbsDiff, rewriteTo, tempDir } from './sparse-helpers';
import * as ort from 'onnxruntime-node';
import { Rng } from '../../src/analysis/numeric/random';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = tempDir('fused-window'); });
afterAll(() => tmp.cleanup());

/** Fixtures with causal self-attention that are GroupQueryAttention after `fuse` (or already), and how to get there. */
const CASES: Record<string, RuleRequest[]> = {
  'llama-eager-ts-op17': [{ rule: 'fuse', params: {} }],
  'llama-sdpa-ts-op17': [{ rule: 'fuse', params: {} }],
  'gpt2-eager-ts-op17': [{ rule: 'fuse', params: {} }],
  // 8 query heads over 4 KV heads: the K/V windows are repeated per group.
  'bytelm-llama-trained': [{ rule: 'fuse', params: {} }],
  // Fused by its author, 4 query heads over 2 KV heads.
  'fused-gqa': [],
};

const GEOMETRIES = [
  { window: 8, rows: 4 }, // two key blocks back (F = 8)
  { window: 5, rows: 8 }, // one key block back; blocks that do not divide the sequence
];

async function compare(model: string, pre: RuleRequest[], feeds: Feeds, g: { window: number; rows: number }, tag: string) {
  const mask = rewriteTo(model, [...pre, { rule: 'window', params: { window: g.window } }], tmp.dir, `${tag}-mask`);
  const blocked = rewriteTo(model, [...pre, { rule: 'window', params: { window: g.window, impl: 'blocked', rows: g.rows } }], tmp.dir, `${tag}-blocked`);
  const changes = blocked.report.applied.at(-1)!.changes;
  expect(changes.length).toBeGreaterThan(0);
  for (const c of changes) expect(c.after.via, `site ${c.site}`).toBe('MultiHeadAttention per query block');
  expect(blocked.report.warnings).toEqual([]);
  const a = await floatOutputs(mask.file, feeds);
  const b = await floatOutputs(blocked.file, feeds);
  for (const o of Object.keys(a)) expect(maxAbsDiff(b[o], a[o]), `${tag}: ${o}`).toBeLessThan(1e-4);
  // The window did something: the model without it differs (every case here is longer than the window).
  const dense = await floatOutputs(pre.length ? rewriteTo(model, pre, tmp.dir, `${tag}-dense`).file : model, feeds);
  expect(Math.max(...Object.keys(a).map((o) => maxAbsDiff(dense[o], a[o]))), `${tag}: the window changes the outputs`).toBeGreaterThan(1e-3);
  return blocked;
}

describe('window per query block on GroupQueryAttention sites', () => {
  for (const [name, pre] of Object.entries(CASES)) {
    for (const g of GEOMETRIES) {
      it(`${name}, window ${g.window} in blocks of ${g.rows}: the mask form's outputs`, async () => {
        const { model, dir, manifest } = fixture(name);
        const r = await compare(model, pre, manifestFeeds(dir, manifest.inputs), g, `${name}-${g.window}-${g.rows}`);
        // The analysis still reads every site (the operator keeps the site's name).
        expect(analyzeModel(r.file).sites.length).toBe(analyzeModel(model).sites.length);
      });
    }
    if (fixture(name).manifest.inputs.some((i) => /mask/i.test(i.name))) {
      it(`${name}: a batch of two with a right-padded row`, async () => {
        const { model, dir, manifest } = fixture(name);
        await compare(model, pre, paddedBatchFeeds(dir, manifest.inputs, 3), GEOMETRIES[0], `${name}-padded`);
      });
    }
  }

  it('a window longer than the sequence changes nothing against the fused model', async () => {
    const { model, dir, manifest } = fixture('llama-eager-ts-op17');
    const feeds = manifestFeeds(dir, manifest.inputs);
    const fused = await floatOutputs(rewriteTo(model, [{ rule: 'fuse', params: {} }], tmp.dir, 'long-fused').file, feeds);
    const long = await floatOutputs(rewriteTo(model, [{ rule: 'fuse', params: {} }, { rule: 'window', params: { window: 4096, impl: 'blocked', rows: 64 } }], tmp.dir, 'long').file, feeds);
    for (const o of Object.keys(fused)) expect(maxAbsDiff(long[o], fused[o]), o).toBeLessThan(1e-4);
  });

  it('reads a GroupQueryAttention bias that is not a padding mask row by row (exact), and a padding mask by its last row', async () => {
    // fused-gqa (16 positions) with a random additive bias: every row differs, so one row would not do.
    const b = new GraphBuilder(loadModel(fixture('fused-gqa').model));
    const rng = new Rng(5);
    const bias = b.initializer('random_bias', [1, 1, 16, 16], { dtype: 'float32', data: Array.from({ length: 256 }, () => rng.normal()) });
    for (const n of b.graph.nodes.filter((x) => x.opType === 'GroupQueryAttention')) b.setInput(n, 10, bias);
    const file = path.join(tmp.dir, 'gqa-random-bias.onnx');
    saveModel(b.finish(), file);
    expect(analyzeModel(file).sites.map((s) => s.maskType)).toEqual(['bias', 'bias']);
    const { dir, manifest } = fixture('fused-gqa');
    const r = await compare(file, [], manifestFeeds(dir, manifest.inputs), { window: 8, rows: 4 }, 'gqa-random-bias');
    expect(loadModel(r.file).graph.nodes.some((n) => n.name.includes('::last_row'))).toBe(false);
    // The fused Llama's mask is causal+padding: read as one row, and its S×S build is gone.
    const fusedLlama = rewriteTo(fixture('llama-eager-ts-op17').model, [{ rule: 'fuse', params: {} }], tmp.dir, 'llama-fused-rows');
    expect(analyzeModel(fusedLlama.file).sites.map((s) => s.maskType)).toEqual(['causal+padding', 'causal+padding']);
    const blocked = loadModel(rewriteTo(fusedLlama.file, [{ rule: 'window', params: { window: 8, impl: 'blocked', rows: 4 } }], tmp.dir, 'llama-fused-rows-window').file);
    expect(blocked.graph.nodes.some((n) => n.name.endsWith('::last_row/op'))).toBe(true);
    expect(blocked.graph.nodes.some((n) => n.name === '/m/model/Where_1')).toBe(false);
  });

  it('refuses a float16 GroupQueryAttention (onnxruntime\'s CPU MultiHeadAttention is float32 only)', () => {
    const { model: m16 } = rewriteInMemory(fixture('fused-gqa').model, [], { precision: 'fp16' });
    const file = path.join(tmp.dir, 'fused-gqa-fp16.onnx');
    saveModel(m16, file);
    const r = rewriteTo(file, [{ rule: 'window', params: { window: 8, impl: 'blocked', rows: 4 } }], tmp.dir, 'fused-gqa-fp16-window');
    expect(r.report.warnings).toEqual([0, 1].map((i) => `window: site ${i}: no per-block form (a float16 site: onnxruntime's CPU MultiHeadAttention computes float32 only); used GroupQueryAttention's local_window_size`));
  });

  it('refuses a soft-capped GroupQueryAttention with the reason and keeps local_window_size', async () => {
    const model = softcappedAttention(tmp.dir, { heads: 2, dim: 8, causal: true, softcap: 5, opset: 17 }, 'capped');
    const r = rewriteTo(model, [{ rule: 'fuse', params: {} }, { rule: 'window', params: { window: 3, impl: 'blocked', rows: 2 } }], tmp.dir, 'capped-window');
    expect(r.report.warnings).toEqual(["window: site 0: no per-block form (soft-capping, which MultiHeadAttention does not compute); used GroupQueryAttention's local_window_size"]);
    expect(r.report.applied[1].changes[0].after.via).toBe('GroupQueryAttention local_window_size');
    const gqa = loadModel(r.file).graph.nodes.find((n) => n.opType === 'GroupQueryAttention')!;
    expect(Number(gqa.attr('local_window_size')?.i)).toBe(3);
    // Still the window: equal to the mask form.
    const rng = new Rng(3);
    const x = () => new ort.Tensor('float32', Float32Array.from({ length: 2 * 7 * 8 }, () => rng.normal()), [1, 2, 7, 8]);
    const feeds = { q: x(), k: x(), v: x() };
    const mask = rewriteTo(model, [{ rule: 'fuse', params: {} }, { rule: 'window', params: { window: 3 } }], tmp.dir, 'capped-mask');
    const a = await floatOutputs(mask.file, feeds);
    const b = await floatOutputs(r.file, feeds);
    expect(maxAbsDiff(b.out, a.out)).toBeLessThan(1e-4);
  });
});
