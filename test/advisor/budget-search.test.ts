// The one integer program under every kind of budget: with the costs of density, attention FLOPs (blocked realisation)
// and a latency model (costs relative to dense, so most are below zero), HiGHS returns exactly the brute-force optimum
// and a plan within the budget; the uniform baselines are fitted by the same cost; the latency model's fit and its
// verdict on a measured interval.
import { describe, expect, it } from 'vitest';
import { type CostModel, densityCost, flopsCost, latencyCost, uniformCost } from '../../src/orchestrate/advisor/budget-cost';
import { candidateSet } from '../../src/orchestrate/advisor/candidates';
import { type LatencyModel, type LatencyPoint, LatencyUnknown, fitForms, latencyVerdict, predictDeltaMs } from '../../src/orchestrate/advisor/latency-model';
import { LOSS_PROXIES, searchHeads } from '../../src/orchestrate/advisor/loss';
import type { AdvisorProfile } from '../../src/orchestrate/advisor/profile';
import { BudgetError, searchPlan } from '../../src/orchestrate/advisor/search';
import { fitFamily } from '../../src/orchestrate/advisor/uniform';
import type { Budget } from '../../src/rewriters/plan/budget';
import type { HeadChoice } from '../../src/rewriters/plan/choices';
import { realisedHead, realisedHeadFlops } from '../../src/rewriters/plan/realised-cost';
import { fixture } from '../runtime/helpers';
import { bruteForce } from './helpers/brute-force';
import { syntheticProfile } from './helpers/synthetic-profile';

const SEQ = 128;
const CHOICES: HeadChoice[] = [{ kind: 'dense' }, { kind: 'window', window: 8 }, { kind: 'window', window: 32 }, { kind: 'block-topk', block: 16, k: 1 }, { kind: 'sink', sink: 4, window: 16 }, { kind: 'pruned' }];

/** Two sites of the trained model, 4 heads each (8 heads, 6 options: 6^8 plans for the brute force). */
function small(seed: number): { profile: AdvisorProfile; flops: CostModel & { denseFlops: number } } {
  const { profile, report } = syntheticProfile(fixture('bytelm-llama-trained').model, SEQ, seed, { choices: () => CHOICES, sites: 2 });
  for (const s of profile.sites) {
    s.heads = 4;
    s.perHead = s.perHead.slice(0, 4);
  }
  return { profile, flops: flopsCost(profile, report) };
}

/** A latency model made from points on known lines (no timing): Δ per head in ms, below zero for the cheap choices. */
function syntheticLatency(profile: AdvisorProfile): LatencyModel {
  const sites = profile.sites.map((s) => ({ site: s.site, causal: s.causal, headDim: 32 }));
  // A dense head of this model costs 2.1 MFLOPs at 128 tokens: windows save, block-topk costs a little more; sink,
  // timed once, shares the windows' slope (as the fit assumes) with its own intercept.
  const line: Record<string, [number, number]> = { window: [-0.08, 4e-8], 'block-topk': [0.01, 5e-8], sink: [-0.07, 4e-8], pruned: [-0.1, 0] };
  const points: LatencyPoint[] = CHOICES.filter((c) => c.kind !== 'dense').map((choice) => {
    const flopsPerHead = realisedHeadFlops(choice, SEQ, true, 32);
    const delta = line[choice.kind][0] + line[choice.kind][1] * flopsPerHead;
    return {
      label: choice.kind, choice, family: choice.kind, form: realisedHead(choice, SEQ, true, 32).form, heads: 8, flopsPerHead,
      latencyMs: { p50: 5 + 8 * delta, ci95: [4.9 + 8 * delta, 5.1 + 8 * delta], runs: 10 }, deltaPerHeadMs: delta,
    };
  });
  return { seq: SEQ, ep: 'cpu', inputs: 'synthetic', machine: 'none', dense: { p50: 5, ci95: [4.9, 5.1], runs: 10 }, points, fits: fitForms(points), groups: null, sites, warnings: [] };
}

const cases: { name: string; costs: (p: AdvisorProfile, f: CostModel) => CostModel; budgets: Budget[] }[] = [
  { name: 'density', costs: (p) => densityCost(p), budgets: [0.2, 0.35, 0.6].map((value) => ({ kind: 'density', unit: 'share', value })) },
  { name: 'flops (share)', costs: (_p, f) => f, budgets: [0.15, 0.3, 0.55].map((value) => ({ kind: 'flops', unit: 'share', value })) },
  { name: 'flops (count)', costs: (_p, f) => f, budgets: [{ kind: 'flops', unit: 'flops', value: 8e6 }] },
  { name: 'latency (share)', costs: (p) => latencyCost(p, syntheticLatency(p)), budgets: [0.9, 0.95, 0.99].map((value) => ({ kind: 'latency', unit: 'share', value })) },
  { name: 'latency (ms)', costs: (p) => latencyCost(p, syntheticLatency(p)), budgets: [{ kind: 'latency', unit: 'ms', value: 4.8 }] },
];

