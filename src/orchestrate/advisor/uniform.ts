// The uniform rules the plans are compared with (issue 10): for each family of the candidate set (window W, sink +
// window W, strided + window W, block-topk with k blocks) the largest parameter whose cost is within the budget (by the
// same cost model as the plans: density, attention FLOPs or modelled latency), applied by the family's own rule to
// every planned site, and measured the same way as the plans.
import type { RuleRequest } from '../../rewriters/pipeline';
import { type HeadChoice, describeHeadChoice } from '../../rewriters/plan/choices';
import { RuleError } from '../../rewriters/rule';
import { type Budget, describeBudget } from '../../rewriters/plan/budget';
import { type CostModel, uniformCost } from './budget-cost';
import { type UniformFamily, choiceKeys } from './candidates';
import { LatencyUnknown } from './latency-model';
import { type MeasureContext, type Score, evaluationScore, writeVariant } from './measure';
import type { AdvisorProfile } from './profile';

export interface UniformBaseline {
  budget: number;
  family: string;
  /** The rule as applied, e.g. "window 60"; null when no parameter of the family fits the budget. */
  rule: string | null;
  density: number | null;
  /** Its cost in the budget's unit (for a density budget, its density). */
  cost: number | null;
  evaluation: Score | null;
  /** Why there is no measurement. */
  reason?: string;
  /** The length it was measured at, when the advisor profiled several (lengths.ts). */
  seq?: number;
  /** The rule request applied (mask form), kept so that the speed step can time the same rule in its fast form. */
  request?: RuleRequest;
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

/**
 * The largest parameter of `family` whose uniform cost is within `budget`, or null. Costs in FLOPs or latency need not
 * grow with the parameter (a blocked window's rows round to blocks), so every value is tried, largest first.
 */
export function fitFamily(profile: AdvisorProfile, family: UniformFamily, budget: Budget, costs: CostModel): { value: number; density: number; cost: number } | null {
  const limit = costs.limit(budget);
  const tolerance = 1e-9 * Math.max(1, Math.abs(limit));
  for (let v = family.max; v >= family.min; v--) {
    const sum = uniformCost(profile, costs, family.at(v));
    if (sum <= limit + tolerance) return { value: v, density: uniformDensity(profile, family.at(v)), cost: costs.inUnit(sum, budget.unit) };
  }
  return null;
}

export function ruleRequest(choice: HeadChoice, sites: number[]): RuleRequest {
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
  budgets: Budget[],
  families: UniformFamily[],
  costs: CostModel,
  seq: number,
  step: (message: string) => void,
): Promise<UniformBaseline[]> {
  const sites = profile.sites.map((s) => s.site);
  const out: UniformBaseline[] = [];
  for (const b of budgets) {
    const budget = b.value;
    for (const family of families) {
      step(`uniform ${family.name} at ${describeBudget(b)}`);
      let fit: ReturnType<typeof fitFamily>;
      try {
        fit = fitFamily(profile, family, b, costs);
      } catch (e) {
        if (!(e instanceof LatencyUnknown)) throw e;
        out.push({ budget, family: family.name, rule: null, density: null, cost: null, evaluation: null, reason: e.message });
        continue;
      }
      if (!fit) {
        out.push({ budget, family: family.name, rule: null, density: null, cost: null, evaluation: null, reason: `its cheapest setting is over ${describeBudget(b)}` });
        continue;
      }
      const choice = family.at(fit.value);
      const request = ruleRequest(choice, sites);
      let variant: string;
      try {
        variant = writeVariant(ctx, [request], seq);
      } catch (e) {
        if (!(e instanceof RuleError)) throw e;
        out.push({ budget, family: family.name, rule: describeHeadChoice(choice), density: fit.density, cost: fit.cost, evaluation: null, reason: e.message });
        continue;
      }
      out.push({ budget, family: family.name, rule: describeHeadChoice(choice), density: fit.density, cost: fit.cost, evaluation: await evaluationScore(ctx, variant), request });
    }
  }
  return out;
}
