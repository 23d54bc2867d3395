// The advisor at two lengths on the trained byte model (issue 10, MoA's elastic spans), kept short (32 and 64 tokens,
// a few windows): it profiles at each length, searches ONE plan over both (a budget row per length, span laws a + b·L),
// whose density is within the budget at each length, scores it on each length's evaluation windows, and says which
// lengths it profiled.
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { renderLengths } from '../../src/cli/plan-lengths';
import { adviseLengths, planDensity } from '../../src/orchestrate/advisor/lengths';
import { resolveChoice } from '../../src/rewriters/plan/span';
import type { RuntimeClient } from '../../src/runtime/client';
import { describeHeadChoice, parseHeadPlan, serializeHeadPlan } from '../../src/shared/head-plan';
import { fixture, startClient } from '../runtime/helpers';

let client: RuntimeClient;
let close: () => Promise<void>;
beforeAll(async () => {
  ({ client, close } = await startClient());
});
afterAll(async () => close());

it('plans bytelm-llama-trained at 32 and 64 tokens as one plan with span laws, scored at each length', async () => {
  const f = fixture('bytelm-llama-trained');
  const lengths = [32, 64];
  const r = await adviseLengths(client, f.model, {
    data: { kind: 'tokens', file: join(f.dir, 'eval.bytes'), seq: [64, 32], evalWindows: 4, calibrationWindows: 2, importanceWindows: 1 },
    budgets: [0.3],
    baselines: false,
  });
  expect(r.seq).toBe(64);
  expect(r.lengths!.map((l) => l.seq)).toEqual(lengths);
  expect(r.objective).toContain('at each of 32, 64 tokens');
  expect(r.profile.seq).toBe(64);
  const [point] = r.frontier;
  expect(point.plan.lengths).toEqual(lengths);
  expect(parseHeadPlan(JSON.parse(serializeHeadPlan(point.plan)))).toEqual(point.plan);
  // One record per head of the four sites; the plan holds what each says, and resolves at each length to it.
  expect(point.fits!).toHaveLength(32);
  const laws = point.fits!.filter((h) => h.how === 'law');
  for (const h of point.fits!) {
    const planned = point.plan.sites[h.site][h.head];
    expect(describeHeadChoice(planned)).toBe(h.planned);
    lengths.forEach((L, i) => expect(describeHeadChoice(resolveChoice(planned, L)), `site ${h.site} head ${h.head} at ${L}`).toBe(h.resolved[i]));
    expect(h.how === 'law').toBe(h.resolved[0] !== h.resolved[1]);
  }
  // The budget holds at EVERY length (the joint search has a row per length): the density recounted from the plan
  // file with its laws resolved there. (Searching each length alone and fitting laws gave 0.358 at 32 tokens.)
  expect(point.lengths!.map((l) => l.seq)).toEqual(lengths);
  for (const [i, l] of point.lengths!.entries()) {
    expect(l.density, `density at ${l.seq}`).toBeLessThanOrEqual(0.3 + 1e-9);
    expect(l.cost).toBeCloseTo(l.density, 12);
    expect(l.evaluation.metric).toBe('bits per token');
    expect(l.evaluation.value).toBeGreaterThan(r.lengths![i].dense!.value - 0.05);
    expect(l.evaluation.value).toBeLessThan(8);
  }
  expect(r.warnings.filter((w) => /over the budget/.test(w))).toEqual([]);
  const longest = point.lengths![1];
  expect(point.evaluation).toEqual(longest.evaluation);
  expect(planDensity(r.profile, point.plan)).toBeCloseTo(longest.density, 12);
  // The printed result names the lengths and gives the plan's density, budget spent and score at each.
  const printed = renderLengths(r).join('\n');
  expect(printed).toContain('lengths profiled: 32, 64 tokens');
  expect(printed).toContain(`span laws a + b·L (b ≥ 0, through window ladder points): ${laws.length} heads; ${32 - laws.length} heads the same choice at every length`);
  for (const l of point.lengths!) expect(printed).toMatch(new RegExp(`\\n  ${l.seq} +${l.density.toFixed(4)} +${l.cost.toFixed(4)} +${l.evaluation.value.toFixed(4)} `));
}, 180_000);

it('holds a FLOP budget (a share of dense attention) at each of 32 and 64 tokens', async () => {
  const f = fixture('bytelm-llama-trained');
  const r = await adviseLengths(client, f.model, {
    data: { kind: 'tokens', file: join(f.dir, 'eval.bytes'), seq: [32, 64], evalWindows: 2, calibrationWindows: 1, importanceWindows: 1 },
    budgets: [{ kind: 'flops', unit: 'share', value: 0.6 }],
    baselines: false,
    reference: false,
  });
  expect(r.budget).toEqual(expect.objectContaining({ kind: 'flops', unit: 'share' }));
  expect(r.budget.description).toContain('at each of 32, 64 tokens');
  const [point] = r.frontier;
  for (const l of point.lengths!) {
    expect(l.cost, `FLOPs at ${l.seq}`).toBeLessThanOrEqual(0.6 + 1e-9);
    expect(l.cost).toBeGreaterThan(0);
  }
  expect(point.cost).toBe(point.lengths![1].cost);
  // A FLOP count belongs to one length: refused in one line.
  await expect(adviseLengths(client, f.model, {
    data: { kind: 'tokens', file: join(f.dir, 'eval.bytes'), seq: [32, 64], evalWindows: 2, calibrationWindows: 1 },
    budgets: [{ kind: 'flops', unit: 'flops', value: 1e6 }],
  })).rejects.toThrow(/^a FLOP count is the budget of one length/);
}, 180_000);
