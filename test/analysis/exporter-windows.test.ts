// Masks older and other exporters write (test/models/export.py, seeds 21–29): sliding windows as a distance against a
// constant (Mistral's eager mask), as Trilu offsets (Mistral's reference code) and as a constant band wider than any
// 64×64 corner (GPT-Neo's local layers), which were all read as plain causal masks, so that the compute-reducing forms
// read one row of them and computed other outputs; T5's bucket comparisons, which are no mask; DistilBERT's padding
// mask expanded to the scores' own shape, which kept every rule that replaces Q·Kᵀ from the site; ALBERT's one layer
// applied three times; masks given as inputs that differ per query, which were read as key padding.
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectFastFormsExact, ids, model, rewritten } from './helpers/small-exports';
import { analyzeModel } from '../../src/analysis/analyze';
import { rewriteModel } from '../../src/rewriters/pipeline';
import { synthesizeInputs } from '../../src/runtime/inputs/synthesize';
import { maskedOutputs, maxAbsDiff, outputsOf, scratch, type Feeds } from '../rewriters/shared-prune-helpers';


let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = scratch('exporter-windows'); });
afterAll(() => tmp.cleanup());

/** Token ids and a mask whose second row is padded from `valid` on. */
const padded = (t: number, valid: number): Feeds => ({
  ...ids(2, t),
  attention_mask: new ort.Tensor('int64', BigInt64Array.from({ length: 2 * t }, (_, i) => (i >= t + valid ? 0n : 1n)), [2, t]),
});

describe('sliding windows however the mask is written', () => {
  it('reads each as a window, not as a causal mask', () => {
    const kinds = (name: string) => analyzeModel(model(name)).sites.map((s) => [s.maskType, s.causal, s.window ?? null]);
    // (j <= i) & (i - j < 4): the distance of two ranges against a constant.
    expect(kinds('mistral-swa-op14')).toEqual([['sliding-window', true, 4], ['sliding-window', true, 4]]);
    // tril(ones).triu(-3): the Trilu offset; the band keeps i − j ≤ 3, 4 keys.
    expect(kinds('mistral-ref-op14')).toEqual([['sliding-window', true, 4], ['sliding-window', true, 4]]);
    // A global layer, then a local one: a 160×160 band of 80 keys, causal in every 64×64 corner.
    expect(kinds('gptneo-local-op14')).toEqual([['causal', true, null], ['sliding-window', true, 80]]);
  });

  it("GPT-Neo's local layer beyond its window: the compute-reducing forms give the mask forms' outputs", async () => {
    await expectFastFormsExact(tmp.dir, 'gptneo-local-op14', ids(1, 120), [
      ['window', { window: 16 }, 'blocked'],
      ['block-topk', { block: 16, k: 2 }, 'gather'],
      ['sink', { sink: 2, window: 16 }, 'blocked'],
    ]);
  });

  it("Mistral's masks: the same, at three times the window", async () => {
    for (const name of ['mistral-swa-op14', 'mistral-ref-op14']) {
      await expectFastFormsExact(tmp.dir, name, ids(2, 14), [['window', { window: 2 }, 'blocked'], ['block-topk', { block: 4, k: 1 }, 'gather']]);
    }
  });
});

describe('T5, DistilBERT and ALBERT as older transformers wrote them', () => {
  it("T5: the bucket computation's comparisons of distances are not a causal mask; no scaling; fused exactly", async () => {
    const r = analyzeModel(model('t5-relbias-op14'));
    expect(r.sites.map((s) => [s.maskType, s.position, s.causal, s.scale])).toEqual([
      ['relative-bias', 'relative-bias', false, 1],
      ['relative-bias', 'relative-bias', false, 1],
    ]);
    const feeds = padded(12, 9);
    const before = await outputsOf(model('t5-relbias-op14'), feeds);
    const fused = await rewritten(tmp.dir, 't5-relbias-op14', 'fuse', [{ rule: 'fuse', params: {} }], feeds);
    expect(fused.report.applied[0].changes).toHaveLength(2);
    expect(maxAbsDiff(fused.outputs.hidden, before.hidden)).toBeLessThan(1e-4);
  });

  it("DistilBERT: the mask expanded to the scores' shape no longer keeps fuse and the fast forms away", async () => {
    const sites = analyzeModel(model('distilbert-op14')).sites;
    expect(sites.map((s) => s.maskType)).toEqual(['padding', 'padding']);
    for (const s of sites) expect(s.scale).toBeCloseTo(8 ** -0.5, 6);
    const valid = 13;
    const feeds = padded(20, valid);
    const before = await outputsOf(model('distilbert-op14'), feeds);
    const fused = await rewritten(tmp.dir, 'distilbert-op14', 'fuse', [{ rule: 'fuse', params: {} }], feeds);
    expect(fused.report.applied[0].changes.map((c) => c.after.form)).toEqual(['com.microsoft.MultiHeadAttention', 'com.microsoft.MultiHeadAttention']);
    expect(maxAbsDiff(fused.outputs.hidden, before.hidden)).toBeLessThan(1e-4);
    // Padded queries whose window holds only padding keys have nothing to attend to: those rows are left out.
    const real = (i: number) => Math.floor(i / 32) < 20 + valid;
    await expectFastFormsExact(tmp.dir, 'distilbert-op14', feeds, [['window', { window: 4 }, 'blocked'], ['block-topk', { block: 4, k: 1 }, 'gather']], real);
  });

  it("ALBERT: pruning the first application's heads leaves the two that share its weights as they were", async () => {
    const r = analyzeModel(model('albert-shared-op14'));
    expect(r.sites.map((s) => [s.heads, s.maskType])).toEqual([[4, 'padding'], [4, 'padding'], [4, 'padding']]);
    const feeds = padded(12, 9);
    const out = path.join(tmp.dir, 'albert.pruned.onnx');
    rewriteModel(model('albert-shared-op14'), [{ rule: 'prune-heads', params: { heads: { 0: [1, 2] } } }], out);
    expect(analyzeModel(out).sites.map((s) => s.heads)).toEqual([2, 4, 4]);
    const want = await maskedOutputs(model('albert-shared-op14'), { 0: [1, 2] }, feeds, tmp.dir, { onlyZeroed: true });
    const got = await outputsOf(out, feeds);
    expect(maxAbsDiff(got.hidden, want.hidden)).toBeLessThan(1e-4);
  });
});

