// share-attn and share-kv against references computed outside the rewritten graph: the source site's probabilities
// (or K and V) and the target's own tensors are read from the original model, multiplied here, and compared with what
// the rewritten target computes. Everything before the target is unchanged by the rewrite, so its inputs are too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../src/analysis/ir/load';
import { rewriteModel } from '../../src/rewriters/pipeline';
import { RuleError } from '../../src/rewriters/rule';
import { exposeAttentionMaps } from '../../src/runtime/maps-model';
import {
  batchedMatMul, exposeValues, feedsOf, fileSize, fixture, maxAbsDiff, outputsOf, rewriteFixture, scratch, sitesOf, tensorsOf,
} from './shared-prune-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = scratch('shared-share'); });
afterAll(() => tmp.cleanup());

/** Name of input `index` (or the output) of the node `node` in `file`. */
function valueAt(file: string, node: string, index: number | 'out'): string {
  const n = loadModel(file).graph.nodeByName(node);
  if (!n) throw new Error(`${file} has no node ${node}`);
  return index === 'out' ? n.outputs[0].name : n.input(index)!.name;
}

describe('share-attn on unfused sites', () => {
  it.each([
    ['gpt2-eager-ts-op17', 0, 1],
    ['llama-sdpa-ts-op17', 0, 1],
    ['bert-eager-ts-op17-ortfused', 0, 1],
    ['bart-eager-ts-op17', 2, 4], // decoder self-attention
    ['bart-sdpa-ts-op17', 3, 5], // decoder cross-attention, same encoder output
  ] as const)('%s %i:%i: the target multiplies the source probabilities with its own V', async (name, i, j) => {
    const original = fixture(name).model;
    const sites = sitesOf(original);
    const pvI = sites[i].anchors.pv!;
    const pvJ = sites[j].anchors.pv!;
    const feeds = feedsOf(name);
    const ref = exposeValues(original, [valueAt(original, pvI, 0), valueAt(original, pvJ, 1)], tmp.dir, 'ref');
    const t = await tensorsOf(ref, feeds, [valueAt(original, pvI, 0), valueAt(original, pvJ, 1)]);
    const want = batchedMatMul(t[valueAt(original, pvI, 0)], t[valueAt(original, pvJ, 1)]);

    const { file, report } = rewriteFixture(name, [{ rule: 'share-attn', params: { pairs: [[i, j]] } }], tmp.dir, 'share-attn');
    const outName = valueAt(file, pvJ, 'out');
    const got = await tensorsOf(exposeValues(file, [outName], tmp.dir, 'got'), feeds, [outName]);
    expect(maxAbsDiff(got[outName].data, want)).toBeLessThanOrEqual(1e-4);
    // j's own scores are gone: one softmax less, smaller file, only P·V left in the cost.
    expect(sitesOf(file).length).toBe(sites.length - 1);
    expect(fileSize(file)).toBeLessThan(fileSize(original));
    const c = report.applied[0].changes[0];
    expect(c.flopsAfter! / c.flopsBefore!).toBeCloseTo(0.5, 10);
    expect(c.bytesAfter).toBe(0);
  });
});

