// Masks and biases as plain PyTorch code writes them (test/models/export.py): ALiBi slopes the exporter aliases
// through an Identity, torch.nn's merged causal and key-padding mask, a bias table constant-folded into one
// initializer (Swin), a zero bias from torch.baddbmm, and nanoGPT at opset 11. A mask the analysis cannot fully
// explain must be reported as a `bias`: the compute-reducing forms read a `causal`, `padding` or `none` site's mask
// one row at a time, which is wrong for a bias that varies by row. Then two layouts with heads folded into the batch
// (fairseq's masks on a [batch, heads, q, k] view of the scores; BLOOM's float32 softmax viewed back before ·V), which
// the standard-layout pass now takes, so that fuse and the compute-reducing forms reach them.
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectFastFormsExact, ids, model, rewritten } from './helpers/small-exports';
import { analyzeModel } from '../../src/analysis/analyze';
import { GraphBuilder } from '../../src/analysis/ir/builder';
import { loadModel } from '../../src/analysis/ir/load';
import { saveModel } from '../../src/analysis/ir/save';
import { rewriteModel } from '../../src/rewriters/pipeline';
import { maxAbsDiff, outputsOf, scratch, type Feeds } from '../rewriters/shared-prune-helpers';


let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = scratch('exporter-masks'); });
afterAll(() => tmp.cleanup());

const floats = (dims: number[], f = 0.37) => new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b) }, (_, i) => Math.sin(i * f)), dims);

