// The advisor at several lengths (issue 10, MoA's elastic spans): the model is profiled at each length on calibration
// windows of that length (from the same gaps between the evaluation windows of every length; calibration.ts), and ONE
// integer program over all the lengths (joint.ts) chooses each head's option (span laws a + b·L and length-independent
// choices) to minimise the mean estimated loss over the lengths, under one budget row per length: the plan meets the
// budget (density, or FLOPs as a share of dense attention) at every profiled length by construction. That plan is what
// the candidates' calibration scores (their mean over the lengths) choose among and what is scored on each length's
// evaluation windows, beside the original model and the uniform rules at the same budgets at each length.
// With one length this is `advise` itself, with the same result.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeModel } from '../../analysis/analyze';
import type { HeadPlanFile } from '../../rewriters/plan/choices';
import { resolveChoice } from '../../rewriters/plan/span';
import type { RuntimeClient } from '../../runtime/client';
import { loadTokenFile } from '../../runtime/measure/task-score';
import type { ProgressEvent } from '../../runtime/protocol';
import { type Budget, describeBudget, formatBudgetValue } from '../../rewriters/plan/budget';
import {
  type AdviceResult, type AdviseOptions, type AdvisorData, type CandidatePlan, type FrontierPoint, advise, checkCancelled, mixOf, objectiveOf, planOf, samePlan, timeFrontier,
} from './advisor';
import { type CostModel, densityCost, flopsCost } from './budget-cost';
import { AdvisorBudgetError, checkBudgets, planCost } from './budget-report';
import { type TokenSplit, splitTokensAt } from './calibration';
import { candidateSet, choiceKeys } from './candidates';
import { type HeadFit, jointExtras, jointPlan, searchJoint } from './joint';
import type { LengthRun, PlanAtLength } from './length-types';
import { LOSS_PROXIES } from './loss';
import { type MeasureContext, type Score, calibrationScore, evaluationScore, planRequest, writeVariant } from './measure';
import { type AdvisorProfile, profileModel } from './profile';
import { BudgetError } from './search';
import { type UniformBaseline, uniformBaselines } from './uniform';

/** Token data at one or several lengths (`seq`: the list; the CLI's --seq 256,512). */
export type LengthsData = Omit<Extract<AdvisorData, { kind: 'tokens' }>, 'seq'> & { seq: number | number[] };

export type LengthsOptions = Omit<AdviseOptions, 'data'> & { data: LengthsData | Extract<AdvisorData, { kind: 'inputs' }> };

export async function adviseLengths(client: RuntimeClient, model: string, options: LengthsOptions): Promise<AdviceResult> {
  const { data } = options;
  if (data.kind === 'inputs') return advise(client, model, { ...options, data });
  const seqs = [...new Set(Array.isArray(data.seq) ? data.seq : [data.seq])].sort((a, b) => a - b);
  for (const L of seqs) if (!(Number.isSafeInteger(L) && L >= 2)) throw new RangeError(`length ${L} must be a whole number >= 2`);
  if (seqs.length === 0) throw new RangeError('no length given');
  if (seqs.length === 1) return advise(client, model, { ...options, data: { ...data, seq: seqs[0] } });
  return adviseSeveral(client, model, options, { ...data, seq: seqs });
}

interface Candidate {
  proxy: string;
  plan: HeadPlanFile;
  fits: HeadFit[];
  /** The joint search's mean estimated loss over the lengths. */
  loss: number;
}

