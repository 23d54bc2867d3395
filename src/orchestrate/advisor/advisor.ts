// The advisor (issue 10): profile a model on calibration data, search a per-head plan for each budget (density,
// attention FLOPs or latency: budget-cost.ts), and check the plans by running the model, beside the uniform rules of
// the candidate set at the same budgets, measured the same way; under a latency budget, time the plans too. One entry
// point, `advise`, for the CLI (`attention-lens plan`) and the extension's Advisor tab: progress through a callback,
// cancellation through an AbortSignal, a JSON-safe result.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeModel } from '../../analysis/analyze';
import type { AnalysisReport } from '../../analysis/report/types';
import { rewriteModel } from '../../rewriters/pipeline';
import { type Budget, describeBudget, formatBudgetValue } from '../../rewriters/plan/budget';
import { type HeadChoice, type HeadPlanFile, describeHeadChoice } from '../../rewriters/plan/choices';
import type { RuntimeClient } from '../../runtime/client';
import type { ProgressEvent, SessionSettings } from '../../runtime/protocol';
import { type CostModel, densityCost, flopsCost, latencyCost } from './budget-cost';
import { checkBudgets, checkFlops, timeLatencyFrontier, type BudgetReport } from './budget-report';
import { loadTokenSplit } from './calibration';
import { type CandidateOptions, candidateSet } from './candidates';
import { LOSS_PROXIES, searchHeads } from './loss';
import { type MeasureContext, type Objective, type Score, calibrationScore, evaluationScore, planRequest, writeVariant } from './measure';
import { calibrateLatency, type LatencyContext, type LatencyModel, type MeasuredLatency } from './latency-model';
import { type AdvisorProfile, profileModel } from './profile';
import type { LengthRun, PlanAtLength } from './length-types';
import { BudgetError, type SearchResult, searchPlan } from './search';
import type { HeadFit } from './joint';
import { type PlanSpeed, type SpeedOptions, type SpeedReport, timePlans } from './speed';
import { type UniformBaseline, uniformBaselines } from './uniform';

export type AdvisorData =
  | { kind: 'tokens'; file: string; seq: number; evalWindows: number; calibrationWindows: number; importanceWindows?: number }
  | { kind: 'inputs'; file: string };

export interface AdviseOptions {
  data: AdvisorData;
  /**
   * Budgets of one kind and unit (a bare number is a density); the first is the plan returned, all form the frontier.
   */
  budgets: (Budget | number)[];
  /** Timed rounds of each latency bench run (a latency budget only); default 20. */
  latencyRuns?: number;
  /** Measure the uniform rules at the same densities (default true). */
  baselines?: boolean;
  /** Measure the unmodified model on the evaluation data too (default true). */
  reference?: boolean;
  candidates?: CandidateOptions;
  /** Time each frontier plan's blocked form against the best dense baseline (speed.ts); default: not timed. */
  speed?: SpeedOptions;
  settings?: SessionSettings;
  onProgress?: (p: ProgressEvent) => void;
  signal?: AbortSignal;
}

export interface CandidatePlan {
  proxy: string;
  density: number;
  /** What the plan spends, in the budget's unit (for a density budget, its density; for latency, the model's estimate). */
  cost: number;
  estimatedLoss: number;
  /** Score on the calibration data, which chose among the candidates. */
  calibration: Score;
}

export interface FrontierPoint {
  /** The budget's value, in the unit of `AdviceResult.budget`. */
  budget: number;
  plan: HeadPlanFile;
  density: number;
  /** What the plan spends, in the budget's unit (for latency, the model's estimate; `latency` holds the measurement). */
  cost: number;
  /** Under a FLOP budget: the advisor's count and the rewrite report's for the plan's blocked realisation. */
  flops?: { advisor: number; rewriteReport: number | null };
  /** Under a latency budget: the plan's blocked realisation timed against the dense model. */
  latency?: MeasuredLatency;
  /** The candidate kept (lowest calibration score) and all candidates tried. */
  chosen: CandidatePlan;
  candidates: CandidatePlan[];
  /** The score on the evaluation data. */
  evaluation: Score;
  /** Choices counted over all heads, e.g. { "window 64": 20, "dense": 2 }. */
  mix: Record<string, number>;
  /** Several lengths (lengths.ts): the plan at each profiled length; the fields above are at the longest. */
  lengths?: PlanAtLength[];
  /** Several lengths: each head's choice at every length (a span law, or the same choice at each). */
  fits?: HeadFit[];
  /** The plan's blocked form timed against the dense models (with `speed`). */
  speed?: PlanSpeed;
}