describe('how plain PyTorch exports write masks', () => {
  it('ALiBi is found in both blocks, also where the exporter aliased the slopes through an Identity', () => {
    const r = analyzeModel(model('mqa-alibi-op14'));
    expect(r.sites.map((s) => [s.maskType, s.position, s.causal, s.heads, s.kvHeads])).toEqual([
      ['alibi', 'alibi', true, 4, 1],
      ['alibi', 'alibi', true, 4, 1],
    ]);
  });

  it('fuse gives multi-query attention to GroupQueryAttention with its one K/V head (not the Expanded copies)', async () => {
    const feeds = ids(2, 24);
    const before = await outputsOf(model('mqa-alibi-op14'), feeds);
    const fused = await rewritten(tmp.dir, 'mqa-alibi-op14', 'fuse', [{ rule: 'fuse', params: {} }], feeds);
    expect(fused.report.applied[0].changes.map((c) => [c.after.form, c.after.kvHeads])).toEqual([
      ['com.microsoft.GroupQueryAttention', 1],
      ['com.microsoft.GroupQueryAttention', 1],
    ]);
    expect(maxAbsDiff(fused.outputs.hidden, before.hidden)).toBeLessThan(1e-4);
  });

  it("torch.nn's key padding mask merged into the causal mask is causal+padding; the fast forms stay exact on a padded batch", async () => {
    const r = analyzeModel(model('nnenc-causal-pad-op14'));
    expect(r.sites.map((s) => [s.maskType, s.causal, s.heads])).toEqual([['causal+padding', true, 3], ['causal+padding', true, 3]]);
    // The second sequence is padded from position 29 on (True = padding, as torch.nn has it).
    const t = 40;
    const padded = (pos: number) => pos >= t + 29;
    const pad = new ort.Tensor('bool', Uint8Array.from({ length: 2 * t }, (_, i) => (padded(i) ? 1 : 0)), [2, t]);
    await expectFastFormsExact(tmp.dir, 'nnenc-causal-pad-op14', { x: floats([2, t, 24]), pad }, [
      ['window', { window: 8 }, 'blocked'],
      ['block-topk', { block: 8, k: 1 }, 'gather'],
    ], (i) => !padded(Math.floor(i / 24)));
  });

  it('a constant-folded bias table (Swin) is a bias, not "none", and the fast forms keep it exactly', async () => {
    const r = analyzeModel(model('swin-tiny-op14'));
    expect(r.sites.map((s) => s.maskType)).toEqual(['bias', 'bias', 'bias', 'bias']);
    const feeds = { pixel_values: floats([1, 3, 32, 32]) };
    // Reading one row of the bias as a key vector (the old `none`) was off by about 1e-4 on these logits of ~0.05.
    // The shifted-window block (site 1) reshapes its scores for the window mask and keeps the mask form.
    await expectFastFormsExact(tmp.dir, 'swin-tiny-op14', feeds, [
      ['window', { window: 3 }, 'blocked', 1],
      ['neighborhood2d', { radius: 1 }, 'blocked', 1],
      ['block-topk', { block: 4, k: 1 }, 'gather', 1],
    ]);
  });

  it('a per-head factor on the scores (SwinV2 cosine attention) makes the scale unknown; the fast forms keep it', async () => {
    const r = analyzeModel(model('cosine-attn-op14'));
    for (const s of r.sites) {
      expect(s.scale).toBeNull();
      // Scaling whole rows, it is no mask: the fast forms may read the (absent) mask one row at a time.
      expect(s.maskType).toBe('none');
      expect(s.notes.join('\n')).toMatch(/scale not one number: the scores are multiplied by '.*' \(\[4, 1, 1\]\), a factor per head or position/);
    }
    // fuse applies the factor to Q.
    const feeds = { x: floats([2, 24, 32]) };
    const before = await outputsOf(model('cosine-attn-op14'), feeds);
    for (const m of ['cosine-attn-op14', 'perhead-temp-op14']) {
      const fused = await rewritten(tmp.dir, m, 'fuse', [{ rule: 'fuse', params: {} }], feeds);
      expect(fused.report.applied[0].changes.map((c) => c.after.form), m).toEqual(['com.microsoft.MultiHeadAttention', 'com.microsoft.MultiHeadAttention']);
      const reference = m === 'cosine-attn-op14' ? before : await outputsOf(model(m), feeds);
      expect(maxAbsDiff(fused.outputs.y, reference.y), m).toBeLessThan(1e-4);
    }
    // Gathered at key positions like a mask, the [4, 1, 1] factor crashed the compute-reducing forms at run time.
    await expectFastFormsExact(tmp.dir, 'cosine-attn-op14', { x: floats([2, 24, 32]) }, [
      ['window', { window: 8 }, 'blocked'],
      ['block-topk', { block: 8, k: 1 }, 'gather'],
    ]);
  });

  it("torch.baddbmm's zero bias does not hide a causal mask", () => {
    const r = analyzeModel(model('bloomish-baddbmm-op14'));
    expect(r.sites.map((s) => [s.maskType, s.causal, s.heads])).toEqual([['causal', true, 4], ['causal', true, 4]]);
  });

  it('fuse raises an opset-11 model (nanoGPT) to 13 first and matches the original', async () => {
    const feeds = ids(2, 20);
    const before = await outputsOf(model('nanogpt-op11'), feeds);
    const { report, outputs } = await rewritten(tmp.dir, 'nanogpt-op11', 'fuse', [{ rule: 'fuse', params: {} }], feeds);
    expect(report.opsetUpgrade).toMatchObject({ from: 11, to: 13 });
    expect(report.applied[0].changes.map((c) => c.after.form)).toEqual(['com.microsoft.GroupQueryAttention', 'com.microsoft.GroupQueryAttention']);
    expect(maxAbsDiff(outputs.hidden, before.hidden)).toBeLessThan(1e-4);
  });
});

