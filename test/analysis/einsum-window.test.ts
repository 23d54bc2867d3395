// Einsum cores and windowed 5-D attention: their dims are bound (batch, windows, heads, positions in a window, head
// size) with head maps; a contradiction goes to `unmatched`; head pruning equals zeroing the head in the original
// graph; sparse rules run on them after the standard-layout pass, keeping their identities (a window longer than a
// window of tokens, block-topk keeping every block) and the blocked form equal to the mask form.
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeLoaded } from '../../src/analysis/analyze';
import { saveModel } from '../../src/analysis/ir/save';
import { rewriteModel } from '../../src/rewriters/pipeline';
import { maskedOutputs, maxAbsDiff, outputsOf, scratch } from '../rewriters/shared-prune-helpers';
import { buildEinsumWindow, EW, type EinsumWindowOptions } from './einsum-window-variants';

const { heads: H, headDim: D } = EW;
const CASES: [string, EinsumWindowOptions][] = [
  ['einsum bhqd,bhkd->bhqk', { core: 'bhsd' }],
  ['einsum bqhd,bkhd->bhqk (no transposes)', { core: 'bshd' }],
  ['einsum with an ellipsis', { core: 'ellipsis' }],
  ['windowed 5-D, MatMul, relative position bias', { core: 'matmul', window: 4, seq: 16, relativeBias: true }],
  ['windowed 5-D, symbolic sequence', { core: 'matmul', window: 4 }],
  ['windowed 5-D einsum, per-window mask', { core: 'bshd', window: 4, seq: 16, windowMask: true }],
  ['windowed 5-D einsum with an ellipsis, relative position bias', { core: 'ellipsis', window: 4, seq: 16, relativeBias: true }],
];
const tag = (name: string) => name.replace(/\W+/g, '-');

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = scratch('einsum-window'); });
afterAll(() => tmp.cleanup());

/** Two batch items of 16 tokens (four windows of four). */
function feeds(): Record<string, ort.Tensor> {
  const E = EW.hidden;
  return { x: new ort.Tensor('float32', Float32Array.from({ length: 2 * 16 * E }, (_, i) => Math.sin(i * 0.7)), [2, 16, E]) };
}

function save(name: string, o: EinsumWindowOptions): string {
  const file = path.join(tmp.dir, `${tag(name)}.onnx`);
  saveModel(buildEinsumWindow(o), file);
  return file;
}

describe('einsum cores and windowed attention: bound dims and head maps', () => {
  it.each(CASES)('%s', (_, o) => {
    const r = analyzeLoaded(buildEinsumWindow(o));
    expect(r.unmatched).toEqual([]);
    expect(r.sites).toHaveLength(1);
    const s = r.sites[0];
    expect(s.notes).toEqual([]);
    expect([s.heads, s.kvHeads, s.headDim]).toEqual([H, H, D]);
    const b = s.binding!;
    const starts = Array.from({ length: H }, (_, h) => h * D);
    for (const role of ['q', 'k', 'v', 'o'] as const) expect(b[role]!.starts, role).toEqual(starts);
    expect(b.qToKv).toEqual([0, 1, 2, 3]);
    expect(b.batch).toBe('B');
    if (o.window) {
      expect(b.scoreAxes).toEqual([['batch'], ['window'], ['head'], ['query'], ['key']]);
      expect(b.windows).toBe(typeof o.seq === 'number' ? o.seq / o.window : null);
      expect([b.queryPositions, b.keyPositions]).toEqual([o.window, o.window]);
      expect(b.tokens?.q).toEqual({ batch: 0, positions: 1, rank: 3, window: o.window });
    } else {
      expect(b.scoreAxes).toEqual([['batch'], ['head'], ['query'], ['key']]);
      expect(b.windows).toBeUndefined();
    }
    expect(b.tokens?.out).toEqual([['batch'], ['positions']]);
    if (o.core !== 'matmul') expect(b.einsum?.qk).toMatch(/->/);
  });

  it('an Einsum core whose Q and K head sizes disagree is unmatched with the reason', () => {
    const r = analyzeLoaded(buildEinsumWindow({ core: 'bhsd', badKHeads: 2 }));
    expect(r.sites).toEqual([]);
    expect(r.unmatched).toHaveLength(1);
    expect(r.unmatched[0].reason).toMatch(/disagree: Q's head size 8 differs from K's 16/);
  });

  it('the old reading of windowed scores took the windows for heads; the bound one does not', () => {
    // 8 windows of 4 heads: the scores' axis 1 is the windows.
    const s = analyzeLoaded(buildEinsumWindow({ core: 'matmul', window: 2, seq: 16 })).sites[0];
    expect(s.binding?.windows).toBe(8);
    expect(s.heads).toBe(H);
  });
});

describe('rules on einsum cores and windowed attention', () => {
  it.each(CASES)('%s: prune-heads of head 1 equals zeroing head 1', async (name, o) => {
    const file = save(name, o);
    const out = path.join(tmp.dir, `${tag(name)}.pruned.onnx`);
    const report = rewriteModel(file, [{ rule: 'prune-heads', params: { heads: { 0: [1] } } }], out);
    expect(report.warnings.join('\n')).toMatch(/site 0 rewritten into the standard layout first/);
    const x = feeds();
    const want = await maskedOutputs(file, { 0: [1] }, x, tmp.dir);
    const got = await outputsOf(out, x);
    const before = await outputsOf(file, x);
    for (const [k, w] of Object.entries(want)) {
      expect(maxAbsDiff(got[k], w), k).toBeLessThanOrEqual(1e-5);
      expect(maxAbsDiff(before[k], w), `${k} changed`).toBeGreaterThan(1e-4);
    }
    // The pruned model is one head smaller: its Q projection has 3 heads' columns.
    const after = analyzeLoaded((await import('../../src/analysis/ir/load')).loadModel(out)).sites[0];
    expect(after.heads).toBe(H - 1);
  });

  it.each(CASES)('%s: sparse identities and blocked = mask', async (name, o) => {
    const file = save(name, o);
    const x = feeds();
    const original = await outputsOf(file, x);
    const run = async (key: string, rule: string, params: Record<string, unknown>) => {
      const out = path.join(tmp.dir, `${tag(name)}.${key}.onnx`);
      rewriteModel(file, [{ rule, params }], out);
      return outputsOf(out, x);
    };
    const long = await run('window-long', 'window', { window: 64, impl: 'blocked' });
    const all = await run('topk-all', 'block-topk', { block: 2, k: 64 });
    const mask = await run('window-mask', 'window', { window: 2 });
    const blocked = await run('window-blocked', 'window', { window: 2, impl: 'blocked' });
    for (const k of Object.keys(original)) {
      expect(maxAbsDiff(long[k], original[k]), `long window: ${k}`).toBeLessThan(1e-4);
      expect(maxAbsDiff(all[k], original[k]), `every block: ${k}`).toBeLessThan(1e-4);
      expect(maxAbsDiff(blocked[k], mask[k]), `blocked vs mask: ${k}`).toBeLessThan(1e-4);
      expect(maxAbsDiff(mask[k], original[k]), `window 2 changed ${k}`).toBeGreaterThan(1e-3);
    }
  });
});
