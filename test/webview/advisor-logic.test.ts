// The Advisor tab's logic: the budgets typed, the frontier's series (plans and each uniform family apart, unmeasured
// baselines left out), the plan's site × head grid and the studio step that keeps a plan as a variant.
import { describe, expect, it } from 'vitest';
import { type AdvisorResults, parseWebviewMessage } from '../../src/protocol';
import { parseHeadPlan } from '../../src/shared/head-plan';
import { stepsLabel } from '../../src/shared/rule-steps';
import { budgetText, budgetUnitOf, budgetValueText, fmtDensity, frontierSeries, mixText, parseBenchSeq, parseBudgets, patternOf, planGrid, planSpeedText, planVariant, speedupText } from '../../webview/logic/advisor';

const plan = (sites: Record<string, string[]>) => parseHeadPlan({ version: 1, seq: 64, sites });

const results: AdvisorResults = {
  seq: 64,
  lengthNote: "64 tokens: the model's length (at most 512)",
  objective: 'bits per token on text.py: 16 evaluation windows of 64',
  calibration: '4 calibration windows of 64 tokens',
  sites: [{ site: 0, heads: 4 }, { site: 1, heads: 4 }],
  skipped: [{ site: 2, reason: 'cross-attention: positions of queries and keys cannot be compared' }],
  dense: { metric: 'bits per token', value: 2.0 },
  frontier: [
    { budget: 0.25, density: 0.24, plan: plan({ 0: ['dense', 'window 8', 'window 8', 'pruned'], 1: ['sink 4 + window 8', 'window 8', 'block-topk 8,2', 'window 16'] }), proxy: 'recall', evaluation: { metric: 'bits per token', value: 2.1 }, mix: { 'window 8': 3, dense: 1, pruned: 1, 'sink 4 + window 8': 1, 'block-topk 8,2': 1, 'window 16': 1 } },
    { budget: 0.125, density: 0.12, plan: plan({ 0: ['window 4', 'window 4', 'window 4', 'pruned'], 1: ['window 4', 'window 4', 'window 4', 'window 4'] }), proxy: 'recall', evaluation: { metric: 'bits per token', value: 2.3 }, mix: { 'window 4': 7, pruned: 1 } },
  ],
  baselines: [
    { budget: 0.25, family: 'window', rule: 'window 15', density: 0.25, evaluation: { metric: 'bits per token', value: 2.2 } },
    { budget: 0.125, family: 'window', rule: 'window 7', density: 0.125, evaluation: { metric: 'bits per token', value: 2.5 } },
    { budget: 0.25, family: 'strided', rule: null, density: null, evaluation: null, reason: 'no stride fits the budget' },
  ],
  timings: { profileMs: 1000, searchMs: 10, validateMs: 2000 },
  warnings: [],
  finishedAt: '2026-12-01T18:00:00.000Z',
};

describe('parseBudgets', () => {
  it('reads densities and percentages, the first kept first, repeats dropped', () => {
    expect(parseBudgets('0.25, 0.125 50%')).toEqual([0.25, 0.125, 0.5]);
    expect(parseBudgets('0.25,0.25')).toEqual([0.25]);
  });
  it.each([[''], ['0'], ['1.5'], ['x'], ['-0.1'], ['0.1 0.2 0.3 0.4 0.5 0.6 0.7']])('refuses %j with a reason', (t) => {
    expect(() => parseBudgets(t)).toThrow(/budget|density/);
  });
  it('gives budgets the host accepts', () => {
    expect(parseWebviewMessage({ type: 'advise', budgets: parseBudgets('0.25, 0.125, 0.5') })).toEqual({ type: 'advise', budgets: [0.25, 0.125, 0.5] });
  });
});

describe('frontierSeries', () => {
  it('puts the plans first, sorted by density, and each measured uniform family apart', () => {
    const s = frontierSeries(results);
    expect(s.map((x) => [x.label, x.kind])).toEqual([['per-head plan', 'plan'], ['uniform window', 'uniform']]);
    expect(s[0].points.map((p) => [p.x, p.y])).toEqual([[0.12, 2.3], [0.24, 2.1]]);
    expect(s[1].points.map((p) => p.what)).toEqual(['window 7', 'window 15']);
  });
});

describe('planGrid', () => {
  it('has one row per site (skipped ones with their reason) and one coloured cell per head', () => {
    const g = planGrid(results, results.frontier[0]);
    expect(g.heads).toBe(4);
    expect(g.rows.map((r) => r.site)).toEqual([0, 1, 2]);
    expect(g.rows[0].cells.map((c) => c?.pattern)).toEqual(['dense', 'window', 'window', 'pruned']);
    expect(g.rows[1].cells.map((c) => c?.choice)).toEqual(['sink 4 + window 8', 'window 8', 'block-topk 8,2', 'window 16']);
    expect(g.rows[2].note).toMatch(/^stays dense: cross-attention/);
    expect(g.patterns).toEqual(['dense', 'window', 'sink', 'block-topk', 'pruned']);
  });
  it('says when a planned site is not in the plan', () => {
    const g = planGrid({ ...results, sites: [...results.sites, { site: 3, heads: 2 }] }, results.frontier[1]);
    expect(g.rows.find((r) => r.site === 3)?.note).toMatch(/not in the plan/);
  });
  it('names the pattern family of every notation', () => {
    expect(['dense', 'pruned', 'window 64', 'sink 4 + window 64', 'strided 8 + window 16', 'power + window 8', 'block-topk 32,4'].map(patternOf))
      .toEqual(['dense', 'pruned', 'window', 'sink', 'strided', 'power', 'block-topk']);
  });
});

