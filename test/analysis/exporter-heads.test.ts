// Head rewrites on plain PyTorch exports (test/models/export.py): nanoGPT merges the heads with `view(B, T, C)`, C read
// at run time from the block's input, which stays C after pruning; GPT-NeoX packs Q, K and V per head and rotates part
// of each head before the core, and SwinV2's cosine attention normalises Q and K there, so the standard-layout pass
// cannot rebuild those sites and the pipeline splits their packed projection instead. Pruning must equal zeroing the
// heads in the original graph.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { rewriteModel } from '../../src/rewriters/pipeline';
import { maskedOutputs, maxAbsDiff, outputsOf, scratch, type Feeds } from '../rewriters/shared-prune-helpers';

const MODELS = path.join(__dirname, '..', 'models');
const model = (name: string) => path.join(MODELS, `${name}.onnx`);

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = scratch('exporter-heads'); });
afterAll(() => tmp.cleanup());

const ids = (): Feeds => ({ input_ids: new ort.Tensor('int64', BigInt64Array.from({ length: 2 * 20 }, (_, i) => BigInt((i * 7 + 3) % 50)), [2, 20]) });
const floats = (dims: number[]): Feeds => ({ x: new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b) }, (_, i) => Math.sin(i * 0.37)), dims) });

async function expectPruneEqualsZeroing(name: string, heads: Record<number, number[]>, feeds: Feeds): Promise<string[]> {
  const out = path.join(tmp.dir, `${name}.pruned.onnx`);
  const report = rewriteModel(model(name), [{ rule: 'prune-heads', params: { heads } }], out);
  const want = await maskedOutputs(model(name), heads, feeds, tmp.dir, { onlyZeroed: true });
  const got = await outputsOf(out, feeds);
  const before = await outputsOf(model(name), feeds);
  for (const [k, w] of Object.entries(want)) {
    expect(maxAbsDiff(got[k], w), k).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(before[k], w), `${k} changed`).toBeGreaterThan(1e-4);
  }
  return report.warnings;
}

describe('the longest input', () => {
  it("is the size of a causal buffer sliced to the sequence (nanoGPT's block_size), not torch.nn's sliced weights", () => {
    expect(analyzeModel(model('nanogpt-op11')).model.maxPositions).toBe(64);
    expect(analyzeModel(model('neox-rope-op14')).model.maxPositions).toBe(64);
    // torch.nn slices its packed in_proj_weight with ends computed at run time: no bound.
    expect(analyzeModel(model('nnenc-causal-pad-op14')).model.maxPositions).toBeUndefined();
  });
});

