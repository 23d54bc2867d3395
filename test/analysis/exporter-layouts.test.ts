// Layouts that read as other head counts, sizes or lengths (test/models/export.py, seeds 41, 42, 45, 52): GPT-BigCode's
// projection cut twice (K and V were read as one 16-wide cut: 2 KV heads), LeViT's values wider than its keys on a
// fixed patch grid (costed at 1024 patches with values as wide as keys), Nyströmformer's landmark queries (read as
// self-attention with 12 KV heads, the width of the packed QKV projection) and GPT-2 as transformers wrote it before
// version 3 (its 0/1 causal buffer multiplied into the scores read as a scale per position, and the scores' own sizes
// read outside the site, which kept fuse and the compute-reducing forms away), GPT-BigCode with a rotary embedding on
// its one K head (fuse and block-topk's gathered form wrote models that failed at run time), and an audio encoder whose frames strided
// convolutions cut from samples of open length (their count was unknown, so the heads folded into the batch for
// torch.bmm could not be bound, and fuse and the compute-reducing forms refused it); DeepSeek's latent attention (read
// as cross-attention, its K and V being projected from a latent; fuse wrote a MultiHeadAttention that failed at run time,
// its 4-D K and V having different head sizes); and head sizes read at run time as `width // heads` (GPT-2 before
// transformers 3, diffusers' attention processors), which pruning divided by the old head count (the size check refused
// the rewrite).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { expectFastFormsExact, ids, model, rewritten } from './helpers/small-exports';
import { analyzeModel } from '../../src/analysis/analyze';
import { maskedOutputs, maxAbsDiff, outputsOf, scratch, type Feeds } from '../rewriters/shared-prune-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = scratch('exporter-layouts'); });
afterAll(() => tmp.cleanup());

/** `fuse` turns both sites of a test model into `op` and keeps output `out` within 1e-4. */
async function expectFusedExact(name: string, feeds: Feeds, out: string, op: string): Promise<void> {
  const before = await outputsOf(model(name), feeds);
  const fused = await rewritten(tmp.dir, name, 'fuse', [{ rule: 'fuse', params: {} }], feeds);
  expect(fused.report.applied[0].changes.map((c) => c.after.form)).toEqual([`com.microsoft.${op}`, `com.microsoft.${op}`]);
  expect(maxAbsDiff(fused.outputs[out], before[out])).toBeLessThan(1e-4);
}

describe('head counts and sizes', () => {
  it('GPT-BigCode: one KV head, cut from c_attn after Q, then from V', () => {
    const sites = analyzeModel(model('gpt-bigcode-op14')).sites;
    expect(sites.map((s) => [s.heads, s.kvHeads, s.headDim])).toEqual([[4, 1, 8], [4, 1, 8]]);
    for (const s of sites) {
      expect([s.projections.q?.sliceStart, s.projections.q?.sliceEnd]).toEqual([0, 32]);
      expect([s.projections.k?.sliceStart, s.projections.k?.sliceEnd]).toEqual([32, 40]);
      expect([s.projections.v?.sliceStart, s.projections.v?.sliceEnd]).toEqual([40, 48]);
    }
  });

  it('GPT-BigCode with a rotary embedding on the cut K: its halves are no third cut', async () => {
    const sites = analyzeModel(model('mqa-rope-split-op14')).sites;
    expect(sites.map((s) => [s.heads, s.kvHeads, s.position])).toEqual([[4, 1, 'rope'], [4, 1, 'rope']]);
    for (const s of sites) expect([s.projections.k?.sliceStart, s.projections.k?.sliceEnd, s.projections.v?.sliceStart]).toEqual([32, 40, 40]);
    // K and V enter the products with one head, broadcast to the four (`k[:, None]`): fuse and the gathered blocks wrote
    // models that failed at run time, taking them for four.
    await expectFusedExact('mqa-rope-split-op14', ids(2, 9), 'hidden', 'GroupQueryAttention');
    await expectFastFormsExact(tmp.dir, 'mqa-rope-split-op14', ids(2, 10), [['window', { window: 3 }, 'blocked'], ['block-topk', { block: 2, k: 1 }, 'gather']]);
  });

  it("LeViT: costed at its 16 patches, with values twice as wide as keys", () => {
    const r = analyzeModel(model('levit-op14'));
    expect(r.costSeqLen).toBe(16);
    // Q·Kᵀ at 8 per head and P·V at 16: 2 · 4 heads · 16² · (8 + 16).
    expect(r.sites.map((s) => s.flops)).toEqual([2 * 4 * 16 * 16 * 24, 2 * 4 * 16 * 16 * 24]);
    // Both layers' biases are gathered from a learned table by a constant index (the second's an Identity of the first's).
    expect(r.sites.map((s) => s.maskType)).toEqual(['bias', 'bias']);
  });

  it("Nyströmformer: landmark queries over the tokens' keys are no self-attention, and K has Q's heads", () => {
    const r = analyzeModel(model('nystrom-op14'));
    expect(r.sites.map((s) => [s.kind, s.heads, s.kvHeads])).toEqual([['cross', 4, 4]]);
    // 4 landmarks and 16 keys: no one length to cost the model at.
    expect(r.costSeqLen).toBe(1024);
  });
});

