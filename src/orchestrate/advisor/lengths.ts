// The advisor at several lengths (issue 10, MoA's elastic spans): the model is profiled at each length on calibration
// windows of that length (from the same gaps between the evaluation windows of every length; calibration.ts), a plan
// is searched at each length under the same density budget, and the plans are made one (span-fit.ts): a head whose
// choices are windows of one kind and different sizes gets a span law a + b·L. That plan is what the candidates'
// calibration scores (their mean over the lengths) choose among and what is scored on each length's evaluation
// windows, beside the original model and the uniform rules at the same densities at each length.
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
import type { Budget } from '../../rewriters/plan/budget';
import {
  type AdviceResult, type AdviseOptions, type AdvisorData, type CandidatePlan, type FrontierPoint, advise, checkCancelled, mixOf, objectiveOf, planOf, samePlan, timeFrontier,
} from './advisor';
import { type CostModel, densityCost } from './budget-cost';
import { AdvisorBudgetError, checkBudgets } from './budget-report';
import { type TokenSplit, splitTokensAt } from './calibration';
import { candidateSet, choiceKeys } from './candidates';
import type { LengthRun, PlanAtLength } from './length-types';
import { LOSS_PROXIES, searchHeads } from './loss';
import { type MeasureContext, type Score, calibrationScore, evaluationScore, planRequest, writeVariant } from './measure';
import { type AdvisorProfile, profileModel } from './profile';
import { searchPlan } from './search';
import { type HeadFit, fitLengths } from './span-fit';
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
  /** The search's plan at each length alone: its density and estimated loss. */
  searched: { density: number; loss: number }[];
}

