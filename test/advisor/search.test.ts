// The advisor's integer program (src/orchestrate/advisor/search.ts) against exhaustive search: on random small
// instances HiGHS must return a plan of exactly the least loss under the budget, never over it. The program has one
// generic cost per option; the budget kinds (density, FLOPs, latency with costs below zero) are checked in
// budget-search.test.ts.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/analysis/numeric/random';
import type { HeadChoice } from '../../src/rewriters/plan/choices';
import { BudgetError, type GroupCosts, type RowsHead, type SearchHead, groupCost, searchPlan, searchRows, undominated, undominatedRows } from '../../src/orchestrate/advisor/search';
import { bruteForce, bruteForceRows } from './helpers/brute-force';

const W = (window: number): HeadChoice => ({ kind: 'window', window });

function randomHeads(seed: number, heads: number, options: number): SearchHead[] {
  const rng = new Rng(seed);
  return Array.from({ length: heads }, (_, h) => ({
    site: Math.floor(h / 2),
    head: h % 2,
    options: Array.from({ length: options }, (_, o) => ({ choice: W(o + 1), cost: rng.next(), loss: rng.next() })),
  }));
}

describe('searchPlan', () => {
  it.each([1, 2, 3, 4, 5, 6])('finds the exact optimum of random instance %i', async (seed) => {
    const heads = randomHeads(seed, 5, 4);
    const cheapest = heads.reduce((a, h) => a + Math.min(...h.options.map((o) => o.cost)), 0);
    const limit = cheapest + 0.3 * (heads.length - cheapest) * ((seed % 3) + 1) / 3;
    const r = await searchPlan(heads, limit);
    expect(r.status).toBe('Optimal');
    expect(r.cost).toBeLessThanOrEqual(limit + 1e-9);
    expect(r.loss).toBeCloseTo(bruteForce(heads, limit), 9);
    expect(r.picks.map((p) => [p.site, p.head])).toEqual(heads.map((h) => [h.site, h.head]));
  });

  it('spends the budget where it buys the most', async () => {
    // Head 0 loses much when narrowed, head 1 little: at a budget for one wide head, head 0 gets it.
    const heads: SearchHead[] = [
      { site: 0, head: 0, options: [{ choice: W(8), cost: 0.1, loss: 1 }, { choice: W(64), cost: 0.9, loss: 0 }] },
      { site: 0, head: 1, options: [{ choice: W(8), cost: 0.1, loss: 0.1 }, { choice: W(64), cost: 0.9, loss: 0 }] },
    ];
    const r = await searchPlan(heads, 1);
    expect(r.picks.map((p) => p.choice)).toEqual([W(64), W(8)]);
    expect(r.loss).toBeCloseTo(0.1, 12);
  });

  it.each([1, 2, 3, 4])('with a cost per head group beyond the first of a site, finds the exact optimum of random instance %i', async (seed) => {
    const heads = randomHeads(seed, 6, 3);
    const groups: GroupCosts = new Map([[0, 0.15], [1, 0.05], [2, 0.3]]);
    const cheapest = heads.reduce((a, h) => a + Math.min(...h.options.map((o) => o.cost)), 0);
    const limit = cheapest + 0.5 + 0.3 * seed;
    // Exhaustive: every combination, its cost with the groups', the least loss within the limit.
    let best = Infinity;
    const pick = (h: number, chosen: number[]): void => {
      if (h === heads.length) {
        const picks = chosen.map((o, i) => ({ site: heads[i].site, choice: heads[i].options[o].choice }));
        const cost = chosen.reduce((a, o, i) => a + heads[i].options[o].cost, 0) + groupCost(picks, groups);
        if (cost <= limit + 1e-12) best = Math.min(best, chosen.reduce((a, o, i) => a + heads[i].options[o].loss, 0));
        return;
      }
      for (let o = 0; o < heads[h].options.length; o++) pick(h + 1, [...chosen, o]);
    };
    pick(0, []);
    const r = await searchPlan(heads, limit, String, groups);
    expect(r.loss).toBeCloseTo(best, 9);
    expect(r.cost).toBeLessThanOrEqual(limit + 1e-9);
    expect(r.cost).toBeCloseTo(r.picks.reduce((a, p) => a + p.cost, 0) + groupCost(r.picks, groups), 12);
  });

  it('splits a site into a second head group only when the budget holds the group\'s cost too', async () => {
    // At 0.7 one head can have window 64 (0.5); split from the other head, that makes a second group.
    const heads: SearchHead[] = [
      { site: 0, head: 0, options: [{ choice: W(8), cost: 0, loss: 1 }, { choice: W(64), cost: 0.5, loss: 0 }] },
      { site: 0, head: 1, options: [{ choice: W(8), cost: 0, loss: 0.1 }, { choice: W(64), cost: 0.5, loss: 0 }] },
    ];
    const cheap = await searchPlan(heads, 0.7, String, new Map([[0, 0.1]]));
    expect(cheap.picks.map((p) => p.choice)).toEqual([W(64), W(8)]);
    expect(cheap.cost).toBeCloseTo(0.6, 12);
    const dear = await searchPlan(heads, 0.7, String, new Map([[0, 0.25]]));
    expect(dear.picks.map((p) => p.choice)).toEqual([W(8), W(8)]);
    expect(dear.cost).toBe(0);
    // Without group costs, the program is the one it always was.
    expect((await searchPlan(heads, 0.7)).picks.map((p) => p.choice)).toEqual([W(64), W(8)]);
  });

  it('refuses a budget below the cheapest plan, naming it', async () => {
    const heads = randomHeads(9, 3, 3).map((h) => ({ ...h, options: h.options.map((o) => ({ ...o, cost: (0.5 + o.cost / 2) / 3 })) }));
    await expect(searchPlan(heads, 0.2)).rejects.toThrow(BudgetError);
    await expect(searchPlan(heads, 0.2, (c) => `density ${c.toFixed(2)}`)).rejects.toThrow(/^density 0.20 is below the cheapest plan of the candidates \(density 0\.\d\d\)$/);
  });
});

