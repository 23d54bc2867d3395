// Bound dimensions and head maps on attention written over one packed QKV projection, whatever way it is taken apart
// and laid out; a site whose dims disagree goes to `unmatched`; and head pruning on every such layout removes exactly
// the heads the head-mask model removes.
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeLoaded } from '../../src/analysis/analyze';
import { saveModel } from '../../src/analysis/ir/save';
import { rewriteModel } from '../../src/rewriters/pipeline';
import { maskedOutputs, maxAbsDiff, outputsOf, scratch } from '../rewriters/shared-prune-helpers';
import { buildPackedAttention, PACKED, type PackedOptions } from './packed-qkv-variants';

const { heads: H, headDim: D, hidden: E } = PACKED;
const CASES: [string, PackedOptions][] = [
  ['gather (timm)', { cut: 'gather' }],
  ['slice', { cut: 'slice' }],
  ['split', { cut: 'split' }],
  ['slice, heads folded into the batch (torch.nn)', { cut: 'slice', folded: true }],
  ['split, folded, sequence-first', { cut: 'split', folded: true, seqFirst: true }],
];

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = scratch('binding'); });
afterAll(() => tmp.cleanup());

describe('binding over a packed QKV projection', () => {
  it.each(CASES)('%s: heads, head size and the head map of Q, K, V and the output', (_, o) => {
    const r = analyzeLoaded(buildPackedAttention(o));
    expect(r.unmatched).toEqual([]);
    expect(r.sites).toHaveLength(1);
    const s = r.sites[0];
    expect([s.heads, s.kvHeads, s.headDim]).toEqual([H, H, D]);
    const b = s.binding!;
    const starts = (base: number) => Array.from({ length: H }, (_, h) => base + h * D);
    expect(b.q.starts).toEqual(starts(0));
    expect(b.k.starts).toEqual(starts(E));
    expect(b.v.starts).toEqual(starts(2 * E));
    expect(b.o!.starts).toEqual(starts(0));
    expect(b.qToKv).toEqual([0, 1, 2, 3]);
    expect(b.scoreAxes).toEqual(o.folded ? [['batch', 'head'], ['query'], ['key']] : [['batch'], ['head'], ['query'], ['key']]);
    if (o.seqFirst) expect(b.tokens?.q).toMatchObject({ batch: 0, positions: 1 });
  });

  it('a K reshaped to other heads than Q is unmatched with the reason, not reported with a wrong count', () => {
    const r = analyzeLoaded(buildPackedAttention({ cut: 'slice', badKHeads: 2 }));
    expect(r.sites).toEqual([]);
    expect(r.unmatched).toHaveLength(1);
    expect(r.unmatched[0].reason).toMatch(/disagree: K has 2 heads on an axis where Q has 4/);
  });

  it('a folded site with a computation between a projection and the core keeps its layout, with the reason', () => {
    const file = path.join(tmp.dir, 'negated.onnx');
    saveModel(buildPackedAttention({ cut: 'slice', folded: true, negateQ: true }), file);
    let said = '';
    try {
      said = rewriteModel(file, [{ rule: 'window', params: { window: 2 } }], path.join(tmp.dir, 'negated.w2.onnx')).warnings.join('\n');
    } catch (e) {
      said = (e as Error).message;
    }
    expect(said).toMatch(/kept its layout: Neg '.*' between a projection and the core/);
  });

  it.each(CASES)('%s: prune-heads of head 1 equals zeroing head 1', async (name, o) => {
    const file = path.join(tmp.dir, `${name.replace(/\W+/g, '-')}.onnx`);
    saveModel(buildPackedAttention(o), file);
    const out = path.join(tmp.dir, `${name.replace(/\W+/g, '-')}.pruned.onnx`);
    rewriteModel(file, [{ rule: 'prune-heads', params: { heads: { 0: [1] } } }], out);
    const dims = o.seqFirst ? [5, 2, E] : [2, 5, E];
    const x = new ort.Tensor('float32', Float32Array.from({ length: 10 * E }, (_, i) => Math.sin(i * 0.7)), dims);
    const want = await maskedOutputs(file, { 0: [1] }, { x }, tmp.dir);
    const got = await outputsOf(out, { x });
    const before = await outputsOf(file, { x });
    for (const [k, w] of Object.entries(want)) {
      expect(maxAbsDiff(got[k], w), k).toBeLessThanOrEqual(1e-5);
      expect(maxAbsDiff(before[k], w), `${k} changed`).toBeGreaterThan(1e-4);
    }
  });
});
