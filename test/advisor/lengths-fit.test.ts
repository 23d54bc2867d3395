// The advisor at several lengths, its parts that need no model (issue 10): calibration windows of every length kept
// apart from the evaluation windows of every length, the span laws fitted from the plans of each length (least
// squares, b ≥ 0, dense counted as a window of L), and --seq read as one length or several.
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/cli/args';
import { seqOption } from '../../src/cli/plan-lengths';
import { splitTokens, splitTokensAt } from '../../src/orchestrate/advisor/calibration';
import { fitLengths, leastSquares } from '../../src/orchestrate/advisor/span-fit';
import { resolveChoice } from '../../src/rewriters/plan/span';
import { describeHeadChoice, parseHeadPlan, type HeadPlanFile } from '../../src/shared/head-plan';
import { windowStarts } from '../../src/runtime/measure/task-score';

describe('calibration windows at several lengths', () => {
  const tokens = new Int32Array(262144);

  it('start at the same places for every length, and no token of any is read by an evaluation window of any length', () => {
    const seqs = [128, 256, 512];
    const splits = splitTokensAt(tokens, seqs, 64, 6);
    expect(splits.map((s) => s.seq)).toEqual(seqs);
    const evalWindows = seqs.flatMap((L) => windowStarts(tokens.length, L, 64).map((s) => [s, s + L + 1]));
    for (const s of splits) {
      expect(s.evalStarts).toEqual(windowStarts(tokens.length, s.seq, 64)); // eval's own windows at that length
      expect(s.calibrationStarts).toEqual(splits[0].calibrationStarts);
      for (const c of s.calibrationStarts) {
        expect(c + s.seq + 1).toBeLessThanOrEqual(tokens.length);
        for (const [from, to] of evalWindows) expect(c + s.seq + 1 <= from || to <= c, `calibration ${c}+${s.seq} against eval [${from}, ${to})`).toBe(true);
      }
    }
    expect(splits[0].how).toMatch(/^6 calibration windows at each of 128, 256, 512 tokens, taken from the gaps between the 64 evaluation windows of eval at every one/);
  });

  it('with one length are exactly the one-length split', () => {
    const { tokens: a, ...several } = splitTokensAt(tokens, [512], 64, 4)[0];
    const { tokens: b, ...one } = splitTokens(tokens, 512, 64, 4);
    expect(several).toEqual(one);
    expect(a).toBe(b);
    expect(() => splitTokensAt(new Int32Array(64 * 513 + 10), [256, 512], 64, 4)).toThrow(
      /between its 64 evaluation windows of 256, 512 tokens there is room for 0 calibration window\(s\) of 512, 4 asked/,
    );
  });
});

describe('span laws fitted over the lengths', () => {
  const plans = (lengths: number[], heads: string[][]): HeadPlanFile[] => lengths.map((_, i) => parseHeadPlan({ version: 1, sites: { 2: heads.map((h) => h[i]) } }));

  it('with two lengths: the line through both choices, which gives each back; dense counts as a window of L; kinds that differ keep the longest', () => {
    const lengths = [256, 512];
    const heads = [
      ['window 32', 'window 64'], // 0 + 0.125·L
      ['sink 4 + window 16', 'sink 4 + window 64'], // -32 + 0.1875·L
      ['dense', 'window 256'], // (256, 256), (512, 256): 256 + 0·L
      ['window 64', 'window 64'], // the same at both: fixed
      ['strided 16 + window 8', 'strided 32 + window 8'], // strides differ: the longest's
      ['pruned', 'window 8'], // kinds differ: the longest's
      ['window 128', 'window 32'], // shrinks: b would be negative, so the mean, which gives neither back
    ];
    const { plan, fits } = fitLengths(lengths, plans(lengths, heads), 'note');
    expect(plan.lengths).toEqual(lengths);
    expect(plan.seq).toBe(512);
    expect(plan.sites[2].map(describeHeadChoice)).toEqual([
      'window 0 + 0.125·L', 'sink 4 + window -32 + 0.1875·L', 'window 256 + 0·L', 'window 64', 'strided 32 + window 8', 'window 8', 'window 80 + 0·L',
    ]);
    expect(fits.map((f) => [f.how, f.exact, f.maxError])).toEqual([
      ['law', true, 0], ['law', true, 0], ['law', true, 0], ['same', true, null], ['longest', false, null], ['longest', false, null], ['law', false, 48],
    ]);
    // Every exact law resolves at each length to the choice searched there (dense as a window of L).
    fits.forEach((f, h) => {
      if (f.how !== 'law' || !f.exact) return;
      lengths.forEach((L, i) => {
        const got = resolveChoice(plan.sites[2][h], L);
        expect(heads[h][i] === 'dense' ? `window ${L}` : heads[h][i]).toBe(describeHeadChoice(got));
      });
    });
    expect(fits[0].searched).toEqual(['window 32', 'window 64']);
  });

  it('with three lengths: least squares, said when it does not give every choice back', () => {
    expect(leastSquares([128, 256, 512], [16, 32, 64])).toEqual({ a: 0, b: 0.125 });
    const law = leastSquares([128, 256, 512], [16, 64, 64]);
    // Σ (a + b·L − W)² is least: its gradient is zero.
    const r = [128, 256, 512].map((L, i) => law.a + law.b * L - [16, 64, 64][i]);
    expect(r.reduce((x, y) => x + y, 0)).toBeCloseTo(0, 9);
    expect(r.reduce((x, y, i) => x + y * [128, 256, 512][i], 0)).toBeCloseTo(0, 6);
    const { fits } = fitLengths([128, 256, 512], plans([128, 256, 512], [['window 16', 'window 64', 'window 64']]), 'n');
    expect(fits[0].how).toBe('law');
    expect(fits[0].exact).toBe(false);
    expect(fits[0].maxError).toBeGreaterThan(0);
  });
});

describe('--seq', () => {
  const seq = (...argv: string[]) => seqOption(parseArgs(argv, { seq: true }), 512);
  it('reads one length as a number (the one-length advisor), several as an ascending list', () => {
    expect(seq()).toBe(512);
    expect(seq('--seq', '256')).toBe(256);
    expect(seq('--seq', '512,256')).toEqual([256, 512]);
    expect(seq('--seq', '256, 256')).toBe(256);
    for (const bad of ['0', '256,x', '256,', '1.5', '1']) expect(() => seq('--seq', bad), bad).toThrow(/--seq must be a length >= 2 or several, comma-separated/);
  });
});