describe('GPT-2 before transformers 3 (opset 11)', () => {
  it('reads the 0/1 causal buffer as the mask it is, with the scale 1/√8', () => {
    const sites = analyzeModel(model('gpt2-legacy-op11')).sites;
    expect(sites.map((s) => [s.maskType, s.causal])).toEqual([['causal', true], ['causal', true]]);
    for (const s of sites) expect(s.scale).toBeCloseTo(8 ** -0.5, 6);
  });

  it('fuses both sites exactly, though the causal buffer is sliced by the scores\' sizes', async () => {
    await expectFusedExact('gpt2-legacy-op11', ids(2, 12), 'hidden', 'GroupQueryAttention');
  });

  it('computes the compute-reducing forms, which give the mask forms\' outputs', async () => {
    await expectFastFormsExact(tmp.dir, 'gpt2-legacy-op11', ids(2, 14), [['window', { window: 4 }, 'blocked'], ['block-topk', { block: 4, k: 1 }, 'gather']]);
  });

  it('a window of the whole length changes nothing: the mask form reads the buffer as causal', async () => {
    const feeds = { input_ids: new ort.Tensor('int64', BigInt64Array.from({ length: 10 }, (_, i) => BigInt(i * 3 + 1)), [1, 10]) };
    const before = await outputsOf(model('gpt2-legacy-op11'), feeds);
    const wide = await rewritten(tmp.dir, 'gpt2-legacy-op11', 'window-10', [{ rule: 'window', params: { window: 10, impl: 'blocked' } }], feeds);
    expect(maxAbsDiff(wide.outputs.hidden, before.hidden)).toBeLessThan(1e-5);
  });
});

describe('an audio encoder over samples of open length (wav2vec 2.0, BART-family bmm attention)', () => {
  const samples = (b: number, n: number) => ({ input_values: new ort.Tensor('float32', Float32Array.from({ length: b * n }, (_, i) => Math.sin(i * 0.37) + 0.1 * Math.cos(i * 1.3)), [b, n]) });

  it('binds both sites: the frames are a length the strided convolutions compute from the samples', () => {
    const r = analyzeModel(model('wav2vec-bmm-op14'));
    expect(r.model.inputs.map((i) => i.role)).toEqual(['audio_features']);
    expect(r.sites.map((s) => [s.heads, s.headDim, !!s.binding])).toEqual([[4, 8, true], [4, 8, true]]);
    expect(r.sites[0].binding!.queryPositions).toBe(r.sites[0].binding!.keyPositions);
  });

  it('fuses both sites exactly, and the compute-reducing forms give the mask forms\' outputs', async () => {
    const feeds = samples(2, 400);
    await expectFusedExact('wav2vec-bmm-op14', feeds, 'last_hidden_state', 'MultiHeadAttention');
    await expectFastFormsExact(tmp.dir, 'wav2vec-bmm-op14', feeds, [['window', { window: 8 }, 'blocked'], ['block-topk', { block: 8, k: 1 }, 'gather']]);
  });
});

describe("DeepSeek's multi-head latent attention", () => {
  it('is self-attention with keys of 12 and values of 8 per head, fused exactly', async () => {
    const r = analyzeModel(model('mla-latent-op14'));
    expect(r.sites.map((s) => [s.kind, s.causal, s.heads, s.headDim])).toEqual([['self', true, 4, 12], ['self', true, 4, 12]]);
    // Q·Kᵀ at 12 per head and P·V at 8.
    expect(r.sites[0].flops).toBe(2 * 4 * 1024 * 1024 * (12 + 8));
    const feeds = ids(2, 11);
    await expectFusedExact('mla-latent-op14', feeds, 'hidden', 'MultiHeadAttention');
    await expectFastFormsExact(tmp.dir, 'mla-latent-op14', feeds, [['window', { window: 3 }, 'blocked'], ['block-topk', { block: 4, k: 1 }, 'gather']]);
  });
});

describe('head sizes read at run time as width // heads', () => {
  const latents = (h: number, w: number) => ({
    sample: new ort.Tensor('float32', Float32Array.from({ length: 32 * h * w }, (_, i) => Math.sin(i * 0.11)), [1, 32, h, w]),
    encoder_hidden_states: new ort.Tensor('float32', Float32Array.from({ length: 5 * 24 }, (_, i) => Math.cos(i * 0.23)), [1, 5, 24]),
  });
  const cases = [
    ['gpt2-legacy-op11', ids(2, 9), 'hidden'],
    ['diffusers-sdpa-op14', latents(4, 6), 'out'],
  ] as const;

  it.each(cases)('%s: pruning heads equals zeroing them', async (name, feeds, out) => {
    const heads = { 0: [1], 1: [0, 2] };
    const pruned = await rewritten(tmp.dir, name, 'pruned', [{ rule: 'prune-heads', params: { heads } }], feeds);
    expect(pruned.report.applied[0].changes.map((c) => c.after.heads)).toEqual([3, 2]);
    const want = await maskedOutputs(model(name), heads, feeds, tmp.dir);
    expect(maxAbsDiff(pruned.outputs[out], want[out])).toBeLessThan(1e-4);
  });

  it.each(cases)('%s: gqa 2 gives two KV heads a site and runs', async (name, feeds, out) => {
    const grouped = await rewritten(tmp.dir, name, 'gqa2', [{ rule: 'gqa', params: { groups: 2 } }], feeds);
    expect(grouped.report.applied[0].changes.map((c) => c.after.kvHeads)).toEqual([2, 2]);
    expect(grouped.outputs[out].every(Number.isFinite)).toBe(true);
  });
});
