// What each option of each head spends of a budget (issue 10), for the one integer program of search.ts, the uniform
// baselines at the same budget (uniform.ts) and the figure reported for a plan. One cost model per budget kind:
// - density: the head's mean visible keys per query relative to dense attention, over the number of planned heads
//   (so the sum is the plan's mean density), against the share D;
// - flops: the head's attention FLOPs in the plan's compute-reducing realisation (rewriters/plan/realised-cost.ts,
//   the rewrite report's count), against F times dense attention's FLOPs of the planned sites, or a count;
// - latency: the head's cost in the fitted latency model (latency-model.ts), relative to a dense head, against the
//   budget less the dense model's measured time.
import type { AnalysisReport } from '../../analysis/report/types';
import { type Budget, type BudgetKind, type BudgetUnit, describeUnit } from '../../rewriters/plan/budget';
import type { HeadChoice } from '../../rewriters/plan/choices';
import { realisedHeadFlops } from '../../rewriters/plan/realised-cost';
import { choiceKeys } from './candidates';
import { type LatencyModel, perGroupMs, predictDeltaMs } from './latency-model';
import type { AdvisorProfile, SiteProfile } from './profile';

export interface CostModel {
  kind: BudgetKind;
  /** What head `head` of `site` spends under `choice` (summed over heads, it is compared with `limit`). */
  cost(site: SiteProfile, head: number, choice: HeadChoice): number;
  /** The limit on the summed cost for a budget of this kind. */
  limit(b: Budget): number;
  /** A summed cost in a budget's unit: the figure a plan is reported with against its budget. */
  inUnit(sum: number, unit: BudgetUnit): number;
  /** What each head group of a site beyond its first costs (latency: the measured split overhead); absent: nothing. */
  perGroup?(site: SiteProfile): number;
}

export class BudgetKindError extends Error {
  readonly userError = true;
}

function wrongUnit(kind: BudgetKind, unit: BudgetUnit): never {
  throw new BudgetKindError(`a ${kind} budget cannot be given as ${describeUnit({ kind, unit })}`);
}

export function densityCost(profile: AdvisorProfile): CostModel {
  const heads = profile.sites.reduce((a, s) => a + s.heads, 0);
  return {
    kind: 'density',
    cost: (s, h, c) => choiceKeys(c, s.causal, profile.seq, h, s.heads) / s.denseKeys / heads,
    limit: (b) => (b.unit === 'share' ? b.value : wrongUnit('density', b.unit)),
    inUnit: (sum, unit) => (unit === 'share' ? sum : wrongUnit('density', unit)),
  };
}

/** Head size of each planned site, from the analysis (a FLOP count needs it). */
function headDims(profile: AdvisorProfile, report: AnalysisReport): Map<number, number> {
  const dims = new Map<number, number>();
  for (const s of profile.sites) {
    const d = report.sites.find((x) => x.id === s.site)?.headDim;
    if (!d) throw new BudgetKindError(`site ${s.site}: the analysis could not read its head size, so its attention FLOPs cannot be counted; use a density budget`);
    dims.set(s.site, d);
  }
  return dims;
}

export interface FlopsCostModel extends CostModel {
  /** Dense attention's FLOPs over the planned sites at the profiled length (what a share is of). */
  denseFlops: number;
}

export function flopsCost(profile: AdvisorProfile, report: AnalysisReport): FlopsCostModel {
  const dims = headDims(profile, report);
  const flops = (s: SiteProfile, c: HeadChoice) => realisedHeadFlops(c, profile.seq, s.causal, dims.get(s.site)!);
  const denseFlops = profile.sites.reduce((a, s) => a + s.heads * flops(s, { kind: 'dense' }), 0);
  return {
    kind: 'flops',
    denseFlops,
    cost: (s, _h, c) => flops(s, c),
    limit: (b) => (b.unit === 'share' ? b.value * denseFlops : b.unit === 'flops' ? b.value : wrongUnit('flops', b.unit)),
    inUnit: (sum, unit) => (unit === 'share' ? sum / denseFlops : unit === 'flops' ? sum : wrongUnit('flops', unit)),
  };
}

export function latencyCost(profile: AdvisorProfile, model: LatencyModel): CostModel {
  const dense = model.dense.p50;
  return {
    kind: 'latency',
    cost: (s, _h, c) => predictDeltaMs(model, s.site, c),
    perGroup: () => perGroupMs(model),
    limit: (b) => (b.unit === 'share' ? b.value * dense - dense : b.unit === 'ms' ? b.value - dense : wrongUnit('latency', b.unit)),
    inUnit: (sum, unit) => (unit === 'share' ? (dense + sum) / dense : unit === 'ms' ? dense + sum : wrongUnit('latency', unit)),
  };
}

/** The summed cost when every head of every planned site takes `choice`. */
export function uniformCost(profile: AdvisorProfile, costs: CostModel, choice: HeadChoice): number {
  let sum = 0;
  for (const s of profile.sites) for (let h = 0; h < s.heads; h++) sum += costs.cost(s, h, choice);
  return sum;
}