describe('share-attn with fused sites', () => {
  it.each([['fused-onnx23'], ['fused-gqa']])('%s 0:1: the expanded target computes P(0)·V(1)', async (name) => {
    const original = fixture(name).model;
    const sites = sitesOf(original);
    const feeds = feedsOf(name);
    // Site 0's probabilities through the runtime's own exposure; site 1's V as it enters the operator.
    const maps = exposeAttentionMaps(original, [sites[0]]);
    let probs;
    try {
      probs = (await tensorsOf(maps.model, feeds, [maps.sites[0].output]))[maps.sites[0].output];
    } finally {
      maps.cleanup();
    }
    const vName = valueAt(original, sites[1].anchors.fused!, 2);
    const v = (await tensorsOf(exposeValues(original, [vName], tmp.dir, 'v'), feeds, [vName]))[vName];
    // V [batch, seq, kvHeads·d] into heads, repeated to the query heads as grouped-query attention reads it.
    const [b, s] = v.dims;
    const { heads, kvHeads, headDim: d } = sites[1];
    const perHead = new Float32Array(b * heads! * s * d!);
    for (let h = 0; h < heads!; h++) {
      const kv = Math.floor(h / (heads! / kvHeads!));
      for (let t = 0; t < s; t++) for (let k = 0; k < d!; k++) perHead[(h * s + t) * d! + k] = v.data[t * kvHeads! * d! + kv * d! + k];
    }
    const pv = batchedMatMul(probs, { data: perHead, dims: [b, heads!, s, d!] });

    const { file } = rewriteFixture(name, [{ rule: 'share-attn', params: { pairs: [[0, 1]] } }], tmp.dir, 'share-attn');
    // What reaches site 1's output projection: [batch, seq, heads·d].
    const oIn = valueAt(file, sites[1].projections.o!.node, 0);
    const got = (await tensorsOf(exposeValues(file, [oIn], tmp.dir, 'got'), feeds, [oIn]))[oIn];
    const merged = new Float64Array(got.data.length);
    for (let h = 0; h < heads!; h++) for (let t = 0; t < s; t++) for (let k = 0; k < d!; k++) merged[t * heads! * d! + h * d! + k] = pv[(h * s + t) * d! + k];
    expect(maxAbsDiff(got.data, merged)).toBeLessThanOrEqual(1e-4);
    expect(loadModel(file).graph.nodes.filter((n) => n.opType === 'MatMul' && n.input(1)?.initializer).map((n) => n.input(1)!.name)).not.toContain('l1.Wq');
  });
});

describe('share-kv', () => {
  it.each([
    ['gpt2-eager-ts-op17', 0, 1],
    ['llama-eager-ts-op17', 0, 1], // rotary and grouped-query repeat
    ['gpt2-sdpa-ts-op17', 0, 1], // K scaled on its path
    ['bart-eager-ts-op17', 3, 5], // cross-attention over the same encoder output
  ] as const)('%s %i:%i: the target scores its own queries against the source keys and mixes the source values', async (name, i, j) => {
    const original = fixture(name).model;
    const sites = sitesOf(original);
    const feeds = feedsOf(name);
    const qJ = valueAt(original, sites[j].anchors.qk!, 0);
    const kI = valueAt(original, sites[i].anchors.qk!, 1);
    const vI = valueAt(original, sites[i].anchors.pv!, 1);
    const ref = await tensorsOf(exposeValues(original, [qJ, kI, vI], tmp.dir, 'ref'), feeds, [qJ, kI, vI]);

    const { file, report } = rewriteFixture(name, [{ rule: 'share-kv', params: { pairs: [[i, j]] } }], tmp.dir, 'share-kv');
    const scores = valueAt(file, sites[j].anchors.qk!, 'out');
    const probs = valueAt(file, sites[j].anchors.pv!, 0);
    const out = valueAt(file, sites[j].anchors.pv!, 'out');
    const got = await tensorsOf(exposeValues(file, [scores, probs, out], tmp.dir, 'got'), feeds, [scores, probs, out]);
    expect(maxAbsDiff(got[scores].data, batchedMatMul(ref[qJ], ref[kI]))).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(got[out].data, batchedMatMul(got[probs], ref[vI]))).toBeLessThanOrEqual(1e-4);
    // j's K and V projections are gone.
    expect(fileSize(file)).toBeLessThan(fileSize(original));
    const c = report.applied[0].changes[0];
    expect(c.after.params as number).toBeLessThan(c.before.params as number);
    expect(c.after.kvFrom).toBe(i);
  });

  it('a KV-cache target writes the cache its source writes', async () => {
    const name = 'gpt2-past-eager-ts-op17';
    const { file } = rewriteFixture(name, [{ rule: 'share-kv', params: { pairs: [[0, 1]] } }], tmp.dir, 'share-kv');
    const feeds = feedsOf(name);
    const [before, after] = [await outputsOf(fixture(name).model, feeds), await outputsOf(file, feeds)];
    for (const kind of ['key', 'value']) {
      expect(maxAbsDiff(after[`present.1.${kind}`], before[`present.0.${kind}`])).toBe(0);
      expect(maxAbsDiff(after[`present.0.${kind}`], before[`present.0.${kind}`])).toBe(0);
    }
    expect(maxAbsDiff(after.logits, before.logits)).toBeGreaterThan(1e-3);
  });

  it.each([['fused-mha'], ['fused-gqa'], ['fused-onnx23']])('%s 0:1: the target operator reads the source K and V inputs', async (name) => {
    const { file } = rewriteFixture(name, [{ rule: 'share-kv', params: { pairs: [[0, 1]] } }], tmp.dir, 'share-kv');
    const g = loadModel(file).graph;
    const [a, b] = g.nodes.filter((n) => n.domain === 'com.microsoft' || n.opType === 'Attention');
    expect(b.input(1)).toBe(a.input(1));
    expect(b.input(2)).toBe(a.input(2));
    expect([...g.initializers.keys()].some((k) => k.startsWith('l1.Wk') || k.startsWith('l1.Wv'))).toBe(false);
    const out = await outputsOf(file, feedsOf(name));
    expect(out.y.every(Number.isFinite)).toBe(true);
  });
});