describe('pruning heads of plain PyTorch exports', () => {
  it("nanoGPT: the heads' merge reshape takes its width from the block's input; it is updated like a literal", async () => {
    await expectPruneEqualsZeroing('nanogpt-op11', { 0: [1], 1: [0, 3] }, ids());
  });

  it('GPT-NeoX: the per-head packed projection is split into Q, K and V; the partial rotary stays as it is', async () => {
    const warnings = await expectPruneEqualsZeroing('neox-rope-op14', { 0: [2], 1: [0, 1] }, ids());
    expect(warnings.join('\n')).toMatch(/site 0: its packed Q, K and V projection split into one per role first, the rest of the site kept as it is \(.* between a projection and the core\); exact/);
  });

  it('SwinV2 cosine attention: the normalised Q and K stay, the projection is split', async () => {
    await expectPruneEqualsZeroing('cosine-attn-op14', { 1: [3] }, floats([2, 12, 32]));
  });

  it('a per-head temperature after the scalar scale: the standard-layout pass keeps both, prune equals zeroing', async () => {
    // The reported scale is unknown (not one number); the rebuilt site must still apply head_dim ** -0.5 to Q.
    const feeds = floats([2, 12, 32]);
    const before = await outputsOf(model('perhead-temp-op14'), feeds);
    const wide = path.join(tmp.dir, 'temp.window.onnx');
    const report = rewriteModel(model('perhead-temp-op14'), [{ rule: 'window', params: { window: 64 } }], wide);
    expect(report.warnings.join('\n')).toMatch(/rewritten into the standard layout first/);
    expect(maxAbsDiff((await outputsOf(wide, feeds)).y, before.y)).toBeLessThan(1e-5);
    await expectPruneEqualsZeroing('perhead-temp-op14', { 0: [1], 1: [2] }, feeds);
  });

  it("multi-query: the `kv` Linear (K and V packed, Q separate) is split; pruning keeps the one KV head", async () => {
    const warnings = await expectPruneEqualsZeroing('mqa-alibi-op14', { 0: [1, 2], 1: [0] }, ids());
    expect(warnings.join('\n')).toMatch(/site 0: its packed K and V projection split into one per role first, the rest of the site kept as it is \(K and V share a projection apart from the third\); exact/);
  });

  it.each([['share-kv', 'share-kv-0-1'], ['share-attn', 'share-attn-0-1']] as const)('multi-query: %s 0:1 equals PyTorch on the same weights', async (rule, oracle) => {
    const out = path.join(tmp.dir, `mqa.${rule}.onnx`);
    rewriteModel(model('mqa-alibi-op14'), [{ rule, params: { pairs: [[0, 1]] } }], out);
    const want = new Float32Array(new Uint8Array(fs.readFileSync(path.join(MODELS, `mqa-alibi-op14.${oracle}.bin`))).buffer);
    const [got, before] = [(await outputsOf(out, ids())).hidden, (await outputsOf(model('mqa-alibi-op14'), ids())).hidden];
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
    expect(maxAbsDiff(before, want)).toBeGreaterThan(1e-2);
  });

  it('gqa does not add KV heads to a multi-query site; the reason is given', () => {
    expect(() => rewriteModel(model('mqa-alibi-op14'), [{ rule: 'gqa', params: { groups: 2 } }], path.join(tmp.dir, 'mqa.gqa.onnx')))
      .toThrow(/site 0 skipped: it has 1 KV head, fewer than g=2: grouping only merges KV heads/);
  });

  it('Conformer relative-position attention: prune-heads is refused (its per-head Q biases and position projection stay whole), naming the op; nothing is written', async () => {
    const out = path.join(tmp.dir, 'conformer.pruned.onnx');
    expect(() => rewriteModel(model('relpos-conformer-op14'), [{ rule: 'prune-heads', params: { heads: { 0: [1] } } }], out))
      .toThrow(/prune-heads: the rewritten model's sizes disagree: Add '\/a\/Add' combines \[\?, \?, 3, 8\] with \[4, 8\] \(and 1 more\); a per-head value on the site's way was not cut with its heads/);
    expect(fs.existsSync(out)).toBe(false);
    // The rules that keep the heads apply: fuse is exact, gqa runs.
    const feeds: Feeds = {
      feats: new ort.Tensor('float32', Float32Array.from({ length: 2 * 12 * 20 }, (_, i) => Math.sin(i * 0.37)), [2, 12, 20]),
      mask: new ort.Tensor('bool', Uint8Array.from({ length: 24 }, (_, i) => (i >= 21 ? 0 : 1)), [2, 1, 12]),
    };
    const fused = path.join(tmp.dir, 'conformer.fused.onnx');
    rewriteModel(model('relpos-conformer-op14'), [{ rule: 'fuse', params: {} }], fused);
    expect(maxAbsDiff((await outputsOf(fused, feeds)).out, (await outputsOf(model('relpos-conformer-op14'), feeds)).out)).toBeLessThan(1e-5);
  });

  it.each([
    ['siglip-map-op14', (): Feeds => ({ pixel_values: new ort.Tensor('float32', Float32Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37)), [2, 3, 32, 32]) })],
    ['perceiver-cross-op14', ids],
  ] as const)('learned queries (%s): found as cross-attention with its heads and scale; prune-heads equals zeroing, fuse is exact', async (name, feeds) => {
    // The query is a learned array expanded or tiled to the batch: constant-like, but not a weight.
    const r = analyzeModel(model(name));
    expect(r.unmatched).toEqual([]);
    expect(r.sites.map((s) => [s.kind, s.heads, s.kvHeads, s.headDim, s.scale?.toFixed(4), s.binding?.queryPositions])).toEqual([['cross', 4, 4, 8, '0.3536', name === 'siglip-map-op14' ? 1 : 6]]);
    await expectPruneEqualsZeroing(name, { 0: [1, 2] }, feeds());
    const fused = path.join(tmp.dir, `${name}.fused.onnx`);
    rewriteModel(model(name), [{ rule: 'fuse', params: {} }], fused);
    const [a, b] = [await outputsOf(fused, feeds()), await outputsOf(model(name), feeds())];
    for (const k of Object.keys(b)) expect(maxAbsDiff(a[k], b[k]), k).toBeLessThan(1e-5);
  });

  it('share-kv and gqa run on the split GPT-NeoX projection (the outputs change, the model runs)', async () => {
    for (const [rule, params] of [['share-kv', { pairs: [[0, 1]] }], ['gqa', { groups: 2 }]] as const) {
      const out = path.join(tmp.dir, `neox.${rule}.onnx`);
      rewriteModel(model('neox-rope-op14'), [{ rule, params }], out);
      const y = (await outputsOf(out, ids())).hidden;
      expect(y.every(Number.isFinite), rule).toBe(true);
    }
  });
});