function randomRows(seed: number, heads: number, options: number, rows: number): RowsHead[] {
  const rng = new Rng(seed);
  return Array.from({ length: heads }, (_, h) => ({
    site: 0,
    head: h,
    options: Array.from({ length: options }, (_, o) => ({ choice: W(o + 1), costs: Array.from({ length: rows }, () => rng.next()), loss: rng.next() })),
  }));
}

describe('searchRows (a budget row per length, as the advisor at several lengths uses it)', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])('finds the exact optimum of random instance %i under every row', async (seed) => {
    const rows = 2 + (seed % 2);
    const heads = randomRows(seed, 5, 4, rows);
    const limits = Array.from({ length: rows }, (_, r) => {
      const cheapest = heads.reduce((a, h) => a + Math.min(...h.options.map((o) => o.costs[r])), 0);
      return cheapest + (0.25 + 0.15 * r) * (heads.length - cheapest) * ((seed % 3) + 1) / 3;
    });
    const best = bruteForceRows(heads, limits);
    if (best === Infinity) {
      await expect(searchRows(heads, limits)).rejects.toThrow(BudgetError);
      return;
    }
    const r = await searchRows(heads, limits);
    expect(r.status).toBe('Optimal');
    r.costs.forEach((c, i) => expect(c).toBeLessThanOrEqual(limits[i] + 1e-9));
    expect(r.loss).toBeCloseTo(best, 9);
  });

  it('the second row changes the answer where the first alone would overspend it', async () => {
    // Head 0 is cheap at length 1 and dear at length 2 when wide; one row would give it the wide option.
    const heads: RowsHead[] = [
      { site: 0, head: 0, options: [{ choice: W(8), costs: [0.1, 0.1], loss: 1 }, { choice: W(64), costs: [0.4, 0.9], loss: 0 }] },
      { site: 0, head: 1, options: [{ choice: W(8), costs: [0.1, 0.1], loss: 0.5 }, { choice: W(64), costs: [0.5, 0.5], loss: 0 }] },
    ];
    const one = await searchRows(heads.map((h) => ({ ...h, options: h.options.map((o) => ({ ...o, costs: [o.costs[0]] })) })), [0.6]);
    expect(one.picks.map((p) => p.choice)).toEqual([W(64), W(8)]);
    const two = await searchRows(heads, [0.6, 0.6]);
    expect(two.picks.map((p) => p.choice)).toEqual([W(8), W(64)]);
    expect(two.loss).toBeCloseTo(bruteForceRows(heads, [0.6, 0.6]), 12);
    expect(two.costs[1]).toBeLessThanOrEqual(0.6);
  });

  it('refuses rows no one plan meets together, and a row below its cheapest plan', async () => {
    const heads: RowsHead[] = [{ site: 0, head: 0, options: [{ choice: W(8), costs: [0, 1], loss: 1 }, { choice: W(64), costs: [1, 0], loss: 0 }] }];
    await expect(searchRows(heads, [0.5, 0.5])).rejects.toThrow(/no plan of the candidates meets 0.5 and 0.5 at once/);
    await expect(searchRows(heads, [-1, 1])).rejects.toThrow(/^-1 is below the cheapest plan of the candidates \(0\)$/);
  });

  it('one row is searchPlan', async () => {
    const heads = randomHeads(3, 5, 4);
    const a = await searchPlan(heads, 2);
    const b = await searchRows(heads.map((h) => ({ ...h, options: h.options.map((o) => ({ choice: o.choice, costs: [o.cost], loss: o.loss })) })), [2]);
    expect(b.loss).toBe(a.loss);
    expect(b.costs).toEqual([a.cost]);
  });
});

describe('undominated', () => {
  it('keeps only options that no other beats on both cost and loss', () => {
    const kept = undominated([
      { cost: 0.5, loss: 0.2 },
      { cost: 0.3, loss: 0.4 },
      { cost: 0.6, loss: 0.3 }, // beaten by the first
      { cost: 0.1, loss: 0.9 },
      { cost: 1, loss: 0 },
    ]);
    expect(kept.map((k) => k.index)).toEqual([3, 1, 0, 4]);
  });

  it('with several rows keeps an option cheaper in any row', () => {
    const kept = undominatedRows([
      { costs: [0.5, 0.5], loss: 0.2 },
      { costs: [0.4, 0.9], loss: 0.2 }, // cheaper at row 0: kept
      { costs: [0.6, 0.6], loss: 0.3 }, // beaten by the first in both rows
      { costs: [0.5, 0.5], loss: 0.2 }, // the first again: dropped
    ]);
    expect(kept.map((k) => k.index)).toEqual([0, 1]);
  });
});