describe('chains of pairs', () => {
  it.each([
    ['share-kv', 'qk', 1],
    ['share-kv', 'pv', 1],
    ['share-attn', 'pv', 0],
  ] as const)('%s 0:1, 1:2: site 2 reads what site 0 computes (%s input %i)', async (rule, anchor, index) => {
    const name = 'bytelm-llama-trained';
    const sites = sitesOf(fixture(name).model);
    const { file } = rewriteFixture(name, [{ rule, params: { pairs: [[0, 1], [1, 2]] } }], tmp.dir, `${rule}-chain`);
    const node = sites[2].anchors[anchor]!;
    const source = sites[0].anchors[anchor]!;
    expect(valueAt(file, node, index)).toBe(valueAt(file, source, index));
    const out = await outputsOf(file, feedsOf(name));
    expect(out.logits.every(Number.isFinite)).toBe(true);
  });
});

describe('pairs that cannot share are RuleErrors naming the rule', () => {
  const attempt = (name: string, rule: string, pairs: unknown) => () => rewriteModel(fixture(name).model, [{ rule, params: { pairs } }], `${tmp.dir}/never.onnx`);
  it.each([
    ['bart-eager-ts-op17', 'share-kv', [[2, 3]], /share-kv: 2:3: site 2 is self-attention and site 3 is cross-attention/],
    ['bart-eager-ts-op17', 'share-attn', [[0, 2]], /share-attn: 0:2: site 0 is not causal and site 2 is causal/],
    ['gpt2-eager-ts-op17', 'share-kv', [[1, 0]], /share-kv: 1:0: the source site must come before the target/],
    ['gpt2-eager-ts-op17', 'share-attn', [[0, 2]], /share-attn: site 2 does not exist/],
    ['gpt2-eager-ts-op17', 'share-attn', [[0, 0]], /share-attn: site 0 cannot share with itself/],
    ['bart-eager-ts-op17', 'share-kv', [[2, 4], [3, 4]], /share-kv: site 4 is the target of two pairs/],
    ['fused-contrib_attention', 'share-kv', [[0, 1]], /share-kv: 0:1: packed Attention computes K and V inside the operator/],
    ['gpt2-eager-ts-op17', 'share-kv', [], /share-kv: give at least one I:J pair/],
  ] as const)('%s %s %j', (name, rule, pairs, message) => {
    expect(attempt(name, rule, pairs)).toThrow(RuleError);
    expect(attempt(name, rule, pairs)).toThrow(message);
  });
});
