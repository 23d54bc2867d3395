// gqa: identities where the grouping already holds, and the approximation against a reference built independently:
// the same model with each K/V head's weight and bias columns overwritten by its group's mean (no change of structure),
// which must give the outputs of the real grouped-query rewrite.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { loadModel } from '../../src/analysis/ir/load';
import { saveModel } from '../../src/analysis/ir/save';
import { rewriteModel } from '../../src/rewriters/pipeline';
import { RuleError } from '../../src/rewriters/rule';
import { feedsOf, fileSize, fixture, maxAbsDiff, outputsOf, rewriteFixture, scratch, sitesOf } from './shared-prune-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = scratch('shared-gqa'); });
afterAll(() => tmp.cleanup());

describe('gqa identities', () => {
  it.each([
    ['llama-eager-ts-op17', 2],
    ['llama-sdpa-ts-op17-ortfused', 2],
    ['llama-past-sdpa-ts-op17', 2],
    ['fused-gqa', 2],
    ['bytelm-llama-trained', 4],
    // A multi-head site grouped into as many groups as heads: each group is one head.
    ['gpt2-eager-ts-op17', 4],
    ['bert-sdpa-dynamo-op23', 4],
    ['fused-mha', 4],
  ] as const)('%s with g = %i changes no output (1e-4)', async (name, g) => {
    const { file, report } = rewriteFixture(name, [{ rule: 'gqa', params: { groups: g } }], tmp.dir, `gqa${g}`);
    const feeds = feedsOf(name);
    const [a, b] = [await outputsOf(fixture(name).model, feeds), await outputsOf(file, feeds)];
    for (const out of Object.keys(a)) expect(maxAbsDiff(a[out], b[out]), out).toBeLessThanOrEqual(1e-4);
    for (const c of report.applied[0].changes) expect(c.after.kvHeads).toBe(g);
  });
});

/**
 * The reference for a multi-head model: the K and V weight and bias columns of head h replaced by the mean of its
 * group's columns, computed on the raw initializers (as the fixtures store them: weights [in, out], K and V at their
 * column offsets in a packed weight). The structure stays multi-head.
 */
function meanPooledCopy(name: string, groups: number): string {
  const model = loadModel(fixture(name).model);
  const report = analyzeModel(fixture(name).model);
  const done = new Set<string>();
  for (const s of report.sites) {
    const H = s.heads!;
    const d = s.headDim!;
    const size = H / groups;
    expect(s.kvHeads).toBe(H);
    for (const role of ['k', 'v'] as const) {
      const p = s.projections[role]!;
      expect(p.layout).toBe('in_out');
      // The analysis gives no slices for the dynamo export's packed c_attn (a Split feeding a fused operator); GPT-2
      // packs Q, K, V in that order and equal widths.
      const packedWithoutSlices = p.sliceStart === undefined && s.projections.q?.weight === p.weight;
      const start = p.sliceStart ?? (packedWithoutSlices ? (role === 'k' ? 1 : 2) * H * d : 0);
      for (const [tensorName, isBias] of [[p.weight, false], [p.bias, true]] as const) {
        if (!tensorName || done.has(`${tensorName}@${start}`)) continue;
        done.add(`${tensorName}@${start}`);
        const t = model.graph.initializers.get(tensorName)!;
        const rows = isBias ? 1 : t.dims[0];
        const cols = isBias ? t.dims[0] : t.dims[1];
        const data = new Float32Array(Uint8Array.from(t.bytes()).buffer);
        const orig = Float32Array.from(data);
        for (let h = 0; h < H; h++) {
          const first = Math.floor(h / size) * size;
          for (let r = 0; r < rows; r++) {
            for (let k = 0; k < d; k++) {
              let sum = 0;
              for (let m = first; m < first + size; m++) sum += orig[r * cols + start + m * d + k];
              data[r * cols + start + h * d + k] = sum / size;
            }
          }
        }
        t.proto.rawData = new Uint8Array(data.buffer);
      }
    }
  }
  const out = `${tmp.dir}/${name}.mean-pooled.onnx`;
  saveModel(model, out);
  return out;
}

