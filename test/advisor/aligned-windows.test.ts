// Under a FLOP (or latency) budget the advisor's windows include, for each rung of the power-of-two ladder, the largest
// window that costs the same in the blocked realisation (candidates.ts, blockAligned): at 128 tokens windows 4, 8 and
// 16 compute 16-row blocks of 32 keys, as window 17 does. Checked against the rewrite itself (the blocked plan's
// flopsAfter), and a density budget keeps the ladder exactly.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { alignedWindow, candidateSet } from '../../src/orchestrate/advisor/candidates';
import { rewriteModel } from '../../src/rewriters/pipeline';
import { describeHeadChoice, type HeadChoice } from '../../src/rewriters/plan/choices';
import { realisedHeadFlops } from '../../src/rewriters/plan/realised-cost';
import { fixture } from '../runtime/helpers';

const dir = mkdtempSync(join(tmpdir(), 'aligned-windows-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const windowsOf = (choices: HeadChoice[], kind: HeadChoice['kind']) =>
  choices.filter((c) => c.kind === kind).map((c) => (c as { window: number }).window);

describe('block-aligned windows', () => {
  it('are added under blockAligned only: the density ladder stays exactly as it was', () => {
    const ladder = candidateSet(128, true).choices.map(describeHeadChoice);
    expect(windowsOf(candidateSet(128, true).choices, 'window')).toEqual([4, 8, 16, 32, 64]);
    const aligned = candidateSet(128, true, { blockAligned: true }).choices;
    expect(windowsOf(aligned, 'window')).toEqual([4, 8, 16, 17, 32, 64]);
    expect(windowsOf(aligned, 'sink')).toContain(17);
    expect(windowsOf(aligned, 'strided')).toContain(17);
    // Every ladder choice is still there, and dense first, pruned last.
    expect(aligned.map(describeHeadChoice)).toEqual(expect.arrayContaining(ladder));
    expect(describeHeadChoice(aligned[0])).toBe('dense');
    expect(describeHeadChoice(aligned[aligned.length - 1])).toBe('pruned');
  });

  it.each([[128, true], [512, true], [4096, true], [200, false]])('at %i tokens (causal %s): each aligned window costs its rung\'s FLOPs, one more key costs more', (seq, causal) => {
    const set = candidateSet(seq, causal, { blockAligned: true }).choices;
    const rungs = windowsOf(candidateSet(seq, causal).choices, 'window');
    for (const kind of causal ? (['window', 'sink', 'strided'] as const) : (['window'] as const)) {
      const at = (w: number): HeadChoice => {
        const base = set.find((c) => c.kind === kind)!;
        return { ...base, window: w } as HeadChoice;
      };
      const flops = (w: number) => realisedHeadFlops(at(w), seq, causal, 64);
      for (const w of rungs) {
        const a = alignedWindow(at(w) as Parameters<typeof alignedWindow>[0], seq, causal);
        expect(windowsOf(set, kind)).toContain(a);
        expect(a).toBeGreaterThanOrEqual(w);
        expect(flops(a)).toBe(flops(w));
        if (a + 1 < seq) expect(flops(a + 1)).toBeGreaterThan(flops(w));
      }
    }
  });

  it('agrees with the rewrite: the blocked plan of window 17 computes what window 16 computes at 128 tokens, window 18 more', () => {
    const f = fixture('bytelm-llama-trained');
    const sites = analyzeModel(f.model, { seqLen: 128 }).sites.filter((s) => s.kind === 'self' && s.heads);
    const flopsAfter = (w: number) => {
      const plan = { version: 1 as const, seq: 128, sites: Object.fromEntries(sites.map((s) => [s.id, new Array<HeadChoice>(s.heads!).fill({ kind: 'window', window: w })])) };
      const r = rewriteModel(f.model, [{ rule: 'plan', params: { plan, impl: 'blocked' } }], join(dir, `w${w}.onnx`), { seqLen: 128, save: { externalData: 'embed' } });
      return r.flopsAfter;
    };
    const w16 = flopsAfter(16);
    expect(flopsAfter(17)).toBe(w16);
    expect(flopsAfter(18)).toBeGreaterThan(w16);
  });
});
