// The advisor at several lengths, its parts that need no model (issue 10): calibration windows of every length kept
// apart from the evaluation windows of every length, the options of the joint search over the lengths (span laws
// through window ladder points, their costs and losses at every length), and --seq read as one length or several.
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/cli/args';
import { seqOption } from '../../src/cli/plan-lengths';
import { splitTokens, splitTokensAt } from '../../src/orchestrate/advisor/calibration';
import { densityCost } from '../../src/orchestrate/advisor/budget-cost';
import { denseKeys } from '../../src/orchestrate/advisor/candidates';
import { jointExtras, jointHeads, siteOptions } from '../../src/orchestrate/advisor/joint';
import { assertWithinBudget } from '../../src/orchestrate/advisor/lengths';
import { LOSS_PROXIES } from '../../src/orchestrate/advisor/loss';
import type { AdvisorProfile, SiteProfile } from '../../src/orchestrate/advisor/profile';
import type { HeadChoice } from '../../src/rewriters/plan/choices';
import { resolveChoice } from '../../src/rewriters/plan/span';
import { describeHeadChoice, parseHeadChoice } from '../../src/shared/head-plan';
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

describe('the joint options over several lengths (joint.ts)', () => {
  const site = (seq: number, choices: string[], recall: (c: string) => number, importance = 1): SiteProfile => ({
    site: 2, causal: true, heads: 1, kvHeads: null, denseKeys: denseKeys(true, seq), choices: choices.map((c) => parseHeadChoice(c) as HeadChoice),
    perHead: [{ head: 0, importance, recall: choices.map(recall), keys: [], entropy: 0, firstTokenMass: 0, meanDistance: 0 }],
  });
  const profile = (seq: number, s: SiteProfile) => ({ seq, sites: [s] }) as unknown as AdvisorProfile;

  it('with two lengths: dense, pruned and the fixed choices every length measured, and a law through every pair of ladder points with W2 ≥ W1', () => {
    const at256 = ['dense', 'window 32', 'window 64', 'window 128', 'block-topk 16,1', 'pruned'];
    const at512 = ['dense', 'window 64', 'window 128', 'window 256', 'block-topk 16,1', 'block-topk 32,1', 'pruned'];
    const options = siteOptions([256, 512], [site(256, at256, () => 0.5), site(512, at512, () => 0.5)]);
    expect(options.map((o) => describeHeadChoice(o.choice))).toEqual([
      'dense', 'block-topk 16,1', 'pruned',
      'window 0 + 0.125·L', 'window -64 + 0.375·L', 'window -192 + 0.875·L', 'window 64', 'window 0 + 0.25·L', 'window -128 + 0.75·L', 'window 128', 'window 0 + 0.5·L',
    ]);
    // Each option resolves at each length to the choice whose recall that length measured (its index there).
    for (const o of options) {
      expect(describeHeadChoice(resolveChoice(o.choice, 256))).toBe(at256[o.at[0]]);
      expect(describeHeadChoice(resolveChoice(o.choice, 512))).toBe(at512[o.at[1]]);
    }
  });

  it('with three lengths: only the laws whose window at every length is one that length measured', () => {
    const ladder = (seq: number) => ['dense', `window ${seq / 8}`, `window ${seq / 4}`, 'pruned'];
    const options = siteOptions([128, 256, 512], [128, 256, 512].map((L) => site(L, ladder(L), () => 0.5)));
    expect(options.map((o) => describeHeadChoice(o.choice))).toEqual(['dense', 'pruned', 'window 0 + 0.125·L', 'window 0 + 0.25·L']);
  });

  it('costs every option at every length and estimates its loss as the mean over the lengths', () => {
    const rec = (L: number) => (c: string) => (c === 'dense' ? 1 : c === 'pruned' ? 0 : c.startsWith('window') ? Number(c.split(' ')[1]) / L : 0.5);
    const profiles = [profile(256, site(256, ['dense', 'window 32', 'window 64', 'pruned'], rec(256), 2)), profile(512, site(512, ['dense', 'window 64', 'window 128', 'pruned'], rec(512), 4))];
    const costs = profiles.map(densityCost);
    const [head] = jointHeads(profiles, LOSS_PROXIES[0], costs);
    const law = head.options.find((o) => describeHeadChoice(o.choice) === 'window 0 + 0.25·L')!;
    expect(law.costs[0]).toBeCloseTo(costs[0].cost(profiles[0].sites[0], 0, parseHeadChoice('window 64') as HeadChoice), 12);
    expect(law.costs[1]).toBeCloseTo(costs[1].cost(profiles[1].sites[0], 0, parseHeadChoice('window 128') as HeadChoice), 12);
    // 2 × (1 − 64/256) at 256 and 4 × (1 − 128/512) at 512.
    expect(law.loss).toBeCloseTo((2 * 0.75 + 4 * 0.75) / 2, 12);
    const pruned = head.options.find((o) => o.choice.kind === 'pruned')!;
    expect(pruned.costs).toEqual([0, 0]);
    expect(pruned.loss).toBeCloseTo(3, 12);
  });

  it('each length measures the other lengths\' block-topk and strides (with its own windows)', () => {
    const extras = jointExtras([256, 512])(256, true).map(describeHeadChoice);
    expect(extras).toContain('block-topk 32,1');
    expect(extras).toContain('strided 32 + window 4');
    expect(extras).toContain('strided 32 + window 128');
    expect(extras.some((d) => d.startsWith('window') || d.includes('+ window 256'))).toBe(false);
  });
});

describe('the check that the joint plan is within its budget at every length', () => {
  it('passes a plan within the budget at each length and stops on one over it (which the joint search never gives)', () => {
    const budget = { kind: 'density', unit: 'share', value: 0.25 } as const;
    expect(() => assertWithinBudget(budget, [{ seq: 256, cost: 0.2499 }, { seq: 512, cost: 0.25 }])).not.toThrow();
    expect(() => assertWithinBudget(budget, [{ seq: 256, cost: 0.2429 * 1.1 }, { seq: 512, cost: 0.2 }])).toThrow(/^internal: the joint plan for density ≤ 0.25 spends 0.267\d* at 256 tokens, over its budget/);
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
