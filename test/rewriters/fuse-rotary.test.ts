// `fuse` absorbs the exported rotary embedding (x·cos + rotate_half(x)·sin) into com.microsoft RotaryEmbedding on the
// 3-D projection output, for the operands its operator reads 3-D: on every shared fixture with a written-out rotary the
// fused model has RotaryEmbedding nodes, no rotate_half left where it was absorbed, the original's outputs (manifest
// inputs, a padded batch of two, KV caches) and the same sites when analysed again. Where the tables' equal halves
// cannot be proven, the rotary stays as exported, the report says why, and the outputs are still the original's.
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { loadModel } from '../../src/analysis/ir/load';
import { Rng } from '../../src/analysis/numeric/random';
import { fixture, fixtureNames } from '../helpers/fixtures';
import { manifestFeeds } from '../analysis/helpers/ort';
import { paddedBatchFeeds } from './fuse-helpers';
import { rotaryAttention, type RotaryShape } from './fuse-rotary-helpers';
import { floatOutputs, maxAbsDiff, rewriteTo, tempDir, type Feeds } from './sparse-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = tempDir('fuse-rotary'); });
afterAll(() => tmp.cleanup());

const written = (form: string) => form === 'unfused' || form === 'sdpa-decomposed';
const ops = (file: string, op: string) => loadModel(file).graph.nodes.filter((n) => n.opType === op);
// Written-out sites with a written-out rotation (the optimizer's ortfused exports have RotaryEmbedding already).
const withRope = fixtureNames().filter((name) => ops(fixture(name).model, 'Neg').length > 0 && analyzeModel(fixture(name).model).sites.some((s) => written(s.form) && s.position === 'rope'));
const hasCache = (name: string) => fixture(name).manifest.inputs.some((i) => /past/.test(i.name));

describe('fuse: the exported rotary embedding on the shared fixtures', () => {
  it('covers every fixture with a written-out rotary: eager, SDPA, the long and the trained model, KV caches', () => {
    expect([...withRope].sort()).toEqual(['bytelm-llama-trained', 'llama-eager-ts-op17', 'llama-long-eager-ts-op17', 'llama-past-eager-ts-op17', 'llama-past-sdpa-ts-op17', 'llama-sdpa-ts-op17']);
  });

  it.each(withRope)('%s: RotaryEmbedding instead of rotate_half, same outputs, same sites read back', async (name) => {
    const { model, dir, manifest } = fixture(name);
    const before = analyzeModel(model);
    const { file, report } = rewriteTo(model, [{ rule: 'fuse', params: {} }], tmp.dir, `${name}-rope`);
    expect(report.warnings).toEqual([]);
    const sites = before.sites.length;
    const cache = hasCache(name);
    // Q and K absorbed into the operator's operands; with a KV cache the operator reads K concatenated with the past
    // keys (which is also the present output), so K's rotation is rewritten in place, before the concatenation.
    const want = cache ? 'Q and K (in place) rotated by com.microsoft.RotaryEmbedding' : 'Q and K rotated by com.microsoft.RotaryEmbedding';
    expect(report.applied[0].changes.map((c) => c.after.rotary)).toEqual(Array(sites).fill(want));
    const rotary = ops(file, 'RotaryEmbedding');
    expect(rotary.length).toBe(2 * sites);
    for (const n of rotary) {
      expect(n.domain).toBe('com.microsoft');
      expect(n.name).toMatch(/::fuse\/rotary\/[qk]_rotary$/);
      expect(Number(n.attr('interleaved')?.i)).toBe(0);
      // It reads the 3-D projection output itself: no head split or transpose in between.
      expect(n.inputs[0]!.producer!.opType).toBe('MatMul');
      expect(n.inputs[0]!.name).toMatch(/[qk]_proj/);
    }
    // The exported rotate_half (the only Neg in these models) is gone, and with it the head-split transposes of Q and
    // K (an in-place K has one transpose back to the cache's layout).
    expect(ops(file, 'Neg').length).toBe(0);
    expect(ops(file, 'Transpose').length).toBeLessThan(ops(model, 'Transpose').length);

    const after = analyzeModel(file);
    expect(after.sites.length).toBe(sites);
    expect(after.unmatched).toEqual(before.unmatched);
    // (MultiHeadAttention reads back with its K/V heads repeated and its causality inside the bias, as fuse.test.ts says.)
    expect(after.sites.map((s) => [s.heads, s.headDim, s.kind, s.position])).toEqual(before.sites.map((s) => [s.heads, s.headDim, s.kind, s.position]));

    const feeds = manifestFeeds(dir, manifest.inputs);
    await expectSameOutputs(model, file, feeds);
    await expectSameOutputs(model, file, paddedBatchFeeds(dir, manifest.inputs, 3));
  });

  it('MultiHeadAttention with grouped heads (K repeated, read 4-D): K\'s rotation is rewritten in place, same outputs', async () => {
    const { model, dir, manifest } = fixture('llama-eager-ts-op17');
    const { file, report } = rewriteTo(model, [{ rule: 'fuse', params: { op: 'MultiHeadAttention' } }], tmp.dir, 'llama-mha-rope');
    expect(report.warnings).toEqual([]);
    expect(report.applied[0].changes.map((c) => c.after.rotary)).toEqual(Array(2).fill('Q and K (in place) rotated by com.microsoft.RotaryEmbedding'));
    expect(ops(file, 'RotaryEmbedding').length).toBe(4);
    expect(ops(file, 'Neg').length).toBe(0);
    await expectSameOutputs(model, file, manifestFeeds(dir, manifest.inputs));
    await expectSameOutputs(model, file, paddedBatchFeeds(dir, manifest.inputs, 3));
  });

  it('the tables are built once and shared by Q, K and every layer', () => {
    const { file } = rewriteTo(fixture('bytelm-llama-trained').model, [{ rule: 'fuse', params: {} }], tmp.dir, 'bytelm-rope-shared');
    const rotary = ops(file, 'RotaryEmbedding');
    expect(rotary.length).toBe(8);
    expect(new Set(rotary.map((n) => n.inputs[1]!.name)).size).toBe(1);
    expect(new Set(rotary.map((n) => n.inputs[2]!.name)).size).toBe(1);
    expect(new Set(rotary.map((n) => n.inputs[3]!.name)).size).toBe(1);
  });
});

