// The uniform rules the plans are compared with (issue 10): for each family of the candidate set (window W, sink +
// window W, strided + window W, block-topk with k blocks) the largest parameter whose density is at most the budget,
// applied by the family's own rule to every planned site, and measured the same way as the plans.
import type { RuleRequest } from '../../rewriters/pipeline';
import { type HeadChoice, describeHeadChoice } from '../../rewriters/plan/choices';
import { RuleError } from '../../rewriters/rule';
import { type UniformFamily, choiceKeys } from './candidates';
import { type MeasureContext, type Score, evaluationScore, writeVariant } from './measure';
import type { AdvisorProfile } from './profile';

export interface UniformBaseline {
  budget: number;
  family: string;
  /** The rule as applied, e.g. "window 60"; null when no parameter of the family fits the budget. */
  rule: string | null;
  density: number | null;
  evaluation: Score | null;
  /** Why there is no measurement. */
  reason?: string;
  /** The length it was measured at, when the advisor profiled several (lengths.ts). */
  seq?: number;
}

/** Mean density over the profile's heads when every head takes `choice`. */
export function uniformDensity(profile: AdvisorProfile, choice: HeadChoice): number {
  let sum = 0;
  let heads = 0;
  for (const s of profile.sites) {
    for (let h = 0; h < s.heads; h++) sum += choiceKeys(choice, s.causal, profile.seq, h, s.heads) / s.denseKeys;
    heads += s.heads;
  }
  return sum / heads;
}

/** The largest parameter of `family` whose uniform density is at most `budget`, or null. */
export function fitFamily(profile: AdvisorProfile, family: UniformFamily, budget: number): { value: number; density: number } | null {
  const d = (v: number) => uniformDensity(profile, family.at(v));
  if (d(family.min) > budget) return null;
  let [lo, hi] = [family.min, family.max];
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (d(mid) <= budget) lo = mid;
    else hi = mid - 1;
  }
  return { value: lo, density: d(lo) };
}

function ruleRequest(choice: HeadChoice, sites: number[]): RuleRequest {
  switch (choice.kind) {
    case 'window': return { rule: 'window', params: { window: choice.window }, sites };
    case 'sink': return { rule: 'sink', params: { sink: choice.sink, window: choice.window }, sites };
    case 'strided': return { rule: 'strided', params: { stride: choice.stride, window: choice.window }, sites };
    case 'power': return { rule: 'power', params: { window: choice.window }, sites };
    case 'block-topk': return { rule: 'block-topk', params: { block: choice.block, k: choice.k }, sites };
    default: throw new Error(`no uniform rule for ${describeHeadChoice(choice)}`);
  }
}

export async function uniformBaselines(
  ctx: MeasureContext,
  profile: AdvisorProfile,
  budgets: number[],
  families: UniformFamily[],
  seq: number,
  step: (message: string) => void,
): Promise<UniformBaseline[]> {
  const sites = profile.sites.map((s) => s.site);
  const out: UniformBaseline[] = [];
  for (const budget of budgets) {
    for (const family of families) {
      step(`uniform ${family.name} at density ${budget}`);
      const fit = fitFamily(profile, family, budget);
      if (!fit) {
        out.push({ budget, family: family.name, rule: null, density: null, evaluation: null, reason: `its sparsest setting is denser than ${budget}` });
        continue;
      }
      const choice = family.at(fit.value);
      let variant: string;
      try {
        variant = writeVariant(ctx, [ruleRequest(choice, sites)], seq);
      } catch (e) {
        if (!(e instanceof RuleError)) throw e;
        out.push({ budget, family: family.name, rule: describeHeadChoice(choice), density: fit.density, evaluation: null, reason: e.message });
        continue;
      }
      out.push({ budget, family: family.name, rule: describeHeadChoice(choice), density: fit.density, evaluation: await evaluationScore(ctx, variant) });
    }
  }
  return out;
}
