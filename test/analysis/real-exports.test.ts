// Two small models exported by PyTorch itself (test/models/README.md says how): torchvision's Swin Transformer, whose
// windows are cut before the projections and whose scale is computed from the runtime shape, and attention written
// with torch.einsum. The analysis reports what it can establish and leaves the rest unknown; head pruning equals
// zeroing the head in the original graph; sparse rules keep their identities.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { rewriteModel, type RuleRequest } from '../../src/rewriters/pipeline';
import { maskedOutputs, maxAbsDiff, outputsOf, scratch } from '../rewriters/shared-prune-helpers';

const MODELS = path.join(__dirname, '..', 'models');
const swin = path.join(MODELS, 'swin-tiny-op14.onnx');
const einsum = path.join(MODELS, 'einsum-attn-op14.onnx');

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = scratch('real-exports'); });
afterAll(() => tmp.cleanup());

const pixels = () => ({ pixel_values: new ort.Tensor('float32', Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37)), [1, 3, 32, 32]) });
const ids = () => ({ input_ids: new ort.Tensor('int64', BigInt64Array.from({ length: 2 * 12 }, (_, i) => BigInt((i * 7) % 64)), [2, 12]) });

async function expectPruneEqualsMask(file: string, heads: Record<number, number[]>, feeds: Record<string, ort.Tensor>, tag: string): Promise<void> {
  const out = path.join(tmp.dir, `${tag}.pruned.onnx`);
  rewriteModel(file, [{ rule: 'prune-heads', params: { heads } }], out);
  const want = await maskedOutputs(file, heads, feeds, tmp.dir, { onlyZeroed: true });
  const got = await outputsOf(out, feeds);
  const before = await outputsOf(file, feeds);
  for (const [k, w] of Object.entries(want)) {
    expect(maxAbsDiff(got[k], w), k).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(before[k], w), `${k} changed`).toBeGreaterThan(1e-4);
  }
}

describe('torchvision Swin Transformer (PyTorch 1.13 export)', () => {
  it('heads per stage; windows in the batch; the scale computed at run time, (C / heads) ** -0.5, is read', () => {
    const r = analyzeModel(swin);
    expect(r.unmatched).toEqual([]);
    expect(r.sites.map((s) => s.heads)).toEqual([2, 2, 4, 4]);
    // Stage 2 reads C through the padding of its windows (Pad), stage 1 directly; both have heads of 8.
    for (const s of r.sites) expect(s.scale).toBeCloseTo(8 ** -0.5, 9);
    // Stage 1: bound through the packed QKV (Reshape to [windows·batch, 16, 3, heads, 8], Transpose, Gather).
    const b = r.sites[0].binding!;
    expect(b.q.starts).toEqual([0, 8]);
    expect(b.k.starts).toEqual([16, 24]);
    expect(b.v.starts).toEqual([32, 40]);
    expect([b.queryPositions, b.keyPositions]).toEqual([16, 16]);
    // Stage 2 reshapes to [B_, N, 3, heads, C // heads] with B_ and C // heads unknown to the shape inference; B_ is
    // read as the activation's axis 0 (Shape → Gather → Concat), which leaves one unknown dim.
    const b2 = r.sites[2].binding!;
    expect([r.sites[2].headDim, b2.heads]).toEqual([8, 4]);
    expect(b2.q.starts).toEqual([0, 8, 16, 24]);
    expect(b2.v.starts).toEqual([64, 72, 80, 88]);
  });

  it('prune-heads equals zeroing the heads, after the standard-layout pass (which keeps the runtime-computed scale)', async () => {
    await expectPruneEqualsMask(swin, { 0: [1], 2: [0, 3] }, pixels(), 'swin');
  });

  it('prune-heads on a shifted-window block (scores reshaped for the window mask) splits the packed projection and equals zeroing the head', async () => {
    const out = path.join(tmp.dir, 'swin.shifted.onnx');
    const report = rewriteModel(swin, [{ rule: 'prune-heads', params: { heads: { 1: [1] } } }], out);
    expect(report.warnings.join('\n')).toMatch(/site 1: its packed Q, K and V projection split into one per role first, the rest of the site kept as it is \(Reshape '.*' on the scores\); exact/);
    await expectPruneEqualsMask(swin, { 1: [1] }, pixels(), 'swin-shifted');
  });

  it('a window wider than the windows changes nothing; blocked equals mask', async () => {
    const original = await outputsOf(swin, pixels());
    const run = async (key: string, params: Record<string, unknown>) => {
      const out = path.join(tmp.dir, `swin.${key}.onnx`);
      rewriteModel(swin, [{ rule: 'window', params }], out);
      return outputsOf(out, pixels());
    };
    const long = await run('long', { window: 64 });
    const mask = await run('mask', { window: 3 });
    const blocked = await run('blocked', { window: 3, impl: 'blocked' });
    expect(maxAbsDiff(long.logits, original.logits)).toBeLessThan(1e-4);
    expect(maxAbsDiff(blocked.logits, mask.logits)).toBeLessThan(1e-4);
    expect(maxAbsDiff(mask.logits, original.logits)).toBeGreaterThan(1e-4);
  });
});