describe('planVariant', () => {
  it('is a plan step the host accepts, holding the measured plan in its mask form', () => {
    const v = planVariant(results.frontier[0]);
    expect(v.steps).toEqual([{ rule: 'plan', params: { plan: results.frontier[0].plan, impl: 'mask' } }]);
    expect(parseWebviewMessage(JSON.parse(JSON.stringify({ type: 'addVariant', ...v })))).toEqual({ type: 'addVariant', ...v });
    expect(v.label).toBe('advisor plan, density ≤ 0.25 (24%)');
    expect(stepsLabel(v.steps)).toMatch(/^plan site 0: /);
    const b = planVariant(results.frontier[1], 'blocked');
    expect(b.steps[0].params.impl).toBe('blocked');
    expect(b.label).toBe('advisor plan, density ≤ 0.125 (12%), blocked');
    expect(parseWebviewMessage({ type: 'addVariant', ...b })).toEqual({ type: 'addVariant', ...b });
  });
  it('names a plan by its budget\'s kind and unit, not as a density, under a FLOP or latency budget', () => {
    const flops = budgetUnitOf({ budgetUnit: { kind: 'flops', unit: 'share' } });
    expect(planVariant(results.frontier[0], 'blocked', flops).label).toBe('advisor plan, attention FLOPs ≤ 0.25 of dense (density 24%), blocked');
    expect(budgetText({ kind: 'latency', unit: 'ms' }, 12)).toBe('latency ≤ 12 ms');
    expect(budgetValueText({ kind: 'flops', unit: 'flops' }, 1.5e9)).toBe('1.5G');
    // A run saved before budgets had kinds is one of densities.
    expect(budgetUnitOf({})).toEqual({ kind: 'density', unit: 'share' });
    expect(budgetText(budgetUnitOf({}), 0.25)).toBe('density ≤ 0.25');
  });
});

describe('formats', () => {
  it('writes densities as percentages and a plan mix most used first', () => {
    expect([0.25, 0.125, 1 / 32].map(fmtDensity)).toEqual(['25%', '12.5%', '3.13%']);
    expect(mixText({ dense: 1, 'window 4': 7, pruned: 1 })).toBe('window 4 ×7, dense ×1, pruned ×1');
  });
});

describe('the speed step', () => {
  const vs = (ratio: number, ci95: [number, number], verdict: 'faster' | 'slower' | 'indistinguishable' | 'bound-exceeded') =>
    ({ ratio, ci95, significant: ci95[0] > 1 || ci95[1] < 1, paired: true, modelBound: 3, verdict });

  it('reads the length to time at, and the advise message carries it (checked by the host)', () => {
    expect(parseBenchSeq(' 4096 ')).toBe(4096);
    for (const t of ['', '0', '8', '1.5', 'x', String(2 ** 21)]) expect(() => parseBenchSeq(t)).toThrow(/length to time at/);
    expect(parseWebviewMessage({ type: 'advise', budgets: [0.25], benchSeq: 4096 })).toEqual({ type: 'advise', budgets: [0.25], benchSeq: 4096 });
    expect(parseWebviewMessage({ type: 'advise', budgets: [0.25] })).toEqual({ type: 'advise', budgets: [0.25] });
    expect(parseWebviewMessage({ type: 'advise', budgets: [0.25], benchSeq: -1 })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'advise', budgets: [0.25], benchSeq: '4096' })).toBeUndefined();
  });

  it('states a speedup with its interval, ≈1 when it contains 1, and never a win above its bound', () => {
    expect(speedupText(vs(1.84, [1.79, 1.9], 'faster'))).toBe('1.84× [1.79–1.90]');
    expect(speedupText(vs(1.08, [0.83, 1.97], 'indistinguishable'))).toBe('1.08× [0.83–1.97] ≈1');
    expect(speedupText(vs(5, [4, 6], 'bound-exceeded'))).toMatch(/^⚠ .*not a win/);
  });

  it('shows the blocked speed of a point only when the run timed it', () => {
    const point = { ...results.frontier[0], speed: { latencyMs: { p50: 3472, ci95: [3094, 4730] as [number, number], runs: 10 }, vsOriginal: vs(2.5, [1.81, 2.74], 'faster'), vsBaseline: vs(1.52, [1.2, 2.91], 'faster'), blockedSites: 2, plannedSites: 2 } };
    const timed: AdvisorResults = { ...results, frontier: [point], speed: { seq: 4096, ep: 'cpu', baseline: 'fused', originalMs: 8683, fusedMs: 6383, machine: 'AMD EPYC, 2 cores', otherCpuShare: 0.8 } };
    expect(planSpeedText(timed, point)).toBe('3472 ms, 1.52× [1.20–2.91] vs fused');
    expect(planSpeedText(results, results.frontier[0])).toBeNull();
  });
});