async function adviseSeveral(client: RuntimeClient, model: string, options: LengthsOptions, data: LengthsData & { seq: number[] }): Promise<AdviceResult> {
  const { signal } = options;
  const seqs = data.seq;
  const budgets = checkBudgets(options.budgets);
  // Latency is measured at one length; a share of dense attention's density or FLOPs holds at each length, a FLOP count is one length's.
  if (budgets[0].kind === 'latency') throw new AdvisorBudgetError('a latency budget plans one length; give one --seq (several lengths take a density or a FLOP budget)');
  if (budgets[0].unit === 'flops') throw new AdvisorBudgetError('a FLOP count is the budget of one length; with several lengths give FLOPs as a share of dense attention (e.g. flops=0.25), which holds at each');
  const report = analyzeModel(model);
  const splits = splitTokensAt(loadTokenFile(data.file), seqs, data.evalWindows, data.calibrationWindows);
  const progress = options.onProgress ?? (() => undefined);

  const t0 = performance.now();
  const profiles: AdvisorProfile[] = [];
  for (const split of splits) {
    checkCancelled(signal);
    profiles.push(await profileModel(client, model, {
      source: { kind: 'tokens', split },
      candidates: options.candidates,
      extraChoices: jointExtras(seqs, options.candidates),
      ...(data.importanceWindows !== undefined ? { importanceWindows: data.importanceWindows } : {}),
      settings: options.settings,
      onProgress: (p) => progress({ ...p, message: `L = ${split.seq}${p.message ? `: ${p.message}` : ''}` }),
      signal,
    }));
  }
  checkCancelled(signal);
  sameHeads(profiles);
  const t1 = performance.now();
  const costs = profiles.map((p) => (budgets[0].kind === 'flops' ? flopsCost(p, report) : densityCost(p)));
  const warnings: string[] = [];
  const searched = await searchLengths(profiles, budgets, costs, progress, warnings);
  const t2 = performance.now();

  const dir = mkdtempSync(join(tmpdir(), 'attention-lens-advisor-'));
  const contexts: MeasureContext[] = splits.map((split) => ({
    client, model, infos: report.model.inputs, objective: objectiveOf(report, { ...data, seq: split.seq }, split), settings: options.settings, signal, dir,
  }));
  try {
    const validated = await validate(contexts, profiles, costs, searched, budgets, options, progress);
    const t3 = performance.now();
    // The uniform rules timed are those measured at the longest length, where the plans are timed.
    const longest = validated.baselines.filter((b) => b.seq === seqs[seqs.length - 1]);
    const speed = options.speed
      ? await timeFrontier(contexts[contexts.length - 1], validated.frontier, options.speed, data, seqs[seqs.length - 1], progress, budgets[0], longest)
      : null;
    const t4 = performance.now();
    const last = seqs.length - 1;
    const lengths: LengthRun[] = profiles.map((p, i) => ({
      seq: p.seq, calibration: p.calibration, evalWindows: splits[i].evalStarts.length, dense: validated.dense[i], timings: p.timings,
    }));
    return {
      model,
      seq: seqs[last],
      budget: { kind: budgets[0].kind, unit: budgets[0].unit, description: `${describeBudget(budgets[0])} at each of ${seqs.join(', ')} tokens` },
      objective: describeLengths(data.file, splits),
      profile: profiles[last],
      dense: validated.dense[last],
      frontier: validated.frontier,
      baselines: validated.baselines,
      latencyModel: null,
      speed,
      timings: { profileMs: t1 - t0, searchMs: t2 - t1, validateMs: t3 - t2, ...(speed ? { speedMs: t4 - t3 } : {}) },
      warnings: [...profiles.flatMap((p) => p.warnings.map((w) => `L = ${p.seq}: ${w}`)), ...warnings, ...(speed?.warnings ?? [])],
      lengths,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The profiles must plan the same sites with the same heads at every length (they are one model). */
function sameHeads(profiles: AdvisorProfile[]): void {
  const key = (p: AdvisorProfile) => p.sites.map((s) => `${s.site}:${s.heads}`).join(',');
  const first = key(profiles[0]);
  const other = profiles.find((p) => key(p) !== first);
  if (other) throw new Error(`the sites profiled at ${profiles[0].seq} tokens (${first}) differ from those at ${other.seq} (${key(other)}); plan one length at a time`);
}

/**
 * Per budget and loss estimate: the joint plan over every length; a plan another estimate already gave is dropped. A
 * frontier budget no plan meets at every length is left out with a warning (the first budget's refusal is the error).
 */
async function searchLengths(
  profiles: AdvisorProfile[], budgets: Budget[], costs: CostModel[], progress: (p: ProgressEvent) => void, warnings: string[],
): Promise<{ budget: Budget; plans: Candidate[] }[]> {
  const seqs = profiles.map((p) => p.seq);
  const out: { budget: Budget; plans: Candidate[] }[] = [];
  const total = budgets.length * LOSS_PROXIES.length;
  let done = 0;
  for (const [b, budget] of budgets.entries()) {
    const plans: Candidate[] = [];
    const limits = costs.map((c) => c.limit(budget));
    const words = (row: number) => (sum: number) => `${budget.kind} ${formatBudgetValue({ ...budget, value: costs[row].inUnit(sum, budget.unit) })} at ${seqs[row]} tokens`;
    for (const proxy of LOSS_PROXIES) {
      progress({ phase: 'search', done: done++, total, message: `${describeBudget(budget)} at each of ${seqs.join(', ')}, ${proxy.name}` });
      let r: Awaited<ReturnType<typeof searchJoint>>;
      try {
        r = await searchJoint(profiles, proxy, costs, limits, words);
      } catch (e) {
        if (!(e instanceof BudgetError) || b === 0) throw e;
        warnings.push(`frontier budget ${describeBudget(budget)} left out: ${e.message}`);
        break;
      }
      const note = `attention-lens plan: ${describeBudget(budget)}${budget.kind === 'density' ? ' of dense attention' : ''} at each of ${seqs.join(', ')} tokens, ` +
        `one integer program over the lengths (span laws a + b·L); loss estimate ${proxy.name} (mean over the lengths); calibration: ${profiles[0].calibration}`;
      const { plan, fits } = jointPlan(seqs, r, note);
      if (plans.some((p) => samePlan(p.plan, plan))) continue;
      plans.push({ proxy: proxy.name, plan, fits, loss: r.loss });
    }
    if (plans.length) out.push({ budget, plans });
  }
  return out;
}

/** Mean density over the profile's heads of `plan` at the profile's length (its laws resolved there). */
export function planDensity(profile: AdvisorProfile, plan: HeadPlanFile): number {
  let sum = 0;
  let heads = 0;
  for (const s of profile.sites) {
    const choices = plan.sites[s.site];
    for (let h = 0; h < s.heads; h++) sum += choiceKeys(resolveChoice(choices[h], profile.seq), s.causal, profile.seq, h, s.heads) / s.denseKeys;
    heads += s.heads;
  }
  return sum / heads;
}

async function validate(
  contexts: MeasureContext[], profiles: AdvisorProfile[], costs: CostModel[], searched: { budget: Budget; plans: Candidate[] }[], budgets: Budget[], options: LengthsOptions,
  progress: (p: ProgressEvent) => void,
): Promise<{ dense: (Score | null)[]; frontier: FrontierPoint[]; baselines: UniformBaseline[] }> {
  const n = contexts.length;
  const last = n - 1;
  const families = profiles.map((p) => candidateSet(p.seq, p.sites[0].causal, options.candidates).families);
  const steps = n * ((options.reference === false ? 0 : 1) + searched.reduce((a, s) => a + s.plans.length + 1, 0)) +
    (options.baselines === false ? 0 : budgets.length * families.reduce((a, f) => a + f.length, 0));
  let done = 0;
  const step = (message: string) => progress({ phase: 'validate', done: done++, total: steps, message });
  const seqOf = (i: number) => profiles[i].seq;
  const dense: (Score | null)[] = [];
  for (const [i, ctx] of contexts.entries()) {
    if (options.reference === false) dense.push(null);
    else {
      step(`the original model at ${seqOf(i)} tokens`);
      dense.push(await evaluationScore(ctx, ctx.model));
    }
  }
  const frontier: FrontierPoint[] = [];
  for (const s of searched) {
    checkCancelled(options.signal);
    const budget = s.budget.value;
    const tried: { c: Candidate; candidate: CandidatePlan; scores: Score[] }[] = [];
    for (const c of s.plans) {
      const scores: Score[] = [];
      for (const [i, ctx] of contexts.entries()) {
        step(`plan at ${describeBudget(s.budget)} (${c.proxy}), ${seqOf(i)} tokens`);
        scores.push(await calibrationScore(ctx, writeVariant(ctx, [planRequest(c.plan)], seqOf(i))));
      }
      const calibration = { metric: scores[0].metric, value: scores.reduce((a, x) => a + x.value, 0) / n };
      const density = planDensity(profiles[last], c.plan);
      const cost = costs[last].inUnit(planCost(profiles[last], costs[last], c.plan), s.budget.unit);
      tried.push({ c, scores, candidate: { proxy: c.proxy, density, cost, estimatedLoss: c.loss, calibration } });
    }
    const best = tried.reduce((a, b) => (b.candidate.calibration.value < a.candidate.calibration.value ? b : a));
    const evaluations: Score[] = [];
    for (const [i, ctx] of contexts.entries()) {
      step(`plan at ${describeBudget(s.budget)}: evaluation at ${seqOf(i)} tokens`);
      evaluations.push(await evaluationScore(ctx, writeVariant(ctx, [planRequest(best.c.plan)], seqOf(i))));
    }
    const lengths: PlanAtLength[] = profiles.map((p, i) => ({
      seq: p.seq, density: planDensity(p, best.c.plan), cost: costs[i].inUnit(planCost(p, costs[i], best.c.plan), s.budget.unit),
      calibration: best.scores[i], evaluation: evaluations[i],
    }));
    assertWithinBudget(s.budget, lengths);
    frontier.push({
      budget, plan: best.c.plan, density: lengths[last].density, cost: lengths[last].cost, chosen: best.candidate, candidates: tried.map((t) => t.candidate),
      evaluation: evaluations[last], mix: mixOf(best.c.plan), lengths, fits: best.c.fits,
    });
  }
  const baselines: UniformBaseline[] = [];
  if (options.baselines !== false) {
    for (const [i, ctx] of contexts.entries()) {
      const measured = await uniformBaselines(ctx, profiles[i], budgets, families[i], costs[i], seqOf(i), (m) => step(`${m}, ${seqOf(i)} tokens`));
      baselines.push(...measured.map((b) => ({ ...b, seq: seqOf(i) })));
    }
  }
  progress({ phase: 'validate', done: steps, total: steps });
  return { dense, frontier, baselines };
}

/**
 * The joint search holds the budget at every length by construction (one row per length); the plan's cost at each,
 * recounted from the plan file with its laws resolved there, is checked again: a plan over it is a bug, not a warning.
 */
export function assertWithinBudget(budget: Budget, lengths: { seq: number; cost: number }[]): void {
  for (const l of lengths) {
    if (l.cost > budget.value * (1 + 1e-6)) throw new Error(`internal: the joint plan for ${describeBudget(budget)} spends ${l.cost} at ${l.seq} tokens, over its budget`);
  }
}

function describeLengths(file: string, splits: TokenSplit[]): string {
  const seqs = splits.map((s) => s.seq);
  return `bits per token on ${file}: ${splits[0].evalStarts.length} evaluation windows at each of ${seqs.join(', ')} tokens (eval's definition); ` +
    `candidate plans chosen on the calibration windows (mean over the lengths); the plan's score is given at each length, the one above at ${seqs[seqs.length - 1]}`;
}