describe('attention written with torch.einsum (PyTorch 1.13 export)', () => {
  it('bound through the Einsum equations, with the head map inside the packed QKV weight', () => {
    const r = analyzeModel(einsum);
    expect(r.unmatched).toEqual([]);
    expect(r.sites).toHaveLength(2);
    for (const s of r.sites) {
      expect([s.heads, s.kvHeads, s.headDim]).toEqual([4, 4, 8]);
      expect(s.scale).toBeCloseTo(8 ** -0.5, 6);
      expect(s.binding?.einsum).toEqual({ qk: 'bqhd,bkhd->bhqk', pv: 'bhqk,bkhd->bqhd' });
      expect(s.binding?.q.starts).toEqual([0, 8, 16, 24]);
      expect(s.binding?.k.starts).toEqual([32, 40, 48, 56]);
      expect(s.binding?.v.starts).toEqual([64, 72, 80, 88]);
      expect(s.binding?.o?.starts).toEqual([0, 8, 16, 24]);
    }
  });

  it('prune-heads equals zeroing the heads', async () => {
    await expectPruneEqualsMask(einsum, { 0: [1], 1: [0, 3] }, ids(), 'einsum');
  });

  it("Keras' einsum projections (which the walk does not read): the scale on Q is still counted, never reported as 1", () => {
    const r = analyzeModel(path.join(MODELS, 'keras-einsum-op14.onnx'));
    expect(r.sites).toHaveLength(2);
    for (const s of r.sites) {
      expect([s.heads, s.kvHeads, s.headDim]).toEqual([4, 4, 8]);
      expect(s.scale).toBeCloseTo(8 ** -0.5, 6);
      expect(s.notes).toContain('no Q projection found');
    }
  });

  it('Keras: the compute-reducing forms do not read its Einsum operands as a MatMul\'s (they wrote models that failed at run time)', () => {
    const keras = path.join(MODELS, 'keras-einsum-op14.onnx');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'al-keras-'));
    try {
      const r = rewriteModel(keras, [{ rule: 'window', params: { window: 2, impl: 'blocked' } } as RuleRequest], path.join(dir, 'w.onnx'));
      expect(r.warnings.join('\n')).toMatch(/site 0: blocked form not possible \(Q·Kᵀ is an Einsum \('\/1\/Einsum_3'\), whose operands are not laid out as a MatMul's\); used the mask form/);
      expect(() => rewriteModel(keras, [{ rule: 'block-topk', params: { block: 2, k: 1 } }], path.join(dir, 'b.onnx')))
        .toThrow(/block-topk: site \/1\/Softmax: Q·Kᵀ is an Einsum \('\/1\/Einsum_3'\), whose operands are not laid out as a MatMul's/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