describe('fuse: the rotary proof on small graphs', () => {
  const shape: RotaryShape = { heads: 4, dim: 16, seq: 9, tables: 'computed' };
  const feedsFor = (s: RotaryShape): Feeds => {
    const rng = new Rng(3);
    const x = new ort.Tensor('float32', Float32Array.from({ length: s.seq * s.heads * s.dim }, () => rng.normal()), [1, s.seq, s.heads * s.dim]);
    if (s.tables !== 'input') return { x };
    // Tables fed by the user: a real rotary's, so that the model computes one (nothing in the graph proves it).
    const table = (fn: (a: number) => number) => {
      const data = new Float32Array(s.seq * s.dim);
      for (let p = 0; p < s.seq; p++) for (let i = 0; i < s.dim; i++) data[p * s.dim + i] = fn(p * 10000 ** (-(2 * (i % (s.dim / 2))) / s.dim));
      return new ort.Tensor('float32', data, [1, 1, s.seq, s.dim]);
    };
    return { x, cos: table(Math.cos), sin: table(Math.sin) };
  };
  const fuse = (s: RotaryShape, tag: string) => {
    const model = rotaryAttention(tmp.dir, s, tag);
    const { file, report } = rewriteTo(model, [{ rule: 'fuse', params: {} }], tmp.dir, `${tag}-fused`);
    return { model, file, report };
  };

  it.each([
    ['tables computed from positions (Concat of the angles with themselves)', { ...shape }],
    ['rotate_half cut by Split', { ...shape, split: true }],
    ['constant tables whose halves are equal (checked on the data)', { ...shape, tables: 'equal-constant' as const }],
  ])('%s: absorbed, same outputs', async (_, s) => {
    const { model, file, report } = fuse(s, `rope-${s.tables}-${s.split ? 'split' : 'slice'}`);
    expect(report.warnings.join('\n')).toEqual('');
    expect(report.applied[0].changes[0].after).toMatchObject({ form: 'com.microsoft.GroupQueryAttention', rotary: 'Q and K rotated by com.microsoft.RotaryEmbedding' });
    expect(ops(file, 'RotaryEmbedding').length).toBe(2);
    expect(ops(file, 'Neg').length).toBe(0);
    await expectSameOutputs(model, file, feedsFor(s));
  });

  it.each([
    ['tables that are graph inputs', { ...shape, tables: 'input' as const }, /'cos' is a graph input/],
    ['constant tables whose halves differ', { ...shape, tables: 'unequal-constant' as const }, /the constant 'cos_table' differs between its halves/],
  ])('%s: the rotary stays as exported, the report says why, same outputs', async (_, s, why) => {
    const { model, file, report } = fuse(s, `rope-${s.tables}`);
    expect(report.warnings).toHaveLength(2);
    expect(report.warnings[0]).toMatch(/^fuse: site 0: the rotary embedding of Q stays as exported: the two halves of the cos table/);
    expect(report.warnings[0]).toMatch(why);
    expect(report.warnings[1]).toMatch(/^fuse: site 0: the rotary embedding of K stays as exported/);
    const after = report.applied[0].changes[0].after;
    expect(after.form).toBe('com.microsoft.GroupQueryAttention');
    expect(String(after.rotary)).toMatch(/^the rotary embedding of Q stays as exported/);
    expect(ops(file, 'RotaryEmbedding').length).toBe(0);
    expect(ops(file, 'Neg').length).toBe(2);
    await expectSameOutputs(model, file, feedsFor(s));
  });

  it('a rotated K that is also a graph output (a present_key) is written from RotaryEmbedding, not rotated twice', async () => {
    const s = { ...shape, presentK: true };
    const { model, file, report } = fuse(s, 'rope-present');
    expect(report.warnings).toEqual([]);
    expect(ops(file, 'RotaryEmbedding').length).toBe(2);
    expect(ops(file, 'Neg').length).toBe(0);
    const out = loadModel(file).graph.outputs.map((o) => o.name);
    expect(out).toEqual(['out', 'present_key']);
    await expectSameOutputs(model, file, feedsFor(s));
  });
});

async function expectSameOutputs(model: string, file: string, feeds: Feeds): Promise<void> {
  const a = await floatOutputs(model, feeds);
  const b = await floatOutputs(file, feeds);
  expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
  for (const o of Object.keys(a)) expect(maxAbsDiff(b[o], a[o]), o).toBeLessThan(1e-4);
}
