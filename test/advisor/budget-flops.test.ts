// The advisor's FLOP figure for a plan is the rewrite report's: for mixed plans (every kind of choice on the heads of
// every site) on a causal grouped-query model and a bidirectional encoder, the advisor's count of the plan's blocked
// realisation (budget-cost.ts through rewriters/plan/realised-cost.ts) equals, site by site, the flopsAfter of the
// report of `plan` with impl `blocked`, and dense attention's equals its flopsBefore.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rewriteModel } from '../../src/rewriters/pipeline';
import type { HeadChoice, HeadPlanFile } from '../../src/rewriters/plan/choices';
import { flopsCost, uniformCost } from '../../src/orchestrate/advisor/budget-cost';
import { planCost } from '../../src/orchestrate/advisor/budget-report';
import { fixture } from '../runtime/helpers';
import { syntheticProfile } from './helpers/synthetic-profile';

const dir = mkdtempSync(join(tmpdir(), 'budget-flops-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Head h of site number n takes choice (h + n) of the list, so each site mixes several kinds. */
function mixedPlan(sites: { site: number; heads: number; choices: HeadChoice[] }[], seq: number): HeadPlanFile {
  return {
    version: 1,
    seq,
    sites: Object.fromEntries(sites.map((s, n) => [s.site, Array.from({ length: s.heads }, (_, h) => s.choices[(h * 3 + n) % s.choices.length])])),
  };
}

describe.each([
  ['bytelm-llama-trained', 128],
  ['bytelm-llama-trained', 200],
  ['bert-eager-ts-op17', 64],
])('%s at %i tokens', (name, seq) => {
  const f = fixture(name);
  const { profile, report } = syntheticProfile(f.model, seq, 1);
  const costs = flopsCost(profile, report);

  it('counts dense attention as the rewrite report does before any rewrite', () => {
    const before = report.sites.filter((s) => profile.sites.some((p) => p.site === s.id)).reduce((a, s) => a + s.flops!, 0);
    expect(costs.denseFlops).toBeCloseTo(before, 0);
    expect(uniformCost(profile, costs, { kind: 'dense' })).toBe(costs.denseFlops);
  });

  it.each([0, 1, 2])('mixed plan %i: the advisor\'s FLOPs are the blocked rewrite\'s flopsAfter, site by site', (shift) => {
    const sites = profile.sites.map((s) => ({ ...s, choices: [...s.choices.slice(shift), ...s.choices.slice(0, shift)] }));
    const plan = mixedPlan(sites, seq);
    const kinds = new Set(Object.values(plan.sites).flat().map((c) => c.kind));
    expect(kinds.size).toBeGreaterThanOrEqual(report.sites[0].causal ? 5 : 3);
    const out = join(dir, `${name}-${seq}-${shift}.onnx`);
    const r = rewriteModel(f.model, [{ rule: 'plan', params: { plan, impl: 'blocked' } }], out, { seqLen: seq, save: { externalData: 'embed' } });
    const changes = r.applied.flatMap((a) => a.changes);
    for (const s of profile.sites) {
      const change = changes.find((c) => c.site === s.site)!;
      // The compute-reducing form was taken (a fallback to the mask form would compute more than the advisor counts).
      expect((change.after as { impl: string }).impl).toBe('blocked');
      const advisor = (plan.sites[s.site] as HeadChoice[]).reduce((a, c, h) => a + costs.cost(s, h, c), 0);
      expect(Math.abs(advisor - change.flopsAfter!)).toBeLessThanOrEqual(1e-9 * change.flopsAfter!);
    }
    const total = changes.reduce((a, c) => a + c.flopsAfter!, 0);
    expect(Math.abs(planCost(profile, costs, plan) - total)).toBeLessThanOrEqual(1e-9 * total);
    expect(costs.inUnit(total, 'share')).toBeCloseTo(total / costs.denseFlops, 12);
  });
});
