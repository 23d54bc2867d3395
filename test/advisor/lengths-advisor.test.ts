// The advisor at two lengths on the trained byte model (issue 10, MoA's elastic spans), kept short (32 and 64 tokens,
// a few windows): it profiles and searches at each length, makes one plan whose span laws give back each length's
// choice where they say so, scores that plan on each length's evaluation windows, and says which lengths it profiled.
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { renderLengths } from '../../src/cli/plan-lengths';
import { adviseLengths, planDensity } from '../../src/orchestrate/advisor/lengths';
import { resolveChoice } from '../../src/rewriters/plan/span';
import type { RuntimeClient } from '../../src/runtime/client';
import { describeHeadChoice, parseHeadChoice, parseHeadPlan, serializeHeadPlan } from '../../src/shared/head-plan';
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
  // One fit per head of the four sites; the plan holds what each fit says.
  expect(point.fits!).toHaveLength(32);
  const laws = point.fits!.filter((h) => h.how === 'law');
  expect(laws.length, 'some heads chose windows of different sizes at the two lengths').toBeGreaterThan(0);
  for (const h of point.fits!) {
    const planned = point.plan.sites[h.site][h.head];
    expect(describeHeadChoice(planned)).toBe(h.planned);
    lengths.forEach((L, i) => {
      const got = resolveChoice(planned, L);
      if (!h.exact) return;
      // A law gives back dense as a window of L keys (which sees every key).
      if (h.searched[i] === 'dense' && 'window' in got) expect(got.window, `site ${h.site} head ${h.head} at ${L}`).toBe(L);
      else expect(describeHeadChoice(got), `site ${h.site} head ${h.head} at ${L}`).toBe(h.searched[i]);
    });
    if (h.how === 'law') {
      // With two lengths the least-squares line goes through both points, unless that would shrink the span.
      const [w32, w64] = h.searched.map((s, i) => {
        const c = parseHeadChoice(s);
        return 'window' in c ? (c.window as number) : lengths[i];
      });
      expect(h.exact, `site ${h.site} head ${h.head}: ${h.searched.join(' → ')}`).toBe(w64 >= w32);
    }
    if (h.how === 'longest') expect(describeHeadChoice(resolveChoice(planned, 64))).toBe(h.searched[1]);
    if (h.how === 'law' && !h.exact) expect(h.maxError).toBeGreaterThan(0);
  }
  // At each length: the plan's density with its laws resolved there, its score on that length's evaluation windows.
  expect(point.lengths!.map((l) => l.seq)).toEqual(lengths);
  for (const [i, l] of point.lengths!.entries()) {
    expect(l.evaluation.metric).toBe('bits per token');
    expect(l.evaluation.value).toBeGreaterThan(r.lengths![i].dense!.value - 0.05);
    expect(l.evaluation.value).toBeLessThan(8);
    expect(l.searchedDensity).toBeLessThanOrEqual(0.3 + 1e-9);
  }
  const longest = point.lengths![1];
  expect(point.evaluation).toEqual(longest.evaluation);
  expect(planDensity(r.profile, point.plan)).toBeCloseTo(longest.density, 12);
  // The printed result names the lengths and gives the plan's density and score at each.
  const printed = renderLengths(r).join('\n');
  expect(printed).toContain('lengths profiled: 32, 64 tokens');
  expect(printed).toMatch(new RegExp(`span laws a \\+ b·L \\(least squares over the lengths, b ≥ 0\\): ${laws.length} heads, ${laws.filter((h) => h.exact).length} of them`));
  for (const l of point.lengths!) expect(printed).toMatch(new RegExp(`\\n  ${l.seq} +${l.density.toFixed(4)} +${l.searchedDensity.toFixed(4)} +${l.evaluation.value.toFixed(4)} `));
  // At the longest length every head resolves to the choice searched there unless its law misses: the densities agree.
  if (point.fits!.every((h) => h.exact || h.how === 'longest')) expect(longest.density).toBeCloseTo(longest.searchedDensity, 12);
}, 180_000);