describe('gqa approximation', () => {
  it.each([
    ['gpt2-eager-ts-op17', 2],
    ['gpt2-sdpa-dynamo-op23', 1],
    ['bert-eager-ts-op17', 2],
    ['llama-long-eager-ts-op17', 2],
    ['fused-onnx23', 2],
    ['fused-mha', 2],
    ['vit-sdpa-ts-op17-ortfused', 1],
  ] as const)('%s with g = %i equals the mean-pooled weights in multi-head form', async (name, g) => {
    const reference = meanPooledCopy(name, g);
    const { file, report } = rewriteFixture(name, [{ rule: 'gqa', params: { groups: g } }], tmp.dir, `gqa${g}`);
    const feeds = feedsOf(name);
    const [want, got, before] = [await outputsOf(reference, feeds), await outputsOf(file, feeds), await outputsOf(fixture(name).model, feeds)];
    for (const out of Object.keys(want)) {
      expect(maxAbsDiff(got[out], want[out]), out).toBeLessThanOrEqual(1e-4);
      expect(maxAbsDiff(before[out], want[out]), `${out}: pooling changed nothing`).toBeGreaterThan(1e-3);
    }
    for (const c of report.applied[0].changes) {
      expect(c.after.kvHeads).toBe(g);
      expect(c.flopsAfter).toBe(c.flopsBefore);
    }
    if (name === 'fused-mha') {
      // MultiHeadAttention cannot hold fewer KV heads: the means are repeated, and the report says so.
      expect(report.warnings.join('\n')).toMatch(/one KV head per query head|own copy of its KV head/);
      expect(report.applied[0].changes[0].after.kvHeadsInGraph).toBe(4);
    } else {
      expect(sitesOf(file).every((s) => s.kvHeads === g || g === 1)).toBe(true);
      expect(fileSize(file)).toBeLessThan(fileSize(fixture(name).model));
    }
  });

  it('a grouped-query model grouped further averages its KV heads', async () => {
    // llama: query heads 0,1 read KV head 0 and 2,3 read KV head 1; one group of four averages the two KV heads.
    const { file } = rewriteFixture('llama-eager-ts-op17', [{ rule: 'gqa', params: { groups: 1 } }], tmp.dir, 'gqa1');
    const before = loadModel(fixture('llama-eager-ts-op17').model).graph;
    const after = loadModel(file).graph;
    const w = (g: typeof before) => {
      const t = g.nodeByName('/m/model/layers.0/self_attn/k_proj/MatMul')!.input(1)!.initializer!;
      return { dims: t.dims, data: t.toNumbers() };
    };
    const [a, b] = [w(before), w(after)];
    expect(b.dims).toEqual([128, 32]);
    let max = 0;
    for (let r = 0; r < 128; r++) for (let k = 0; k < 32; k++) max = Math.max(max, Math.abs(b.data[r * 32 + k] - (a.data[r * 64 + k] + a.data[r * 64 + 32 + k]) / 2));
    expect(max).toBeLessThan(1e-6);
  });
});

describe('gqa parameters', () => {
  const attempt = (groups: unknown) => () => rewriteModel(fixture('gpt2-eager-ts-op17').model, [{ rule: 'gqa', params: { groups } }], `${tmp.dir}/never.onnx`);
  it('refuses g that divides no site’s heads, and g < 1', () => {
    expect(attempt(3)).toThrow(RuleError);
    expect(attempt(3)).toThrow(/gqa: g=3 does not divide the number of query heads of any site \(4\)/);
    expect(attempt(8)).toThrow(/gqa: g=8 does not divide/);
    expect(attempt(0)).toThrow(/gqa: the number of groups must be a positive integer/);
  });
});