describe('position terms computed from Q, K or V at run time', () => {
  const pixels = (): Feeds => ({ pixel_values: new ort.Tensor('float32', Float32Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37)), [2, 3, 32, 32]) });

  async function expectFuseExact(name: string, feeds: () => Feeds): Promise<void> {
    const fused = path.join(tmp.dir, `${name}.fused.onnx`);
    rewriteModel(model(name), [{ rule: 'fuse', params: {} }], fused);
    const [a, b] = [await outputsOf(fused, feeds()), await outputsOf(model(name), feeds())];
    for (const k of Object.keys(b)) expect(maxAbsDiff(a[k], b[k]), k).toBeLessThan(1e-5);
  }

  it("CoaT's convolutional position term reads V and Q outside the attention: gqa is refused naming the reader, nothing is written; fuse is exact", async () => {
    const [s] = analyzeModel(model('coat-crpe-op14')).sites;
    expect([s.heads, s.kvHeads, s.headDim, s.scale?.toFixed(4), s.maskType]).toEqual([4, 4, 8, '0.3536', 'none']);
    // Averaging V's heads into two would hand the convolution a V of half the width (the model then failed at run time).
    const out = path.join(tmp.dir, 'coat.gqa.onnx');
    expect(() => rewriteModel(model('coat-crpe-op14'), [{ rule: 'gqa', params: { groups: 2 } }], out))
      .toThrow(/gqa: site 0: V \('[^']+'\) is also read outside the attention by Transpose '\/a\/Transpose_2', which would get the rewritten tensor/);
    expect(fs.existsSync(out)).toBe(false);
    await expectFuseExact('coat-crpe-op14', pixels);
  });

  it("DeBERTa's disentangled attention: the scale (3·8) ** -0.5 from the runtime shape, the gathered c2p and p2c terms a bias; fuse is exact, prune-heads is refused", async () => {
    const [s] = analyzeModel(model('deberta-disent-op14')).sites;
    expect([s.heads, s.kvHeads, s.headDim, s.scale?.toFixed(4), s.maskType]).toEqual([4, 4, 8, (24 ** -0.5).toFixed(4), 'bias']);
    await expectFuseExact('deberta-disent-op14', ids);
    // The position projections use the K and Q weights too: their c2p and p2c terms keep 4 heads where the scores have
    // 3 (the head sizes read at run time as width // heads are corrected; the terms are not the rule's to cut).
    expect(() => rewriteModel(model('deberta-disent-op14'), [{ rule: 'prune-heads', params: { heads: { 0: [1] } } }], path.join(tmp.dir, 'deberta.pruned.onnx')))
      .toThrow(/prune-heads: the rewritten model's sizes disagree: Add '[^']+' combines \[\?, 3, \?, \?\] with \[\?, 4, \?, \?\]/);
  });
});

describe("a Stable Diffusion UNet block's attention (diffusers' classic processor)", () => {
  const unet = model('unet-attn-op14');
  const feeds = (): Feeds => ({
    sample: new ort.Tensor('float32', Float32Array.from({ length: 2 * 32 * 6 * 6 }, (_, i) => Math.sin(i * 0.37)), [2, 32, 6, 6]),
    encoder_hidden_states: new ort.Tensor('float32', Float32Array.from({ length: 2 * 5 * 24 }, (_, i) => Math.cos(i * 0.21)), [2, 5, 24]),
  });

  it('self- and cross-attention with the scale and no mask (baddbmm over an empty tensor times 0 adds nothing)', () => {
    const r = analyzeModel(unet);
    expect(r.sites.map((s) => [s.kind, s.heads, s.headDim, s.scale?.toFixed(4), s.maskType])).toEqual([['self', 4, 8, '0.3536', 'none'], ['cross', 4, 8, '0.3536', 'none']]);
  });

  it('the head rewrites and the head masks refuse it: its sizes are not bound, and its head size is computed at run time (they wrote models that failed)', async () => {
    const out = path.join(tmp.dir, 'unet.pruned.onnx');
    expect(() => rewriteModel(unet, [{ rule: 'prune-heads', params: { heads: { 0: [1] } } }], out))
      .toThrow(/prune-heads: site 0: dimensions not bound across Q, K, V and the output: .*; the heads cannot be cut without knowing every size that splits them/);
    expect(fs.existsSync(out)).toBe(false);
    await expect(maskedOutputs(unet, { 0: [1] }, feeds(), tmp.dir)).rejects.toThrow(/site 0: its per-head output has an unknown layout/);
    // The mask form of a window applies and runs.
    const windowed = path.join(tmp.dir, 'unet.window.onnx');
    rewriteModel(unet, [{ rule: 'window', params: { window: 3 } }], windowed);
    const [a, b] = [await outputsOf(unet, feeds()), await outputsOf(windowed, feeds())];
    expect(maxAbsDiff(a.out, b.out)).toBeGreaterThan(1e-4);
  });
});