describe.each(cases)('a $name budget', ({ costs: make, budgets }) => {
  it.each([1, 2])('finds the brute-force optimum within the budget (profile %i)', async (seed) => {
    const { profile, flops } = small(seed);
    const costs = make(profile, flops);
    let solved = 0;
    for (const b of budgets) {
      for (const proxy of LOSS_PROXIES) {
        const heads = searchHeads(profile, proxy, costs);
        const limit = costs.limit(b);
        const best = bruteForce(heads, limit);
        if (best === Infinity) {
          await expect(searchPlan(heads, limit)).rejects.toThrow(BudgetError);
          continue;
        }
        const r = await searchPlan(heads, limit);
        expect(r.loss).toBeCloseTo(best, 9);
        expect(r.cost).toBeLessThanOrEqual(limit + 1e-9 * Math.abs(limit) + 1e-12);
        expect(costs.inUnit(r.cost, b.unit)).toBeLessThanOrEqual(b.value * (1 + 1e-9));
        // The summed cost is what the picks' costs say under the model.
        const site = (id: number) => profile.sites.find((s) => s.site === id)!;
        expect(r.picks.reduce((a, p) => a + costs.cost(site(p.site), p.head, p.choice), 0)).toBeCloseTo(r.cost, 9);
        // The budget binds: the unconstrained optimum (every head dense, no loss) is over it.
        expect(r.picks.some((p) => p.choice.kind !== 'dense')).toBe(true);
        solved++;
      }
    }
    expect(solved).toBeGreaterThan(0);
  });

  it('fits each uniform family to the largest parameter within the budget, by the same cost', () => {
    const { profile, flops } = small(3);
    const costs = make(profile, flops);
    for (const b of budgets) {
      for (const family of candidateSet(SEQ, true).families) {
        // The latency model knows only the families it timed (here no strided one): the others are unknown, not guessed.
        if (costs.kind === 'latency' && !CHOICES.some((c) => c.kind === family.at(family.min).kind)) {
          expect(() => fitFamily(profile, family, b, costs)).toThrow(LatencyUnknown);
          continue;
        }
        const fit = fitFamily(profile, family, b, costs);
        const within = (v: number) => costs.inUnit(uniformCost(profile, costs, family.at(v)), b.unit) <= b.value * (1 + 1e-9);
        const largest = [...Array(family.max - family.min + 1).keys()].map((i) => family.max - i).find(within);
        expect(fit?.value).toBe(largest);
        if (fit) expect(fit.cost).toBeLessThanOrEqual(b.value * (1 + 1e-9));
      }
    }
  });
});

describe('the latency model', () => {
  it('recovers the lines its points lie on, dense at zero, a family timed once on the windows\' slope', () => {
    const { profile } = small(1);
    const model = syntheticLatency(profile);
    const fit = (f: string) => model.fits.find((x) => x.family === f)!;
    expect(fit('window').a).toBeCloseTo(-0.08, 12);
    expect(fit('window').b).toBeCloseTo(4e-8, 18);
    expect(fit('window').slope).toBe('fitted');
    expect(fit('window').maxResidualMs).toBeLessThan(1e-9);
    expect(fit('sink').slope).toBe('window');
    expect(fit('sink').a).toBeCloseTo(-0.07, 12);
    expect(fit('pruned')).toMatchObject({ slope: 'none', b: 0 });
    expect(fit('pruned').a).toBeCloseTo(-0.1, 12);
    const s = profile.sites[0].site;
    expect(predictDeltaMs(model, s, { kind: 'dense' })).toBe(0);
    expect(predictDeltaMs(model, s, { kind: 'window', window: 16 })).toBeCloseTo(-0.08 + 4e-8 * realisedHeadFlops({ kind: 'window', window: 16 }, SEQ, true, 32), 12);
    expect(predictDeltaMs(model, s, { kind: 'sink', sink: 4, window: 64 })).toBeCloseTo(-0.07 + 4e-8 * realisedHeadFlops({ kind: 'sink', sink: 4, window: 64 }, SEQ, true, 32), 12);
    expect(() => predictDeltaMs(model, s, { kind: 'strided', stride: 8, window: 16 })).toThrow(/no measurement of strided heads/);
  });

  it('calls a budget met only when the whole measured interval is within it', () => {
    expect(latencyVerdict([4, 5], 5)).toBe('met');
    expect(latencyVerdict([4, 5.01], 5)).toBe('not shown');
    expect(latencyVerdict([4.99, 6], 5)).toBe('not shown');
    expect(latencyVerdict([5.01, 6], 5)).toBe('exceeded');
  });
});