async function adviseSeveral(client: RuntimeClient, model: string, options: LengthsOptions, data: LengthsData & { seq: number[] }): Promise<AdviceResult> {
  const { signal } = options;
  const seqs = data.seq;
  const budgets = checkBudgets(options.budgets);
  // FLOPs and latency are measured at one length; a plan made one over several lengths is held to a density.
  if (budgets[0].kind !== 'density') throw new AdvisorBudgetError(`a ${budgets[0].kind} budget plans one length; give one --seq (several lengths take a density budget)`);
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
      ...(data.importanceWindows !== undefined ? { importanceWindows: data.importanceWindows } : {}),
      settings: options.settings,
      onProgress: (p) => progress({ ...p, message: `L = ${split.seq}${p.message ? `: ${p.message}` : ''}` }),
      signal,
    }));
  }
  checkCancelled(signal);
  sameHeads(profiles);
  const t1 = performance.now();
  const searched = await searchLengths(profiles, budgets, progress);
  const t2 = performance.now();

  const dir = mkdtempSync(join(tmpdir(), 'attention-lens-advisor-'));
  const contexts: MeasureContext[] = splits.map((split) => ({
    client, model, infos: report.model.inputs, objective: objectiveOf(report, { ...data, seq: split.seq }, split), settings: options.settings, signal, dir,
  }));
  try {
    const validated = await validate(contexts, profiles, searched, budgets, options, progress);
    const t3 = performance.now();
    const speed = options.speed ? await timeFrontier(contexts[contexts.length - 1], validated.frontier, options.speed, data, seqs[seqs.length - 1], progress) : null;
    const t4 = performance.now();
    const last = seqs.length - 1;
    const lengths: LengthRun[] = profiles.map((p, i) => ({
      seq: p.seq, calibration: p.calibration, evalWindows: splits[i].evalStarts.length, dense: validated.dense[i], timings: p.timings,
    }));
    return {
      model,
      seq: seqs[last],
      budget: { kind: 'density', unit: 'share', description: `density ≤ ${budgets[0].value}` },
      objective: describeLengths(data.file, splits),
      profile: profiles[last],
      dense: validated.dense[last],
      frontier: validated.frontier,
      baselines: validated.baselines,
      latencyModel: null,
      speed,
      timings: { profileMs: t1 - t0, searchMs: t2 - t1, validateMs: t3 - t2, ...(speed ? { speedMs: t4 - t3 } : {}) },
      warnings: [...profiles.flatMap((p) => p.warnings.map((w) => `L = ${p.seq}: ${w}`)), ...overBudget(validated.frontier), ...(speed?.warnings ?? [])],
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

/** Per budget and loss estimate: a plan searched at each length, made one; a plan another estimate already gave is dropped. */
async function searchLengths(profiles: AdvisorProfile[], densities: Budget[], progress: (p: ProgressEvent) => void): Promise<{ budget: number; plans: Candidate[] }[]> {
  const seqs = profiles.map((p) => p.seq);
  const out: { budget: number; plans: Candidate[] }[] = [];
  const budgets = densities.map((b) => b.value);
  const costs: CostModel[] = profiles.map(densityCost);
  const total = budgets.length * LOSS_PROXIES.length * profiles.length;
  let done = 0;
  for (const budget of budgets) {
    const plans: Candidate[] = [];
    for (const proxy of LOSS_PROXIES) {
      const per: { plan: HeadPlanFile; density: number; loss: number }[] = [];
      for (const [i, profile] of profiles.entries()) {
        progress({ phase: 'search', done: done++, total, message: `density ${budget}, ${proxy.name}, L = ${profile.seq}` });
        // Under the density cost a plan's summed cost is its mean density.
        const r = await searchPlan(searchHeads(profile, proxy, costs[i]), budget, (d) => `density ${Number(d.toPrecision(6))}`);
        per.push({ plan: planOf(profile, r.picks, { kind: 'density', unit: 'share', value: budget }, proxy.name), density: r.cost, loss: r.loss });
      }
      const note = `attention-lens plan: density ≤ ${budget} of dense attention at each of ${seqs.join(', ')} tokens, searched at each and made one ` +
        `(span laws a + b·L by least squares); loss estimate ${proxy.name}; calibration: ${profiles[0].calibration}`;
      const { plan, fits } = fitLengths(seqs, per.map((p) => p.plan), note);
      if (plans.some((p) => samePlan(p.plan, plan))) continue;
      plans.push({ proxy: proxy.name, plan, fits, searched: per.map((p) => ({ density: p.density, loss: p.loss })) });
    }
    out.push({ budget, plans });
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
  contexts: MeasureContext[], profiles: AdvisorProfile[], searched: { budget: number; plans: Candidate[] }[], budgets: Budget[], options: LengthsOptions,
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
    const tried: { c: Candidate; candidate: CandidatePlan; scores: Score[] }[] = [];
    for (const c of s.plans) {
      const scores: Score[] = [];
      for (const [i, ctx] of contexts.entries()) {
        step(`plan at density ${s.budget} (${c.proxy}), ${seqOf(i)} tokens`);
        scores.push(await calibrationScore(ctx, writeVariant(ctx, [planRequest(c.plan)], seqOf(i))));
      }
      const calibration = { metric: scores[0].metric, value: scores.reduce((a, x) => a + x.value, 0) / n };
      const density = planDensity(profiles[last], c.plan);
      tried.push({ c, scores, candidate: { proxy: c.proxy, density, cost: density, estimatedLoss: c.searched[last].loss, calibration } });
    }
    const best = tried.reduce((a, b) => (b.candidate.calibration.value < a.candidate.calibration.value ? b : a));
    const evaluations: Score[] = [];
    for (const [i, ctx] of contexts.entries()) {
      step(`plan at density ${s.budget}: evaluation at ${seqOf(i)} tokens`);
      evaluations.push(await evaluationScore(ctx, writeVariant(ctx, [planRequest(best.c.plan)], seqOf(i))));
    }
    const lengths: PlanAtLength[] = profiles.map((p, i) => ({
      seq: p.seq, density: planDensity(p, best.c.plan), searchedDensity: best.c.searched[i].density, calibration: best.scores[i], evaluation: evaluations[i],
    }));
    frontier.push({
      budget: s.budget, plan: best.c.plan, density: lengths[last].density, cost: lengths[last].density, chosen: best.candidate, candidates: tried.map((t) => t.candidate),
      evaluation: evaluations[last], mix: mixOf(best.c.plan), lengths, fits: best.c.fits,
    });
  }
  const baselines: UniformBaseline[] = [];
  if (options.baselines !== false) {
    for (const [i, ctx] of contexts.entries()) {
      const measured = await uniformBaselines(ctx, profiles[i], budgets, families[i], densityCost(profiles[i]), seqOf(i), (m) => step(`${m}, ${seqOf(i)} tokens`));
      baselines.push(...measured.map((b) => ({ ...b, seq: seqOf(i) })));
    }
  }
  progress({ phase: 'validate', done: steps, total: steps });
  return { dense, frontier, baselines };
}

/**
 * The lengths where a plan made one is denser than its budget: a head whose choices differ in kind keeps the longest
 * length's choice, and a fixed window costs more of a shorter length.
 */
function overBudget(frontier: FrontierPoint[]): string[] {
  return frontier.flatMap((f) => (f.lengths ?? []).filter((l) => l.density > f.budget + 1e-9).map((l) => {
    const kept = (f.fits ?? []).filter((h) => !h.exact);
    return `density ${f.budget}: at ${l.seq} tokens the plan's density is ${l.density.toFixed(4)}, over the budget ` +
      `(${kept.length} head(s) do not give back every length's choice: ${kept.slice(0, 4).map((h) => `site ${h.site} head ${h.head} ${h.planned}`).join(', ')}${kept.length > 4 ? ', ...' : ''})`;
  }));
}

function describeLengths(file: string, splits: TokenSplit[]): string {
  const seqs = splits.map((s) => s.seq);
  return `bits per token on ${file}: ${splits[0].evalStarts.length} evaluation windows at each of ${seqs.join(', ')} tokens (eval's definition); ` +
    `candidate plans chosen on the calibration windows (mean over the lengths); the plan's score is given at each length, the one above at ${seqs[seqs.length - 1]}`;
}