describe('masks given as inputs', () => {
  /** A causal additive mask [t, t]: 0 on and below the diagonal, −∞ above. */
  const causal = (t: number) => Float32Array.from({ length: t * t }, (_, i) => (i % t > Math.floor(i / t) ? -Infinity : 0));

  it("that differ per query (torch.nn's [S, S] src_mask, a 4-D attention_mask) are general masks, not key padding", async () => {
    expect(analyzeModel(model('nnenc-srcmask-op14')).sites.map((s) => s.maskType)).toEqual(['bias', 'bias']);
    expect(analyzeModel(model('mask4d-op14')).sites.map((s) => s.maskType)).toEqual(['bias']);
    // Read as padding, the compute-reducing forms took the mask's last row (all visible) for every query.
    const t = 20;
    await expectFastFormsExact(tmp.dir, 'nnenc-srcmask-op14', { ...ids(2, t), src_mask: new ort.Tensor('float32', causal(t), [t, t]) }, [
      ['window', { window: 4 }, 'blocked'],
      ['block-topk', { block: 4, k: 1 }, 'gather'],
    ]);
    // Its layout is queries × keys, not batch × keys: synthesized at batch 2 it is [S, S] (it was [2, S], and the
    // model failed in a broadcast).
    const srcMask = analyzeModel(model('nnenc-srcmask-op14')).model.inputs.find((i) => i.name === 'src_mask')!;
    expect(srcMask.axes).toEqual({ sequence: 1, query: 0 });
    expect(synthesizeInputs([srcMask], { batch: 2, seq: 16 }).tensors.src_mask.dims).toEqual([16, 16]);
    const four = new Float32Array(2 * t * t);
    four.set(causal(t));
    four.set(causal(t).map((x, i) => (i % t >= 15 ? -Infinity : x)), t * t);
    await expectFastFormsExact(tmp.dir, 'mask4d-op14', { ...ids(2, t), attention_mask: new ort.Tensor('float32', four, [2, 1, t, t]) }, [
      ['window', { window: 4 }, 'blocked'],
      ['block-topk', { block: 4, k: 1 }, 'gather'],
    ], (i) => Math.floor(i / 32) < t + 15);
  });
});

describe("an encoder-decoder's decoder with past (optimum's decoder_with_past)", () => {
  it('names its caches key and value, and runs on synthesized inputs whose encoder caches and mask agree', async () => {
    const r = analyzeModel(model('decoder-with-past-op14'));
    expect(r.model.inputs.map((i) => [i.name, i.role])).toEqual([
      ['input_ids', 'input_ids'],
      ['past_key_values.0.decoder.key', 'past_key'],
      ['past_key_values.0.decoder.value', 'past_value'],
      ['past_key_values.0.encoder.key', 'past_key'],
      ['past_key_values.0.encoder.value', 'past_value'],
      ['encoder_attention_mask', 'attention_mask'],
    ]);
    expect(r.sites.map((s) => [s.kind, s.kvCache.reads])).toEqual([['self', true], ['cross', false]]);
    // The encoder's keys had the decoder's past length (0) and its mask past + new: the model failed in a broadcast.
    const synth = synthesizeInputs(r.model.inputs, { batch: 2, seq: 5, past: 3 });
    const feeds = Object.fromEntries(Object.entries(synth.tensors).map(([k, t]) => [k, new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, t.dims)]));
    const out = await outputsOf(model('decoder-with-past-op14'), feeds);
    expect(out.logits.length).toBe(2 * 5 * 32);
    expect(out.logits.every((x) => Number.isFinite(x))).toBe(true);
  });
});
