// The advisor's budgets (issue 10) before the search and after it: the budgets of a run checked to be of one kind and
// unit; under a FLOP budget, each frontier plan's count held against the rewrite report of its blocked realisation;
// under a latency budget, each frontier plan's blocked realisation timed against the dense model, its estimate and
// its measured latency side by side, and a warning wherever the measurement does not show the budget met.
import { type Budget, type BudgetKind, type BudgetUnit, describeBudget, describeUnit, formatBudgetValue } from '../../rewriters/plan/budget';
import type { HeadPlanFile } from '../../rewriters/plan/choices';
import { resolveChoice } from '../../rewriters/plan/span';
import type { CostModel } from './budget-cost';
import { type LatencyContext, type LatencyModel, type MeasuredLatency, measurePlans, writeBlocked } from './latency-model';
import type { AdvisorProfile } from './profile';

export interface BudgetReport {
  kind: BudgetKind;
  unit: BudgetUnit;
  /** The first budget in words, e.g. "attention FLOPs ≤ 0.3 of dense". */
  description: string;
}

export class AdvisorBudgetError extends Error {
  readonly userError = true;
}

/** The budgets as Budget records (a number is a density share), all of one kind and unit, each in range. */
export function checkBudgets(budgets: readonly (Budget | number)[]): Budget[] {
  if (budgets.length === 0) throw new AdvisorBudgetError('no budget given');
  const out = budgets.map((b): Budget => (typeof b === 'number' ? { kind: 'density', unit: 'share', value: b } : b));
  for (const b of out) {
    if (!(b.value > 0 && Number.isFinite(b.value)) || (b.unit === 'share' && b.value > 1)) throw new AdvisorBudgetError(`${b.kind} budget ${b.value} must be ${b.unit === 'share' ? 'a share in (0, 1]' : 'positive'}`);
    if (b.kind !== out[0].kind || b.unit !== out[0].unit) throw new AdvisorBudgetError(`every budget of one run must be ${describeUnit(out[0])}; ${describeBudget(b)} is not`);
  }
  return out;
}

/** Summed cost of a plan under a cost model (the plan's sites and heads as the profile numbers them; span laws at its length). */
export function planCost(profile: AdvisorProfile, costs: CostModel, plan: HeadPlanFile): number {
  let sum = 0;
  for (const s of profile.sites) (plan.sites[s.site] ?? []).forEach((c, h) => (sum += costs.cost(s, h, resolveChoice(c, profile.seq))));
  return sum;
}

/**
 * Under a FLOP budget: each frontier plan's blocked realisation written, its rewrite report's attention FLOPs over the
 * planned sites set beside the advisor's count; a difference (a site that could not take its compute-reducing form)
 * is a warning, and the report's figure is the one the point keeps as its cost.
 */
export function checkFlops(
  ctx: Pick<LatencyContext, 'model' | 'dir'>, profile: AdvisorProfile, frontier: { budget: number; plan: HeadPlanFile; cost: number; flops?: { advisor: number; rewriteReport: number | null } }[],
  costs: CostModel, unit: BudgetUnit,
): string[] {
  const warnings: string[] = [];
  for (const f of frontier) {
    const advisor = planCost(profile, costs, f.plan);
    const w = writeBlocked(ctx, f.plan, profile.seq);
    const changes = w.report.applied.flatMap((a) => a.changes).filter((c) => String(c.site) in f.plan.sites);
    const counted = changes.every((c) => c.flopsAfter !== null) ? changes.reduce((a, c) => a + c.flopsAfter!, 0) : null;
    f.flops = { advisor, rewriteReport: counted };
    const at = `the plan at flops ${formatBudgetValue({ kind: 'flops', unit, value: f.budget })}`;
    warnings.push(...w.warnings.map((x) => `${at}: ${x}`));
    if (counted === null) warnings.push(`${at}: the rewrite report could not count the attention FLOPs of every planned site`);
    else if (Math.abs(counted - advisor) > 1e-9 * Math.max(1, advisor)) {
      warnings.push(`${at}: its blocked realisation computes ${counted} attention FLOPs, the advisor counted ${advisor} (a site kept a form that computes more); the point reports the rewrite's count`);
      f.cost = costs.inUnit(counted, unit);
    }
  }
  return warnings;
}

/**
 * Under a latency budget: every frontier plan's blocked realisation timed against the dense model in one interleaved
 * bench run; each point gets its estimate and measurement, and a warning where the measured interval does not lie
 * within the budget (above it, or holding it).
 */
export async function timeLatencyFrontier(
  ctx: LatencyContext, model: LatencyModel,
  frontier: { budget: number; plan: HeadPlanFile; cost: number; latency?: MeasuredLatency }[], budgets: Budget[], seq: number,
): Promise<string[]> {
  const warnings: string[] = [];
  const unit = budgets[0].unit === 'ms' ? 'ms' : 'share';
  const plans = frontier.map((f) => {
    const w = writeBlocked(ctx, f.plan, seq);
    warnings.push(...w.warnings.map((x) => `the plan at latency ${formatBudgetValue({ ...budgets[0], value: f.budget })}: ${x}`));
    // The point's cost is the model's estimate in the budget's unit.
    return { path: w.path, estimateMs: unit === 'ms' ? f.cost : f.cost * model.dense.p50, unit, limit: f.budget } as const;
  });
  const measured = await measurePlans(ctx, plans);
  const dense = measured[0]?.denseMs;
  if (dense && (dense.p50 < model.dense.ci95[0] || dense.p50 > model.dense.ci95[1])) {
    warnings.push(
      `the dense model took ${dense.p50.toFixed(2)} ms when the plans were timed and ${model.dense.p50.toFixed(2)} ms (95% interval ` +
        `${model.dense.ci95[0].toFixed(2)} to ${model.dense.ci95[1].toFixed(2)}) when the latency model was fitted: the machine's speed changed ` +
        'between the two runs, so estimates in ms are off by as much; shares of the dense model, timed in the same run, are the better comparison',
    );
  }
  frontier.forEach((f, i) => {
    const m = measured[i];
    f.latency = m;
    const b = { ...budgets[0], value: f.budget };
    const shown = m.unit === 'ms'
      ? `${m.measuredMs.p50.toFixed(2)} ms (95% interval ${m.measuredMs.ci95[0].toFixed(2)} to ${m.measuredMs.ci95[1].toFixed(2)})`
      : `${m.share.value.toFixed(3)} of the dense model's (95% interval ${m.share.ci95[0].toFixed(3)} to ${m.share.ci95[1].toFixed(3)})`;
    const est = `estimated ${m.estimateMs.toFixed(2)} ms`;
    // A line fitted on a few uniform plans can run below zero far from its points; such an estimate is no estimate.
    if (m.estimateMs <= 0) warnings.push(`the plan at ${describeBudget(b)}: the latency model extrapolates to ${est}, below zero; only the measurement stands`);
    if (m.verdict === 'exceeded') warnings.push(`the plan at ${describeBudget(b)} measured ${shown}, above the budget (${est}): the budget is not met`);
    else if (m.verdict === 'not shown') warnings.push(`the plan at ${describeBudget(b)} measured ${shown}, an interval that holds the budget (${est}): it is not shown to be met`);
    warnings.push(...m.warnings.map((x) => `the plan at ${describeBudget(b)}: ${x}`));
  });
  return warnings;
}