describe('heads folded into the batch, with the scores or probabilities viewed as [batch, heads, q, k] on the way', () => {
  const seqFirst = (t: number, b: number, paddedFrom: number): Feeds => ({
    x: floats([t, b, 24]),
    pad: new ort.Tensor('bool', Uint8Array.from({ length: b * t }, (_, i) => (i >= t && i % t >= paddedFrom ? 1 : 0)), [b, t]),
  });

  it('fairseq: fused, and re-laid out for the fast forms, exactly; its key padding mask is read as padding', async () => {
    const r = analyzeModel(model('fairseq-bmm-op13'));
    expect(r.sites.map((s) => [s.maskType, s.heads, s.binding?.scoreAxes])).toEqual([
      ['padding', 3, [['batch', 'head'], ['query'], ['key']]],
      ['padding', 3, [['batch', 'head'], ['query'], ['key']]],
    ]);
    const t = 40;
    // Sequence 2 is padded from 33 on: the window of 8 leaves its last padding queries no real key (not compared).
    const feeds = seqFirst(t, 2, 33);
    const before = await outputsOf(model('fairseq-bmm-op13'), feeds);
    const fused = await rewritten(tmp.dir, 'fairseq-bmm-op13', 'fuse', [{ rule: 'fuse', params: {} }], feeds);
    expect(fused.report.applied[0].changes.map((c) => c.after.form)).toEqual(['com.microsoft.MultiHeadAttention', 'com.microsoft.MultiHeadAttention']);
    expect(fused.report.warnings.filter((w) => /kept its layout|not fused/.test(w))).toEqual([]);
    expect(maxAbsDiff(fused.outputs.y, before.y)).toBeLessThan(1e-4);
    // y is [t, b, 24]: element i is position floor(i / 48), sequence floor(i / 24) % 2.
    const real = (i: number) => !(Math.floor(i / 24) % 2 === 1 && Math.floor(i / 48) >= 33);
    await expectFastFormsExact(tmp.dir, 'fairseq-bmm-op13', feeds, [
      ['window', { window: 8 }, 'blocked'],
      ['block-topk', { block: 8, k: 1 }, 'gather'],
    ], real);
    // The variants' inputs: [sequence, batch] is read off the mask form (block-topk's selection mask hides the scores'
    // shape from shape inference; Q·Kᵀ's output still carries it). The compute-reducing forms' blocked scores do not
    // carry the sequence: their layout is unknown (runs feed them their reference's), unless the dims are named in
    // words.
    const axesOf = (file: string) => analyzeModel(file).model.inputs.map((i) => i.axes);
    const sequenceFirst = [{ batch: 1, sequence: 0 }, { batch: 0, sequence: 1 }];
    expect(axesOf(path.join(tmp.dir, 'fairseq-bmm-op13.block-topk-mask.onnx'))).toEqual(sequenceFirst);
    const gather = path.join(tmp.dir, 'fairseq-bmm-op13.block-topk-gather.onnx');
    expect(axesOf(gather)).toEqual([undefined, undefined]);
    const named = loadModel(gather);
    for (const v of named.graph.inputs) {
      for (const d of v.info?.type?.tensorType?.shape?.dim ?? []) if (d.dimParam) d.dimParam = d.dimParam === 't' ? 'sequence' : 'batch';
    }
    saveModel(named, path.join(tmp.dir, 'named.onnx'));
    expect(axesOf(path.join(tmp.dir, 'named.onnx'))).toEqual(sequenceFirst);
  });

  it('block-topk skips a folded site the standard-layout pass must leave (soft-capped scores), with the reason', async () => {
    // fairseq with a tanh cap on the first block's [batch·heads, q, k] scores: the layout pass does not rebuild caps.
    const b = new GraphBuilder(loadModel(model('fairseq-bmm-op13')));
    const softmax = b.model.graph.nodeByName('/a/Softmax')!;
    b.setInput(softmax, 0, b.op('Tanh', [softmax.input(0)!], { name: 'cap' }));
    const capped = path.join(tmp.dir, 'fairseq-capped.onnx');
    saveModel(b.model, capped);
    const out = path.join(tmp.dir, 'fairseq-capped.block-topk.onnx');
    const report = rewriteModel(capped, [{ rule: 'block-topk', params: { block: 8, k: 1 } }], out);
    expect(report.applied[0].sites).toEqual([1]);
    expect(report.warnings.join('\n')).toMatch(/site 0 \(scores laid out as batch·head, query, key\) kept its layout: soft-capped scores/);
    const feeds = seqFirst(20, 1, 20);
    expect((await outputsOf(out, feeds)).y.every(Number.isFinite)).toBe(true);
  });

  it('BLOOM-style: the float32 softmax viewed back to [batch·heads, q, k] before ·V is taken, and fused exactly', async () => {
    const feeds = { x: floats([2, 24, 32]) };
    const before = await outputsOf(model('bloomish-baddbmm-op14'), feeds);
    const fused = await rewritten(tmp.dir, 'bloomish-baddbmm-op14', 'fuse', [{ rule: 'fuse', params: {} }], feeds);
    expect(fused.report.applied[0].changes.map((c) => c.after.form)).toEqual(['com.microsoft.GroupQueryAttention', 'com.microsoft.GroupQueryAttention']);
    expect(maxAbsDiff(fused.outputs.y, before.y)).toBeLessThan(1e-4);
    await expectFastFormsExact(tmp.dir, 'bloomish-baddbmm-op14', feeds, [['block-topk', { block: 8, k: 1 }, 'gather'], ['window', { window: 8 }, 'blocked']]);
  });
});