export interface AdviceResult {
  model: string;
  seq: number;
  /** The kind and unit of every budget of the run. */
  budget: BudgetReport;
  /** How the score is measured and on what data. */
  objective: string;
  profile: AdvisorProfile;
  /** The unmodified model's score on the evaluation data (null when not asked for). */
  dense: Score | null;
  frontier: FrontierPoint[];
  baselines: UniformBaseline[];
  /** Under a latency budget: the fitted model the search used (null otherwise). */
  latencyModel: LatencyModel | null;
  /** The speed step's reference models and settings (null without `speed`); each frontier point holds its own row. */
  speed: SpeedReport | null;
  timings: { profileMs: number; searchMs: number; validateMs: number; latencyMs?: number; speedMs?: number };
  warnings: string[];
  /** Several lengths (lengths.ts): each length profiled, ascending; `seq`, `profile` and `dense` are the longest's. */
  lengths?: LengthRun[];
}

export class AdvisorCancelled extends Error {
  readonly userError = true;
  constructor() {
    super('the advisor was cancelled');
  }
}

export function checkCancelled(signal?: AbortSignal): void {
  if (signal?.aborted) throw new AdvisorCancelled();
}

export async function advise(client: RuntimeClient, model: string, options: AdviseOptions): Promise<AdviceResult> {
  const { data, signal } = options;
  const budgets = checkBudgets(options.budgets);
  const report = analyzeModel(model);
  const split = data.kind === 'tokens' ? loadTokenSplit(data.file, data.seq, data.evalWindows, data.calibrationWindows) : undefined;
  const progress = options.onProgress ?? (() => undefined);

  const t0 = performance.now();
  const profile = await profileModel(client, model, {
    source: split ? { kind: 'tokens', split } : { kind: 'inputs', file: (data as { file: string }).file },
    // FLOP and latency budgets are counted on the blocked realisation: add the windows that use the keys its blocks pay for.
    candidates: budgets[0].kind === 'density' ? options.candidates : { ...options.candidates, blockAligned: true },
    ...(data.kind === 'tokens' && data.importanceWindows !== undefined ? { importanceWindows: data.importanceWindows } : {}),
    settings: options.settings,
    onProgress: progress,
    signal,
  });
  checkCancelled(signal);
  const seq = profile.seq;
  const dir = mkdtempSync(join(tmpdir(), 'attention-lens-advisor-'));
  try {
    const t1 = performance.now();
    const latency: LatencyContext = { client, model, report, settings: options.settings, signal, dir, inputs: data.kind === 'tokens' ? { seq } : { file: data.file }, runs: options.latencyRuns ?? 20, onProgress: progress };
    const latencyModel = budgets[0].kind === 'latency' ? await calibrateLatency(latency, profile) : null;
    checkCancelled(signal);
    const costs: CostModel = budgets[0].kind === 'density' ? densityCost(profile) : budgets[0].kind === 'flops' ? flopsCost(profile, report) : latencyCost(profile, latencyModel!);
    const t1b = performance.now();
    const searchWarnings: string[] = [];
    const searched = await searchAll(profile, budgets, costs, progress, searchWarnings);
    // A frontier budget no plan of the candidates fits is left out (the first, the plan asked for, is an error).
    budgets.splice(0, budgets.length, ...searched.map((s) => s.budget));
    const t2 = performance.now();

    const objective = objectiveOf(report, data, split);
    const ctx: MeasureContext = { client, model, infos: report.model.inputs, objective, settings: options.settings, signal, dir };
    const steps = (options.reference === false ? 0 : 1) + searched.reduce((a, s) => a + s.plans.length + 1, 0) + (options.baselines === false ? 0 : budgets.length * candidateFamilies(profile, options).length);
    let done = 0;
    const step = (message: string) => progress({ phase: 'validate', done: done++, total: steps, message });
    let dense: Score | null = null;
    if (options.reference !== false) {
      step('the original model');
      dense = await evaluationScore(ctx, model);
    }
    const frontier: FrontierPoint[] = [];
    for (const s of searched) {
      checkCancelled(signal);
      const tried: { plan: HeadPlanFile; candidate: CandidatePlan }[] = [];
      for (const p of s.plans) {
        step(`plan at ${describeBudget(s.budget)} (${p.proxy})`);
        const variant = writeVariant(ctx, [planRequest(p.plan)], seq);
        tried.push({ plan: p.plan, candidate: { proxy: p.proxy, density: p.density, cost: p.cost, estimatedLoss: p.loss, calibration: await calibrationScore(ctx, variant) } });
      }
      const best = tried.reduce((a, b) => (b.candidate.calibration.value < a.candidate.calibration.value ? b : a));
      step(`plan at ${describeBudget(s.budget)}: evaluation`);
      const evaluation = await evaluationScore(ctx, writeVariant(ctx, [planRequest(best.plan)], seq));
      frontier.push({ budget: s.budget.value, plan: best.plan, density: best.candidate.density, cost: best.candidate.cost, chosen: best.candidate, candidates: tried.map((t) => t.candidate), evaluation, mix: mixOf(best.plan) });
    }
    const baselines = options.baselines === false ? [] : await uniformBaselines(ctx, profile, budgets, candidateFamilies(profile, options), costs, seq, (m) => step(m));
    progress({ phase: 'validate', done: steps, total: steps });
    const t3 = performance.now();
    const warnings = [...profile.warnings, ...(latencyModel?.warnings ?? []), ...searchWarnings];
    if (budgets[0].kind === 'flops') warnings.push(...checkFlops(latency, profile, frontier, costs, budgets[0].unit));
    if (latencyModel) warnings.push(...(await timeLatencyFrontier(latency, latencyModel, frontier, budgets, seq)));
    const t3b = performance.now();
    const speed = options.speed ? await timeFrontier(ctx, frontier, options.speed, data, seq, progress, budgets[0], baselines) : null;
    const t4 = performance.now();
    return {
      model,
      seq,
      budget: { kind: budgets[0].kind, unit: budgets[0].unit, description: describeBudget(budgets[0]) },
      objective: describeObjective(objective),
      profile,
      dense,
      frontier,
      baselines,
      latencyModel,
      speed,
      timings: {
        profileMs: t1 - t0, searchMs: t2 - t1b, validateMs: t3 - t2,
        ...(latencyModel ? { latencyMs: t1b - t1 + (t3b - t3) } : {}), ...(speed ? { speedMs: t4 - t3b } : {}),
      },
      warnings: [...warnings, ...(speed?.warnings ?? [])],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The speed step (speed.ts): every frontier plan's blocked form in one bench run, with the uniform rules measured at
 * the same budgets (`baselines`, unless `speed.uniform` is false); each point gets its row.
 */
export async function timeFrontier(
  ctx: MeasureContext, frontier: FrontierPoint[], speed: SpeedOptions, data: { kind: AdvisorData['kind']; file: string }, seq: number, progress: (p: ProgressEvent) => void,
  unit: Pick<Budget, 'kind' | 'unit'> = { kind: 'density', unit: 'share' }, baselines: UniformBaseline[] = [],
): Promise<SpeedReport> {
  const uniform = speed.uniform === false ? [] : baselines.flatMap((b) =>
    b.request && b.rule && b.evaluation ? [{ budget: { ...unit, value: b.budget }, family: b.family, rule: b.rule, request: b.request }] : []);
  const r = await timePlans(
    { client: ctx.client, model: ctx.model, settings: ctx.settings, signal: ctx.signal, checkCancelled: () => checkCancelled(ctx.signal), dir: ctx.dir, onProgress: progress },
    frontier.map((f) => ({ budget: { ...unit, value: f.budget }, plan: f.plan })),
    speed,
    data.kind === 'tokens' ? { calibrationSeq: seq } : { inputsFile: data.file },
    uniform,
  );
  frontier.forEach((f, i) => (f.speed = r.plans[i]));
  return r;
}

/**
 * Writes the model rewritten by `plan` to `output` (the user's model is only read): the mask form (the exact
 * reference) for a density budget, the compute-reducing form (`blocked`) that FLOP and latency budgets are counted on.
 */
export function writePlannedModel(model: string, plan: HeadPlanFile, output: string, seq: number, impl: 'mask' | 'blocked' = 'mask'): void {
  rewriteModel(model, [{ rule: 'plan', params: { plan, impl } }], output, { seqLen: seq });
}

interface Searched {
  budget: Budget;
  plans: { proxy: string; plan: HeadPlanFile; density: number; cost: number; loss: number }[];
}

/** One plan per loss proxy and budget; a proxy whose plan another already gave is dropped. */
async function searchAll(profile: AdvisorProfile, budgets: Budget[], costs: CostModel, progress: (p: ProgressEvent) => void, warnings: string[]): Promise<Searched[]> {
  const out: Searched[] = [];
  const density = densityCost(profile);
  let done = 0;
  for (const [i, budget] of budgets.entries()) {
    const plans: Searched['plans'] = [];
    const words = (sum: number) => `${budget.kind} ${formatBudgetValue({ ...budget, value: costs.inUnit(sum, budget.unit) })}`;
    for (const proxy of LOSS_PROXIES) {
      progress({ phase: 'search', done: done++, total: budgets.length * LOSS_PROXIES.length, message: `${describeBudget(budget)}, ${proxy.name}` });
      let r: SearchResult;
      try {
        const groups = costs.perGroup ? new Map(profile.sites.map((site) => [site.site, costs.perGroup!(site)])) : undefined;
        r = await searchPlan(searchHeads(profile, proxy, costs), costs.limit(budget), words, groups);
      } catch (e) {
        if (!(e instanceof BudgetError) || i === 0) throw e;
        warnings.push(`frontier budget ${describeBudget(budget)} left out: ${e.message}`);
        break;
      }
      const plan = planOf(profile, r.picks, budget, proxy.name);
      if (plans.some((p) => samePlan(p.plan, plan))) continue;
      const siteOf = (site: number) => profile.sites.find((s) => s.site === site)!;
      const planDensity = r.picks.reduce((a, p) => a + density.cost(siteOf(p.site), p.head, p.choice), 0);
      plans.push({ proxy: proxy.name, plan, density: planDensity, cost: costs.inUnit(r.cost, budget.unit), loss: r.loss });
    }
    if (plans.length) out.push({ budget, plans });
  }
  return out;
}

export function planOf(profile: AdvisorProfile, picks: { site: number; head: number; choice: HeadChoice }[], budget: Budget, proxy: string): HeadPlanFile {
  const sites: Record<number, HeadChoice[]> = {};
  for (const p of picks) (sites[p.site] ??= [])[p.head] = p.choice;
  return {
    version: 1,
    seq: profile.seq,
    note: `attention-lens plan: ${describeBudget(budget)}${budget.kind === 'density' ? ' of dense attention' : ''} at ${profile.seq} tokens; loss estimate ${proxy}; calibration: ${profile.calibration}`,
    sites,
  };
}

export function samePlan(a: HeadPlanFile, b: HeadPlanFile): boolean {
  const key = (p: HeadPlanFile) => JSON.stringify(Object.entries(p.sites).map(([s, hs]) => [s, hs.map(describeHeadChoice)]));
  return key(a) === key(b);
}

export function mixOf(plan: HeadPlanFile): Record<string, number> {
  const mix: Record<string, number> = {};
  for (const hs of Object.values(plan.sites)) for (const c of hs) mix[describeHeadChoice(c)] = (mix[describeHeadChoice(c)] ?? 0) + 1;
  return mix;
}

function candidateFamilies(profile: AdvisorProfile, options: AdviseOptions) {
  const s = profile.sites[0];
  return candidateSet(profile.seq, s.causal, options.candidates).families;
}

export function objectiveOf(report: AnalysisReport, data: AdvisorData, split: ReturnType<typeof loadTokenSplit> | undefined): Objective {
  if (data.kind === 'inputs') return { kind: 'outputs', inputsFile: data.file };
  const ids = report.model.inputs.find((i) => i.role === 'input_ids');
  if (!ids) throw new Error(`${report.model.path}: no token-id input; give --inputs instead of --tokens`);
  return { kind: 'bits', tokensFile: data.file, split: split!, idsInput: ids.name };
}

function describeObjective(o: Objective): string {
  if (o.kind === 'bits') {
    return `bits per token on ${o.tokensFile}: ${o.split.evalStarts.length} evaluation windows of ${o.split.seq} (eval's definition); ` +
      'candidate plans chosen on the calibration windows';
  }
  return `outputs against the original's on ${o.inputsFile} (KL for logits, else 1 − cosine); the same inputs calibrate`;
}
