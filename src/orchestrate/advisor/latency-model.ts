// The advisor's latency model (issue 10), for a latency budget: measured, never assumed. On the chosen provider and at
// the planned length, the runtime's bench times the dense model and a few uniform plans in their compute-reducing
// realisation (`plan` with impl `blocked`), interleaved run by run: windows of the candidate ladder (smallest, middle,
// largest), block-topk (smallest and largest k), one sink and one strided pattern, and half the heads pruned. Each gives
// what one head costs under that choice relative to a dense head, Δ = (median − dense median) / heads it was given to.
// Per family of choices (window, sink, strided, power, block-topk, pruned) Δ is fitted as a line in the head's FLOPs
// of the blocked realisation (rewriters/plan/realised-cost.ts): least squares where the family was timed at several
// FLOP counts; a family timed once (sink, strided) takes the windows' slope, since its blocked form is the blocked
// window plus a few key columns, and its own intercept; pruned is a constant:
//
//   latency(plan) = dense median + Σ_h Δ_family(h)(FLOPs of h's choice)
//
// Every plan has one choice per head, so a constant per head cannot be told apart from the fixed part: the model is
// identified relative to dense. Splitting a site into head groups (the Gather and Concat of split.ts) costs a constant
// per group beyond the site's first, measured on one more plan whose sites cycle their heads through the timed windows
// (groupOverhead); the search charges it (search.ts). What is left out (a group's cost by its size, heads interacting
// in the cache) shows in the measured latency of the chosen plan (measurePlans), reported beside it.
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { AnalysisReport } from '../../analysis/report/types';
import { rewriteModel, type RuleRequest } from '../../rewriters/pipeline';
import { describeHeadChoice, type HeadChoice, type HeadPlanFile } from '../../rewriters/plan/choices';
import { type RealisedForm, realisedHead, realisedHeadFlops } from '../../rewriters/plan/realised-cost';
import type { RuntimeClient } from '../../runtime/client';
import { type Interval, speedup } from '../../runtime/measure/stats';
import type { BenchEntry, InputSource, ProgressEvent, SessionSettings } from '../../runtime/protocol';
import type { AdvisorProfile } from './profile';

export interface LatencyContext {
  client: RuntimeClient;
  model: string;
  report: AnalysisReport;
  settings?: SessionSettings;
  signal?: AbortSignal;
  /** A temporary folder for the rewritten models. */
  dir: string;
  /** Where the bench's inputs come from: synthesized at the length (a token file), or the inputs file as given. */
  inputs: { seq: number } | { file: string };
  /** Timed rounds per bench run (every model once per round). */
  runs: number;
  onProgress?: (p: ProgressEvent) => void;
}

export interface Timing {
  p50: number;
  ci95: Interval;
  runs: number;
}

export interface LatencyPoint {
  /** "window 8", "every other head pruned", ... */
  label: string;
  choice: HeadChoice;
  /** The choice's kind: what its line is fitted over. */
  family: HeadChoice['kind'];
  /** How the rewrite computes it (realised-cost.ts). */
  form: RealisedForm;
  /** Heads given the choice (the others stay dense). */
  heads: number;
  /** Mean FLOPs of one of those heads under the choice. */
  flopsPerHead: number;
  latencyMs: Timing;
  /** (median − dense median) / heads. */
  deltaPerHeadMs: number;
}

export interface LatencyFit {
  family: HeadChoice['kind'];
  /** Δ per head = a + b · FLOPs of the head. */
  a: number;
  b: number;
  points: number;
  /** Where the slope came from: fitted on the family's points, the windows' (one point), or none (a constant). */
  slope: 'fitted' | 'window' | 'none';
  /** Largest gap between a point's measured and fitted latency, over the whole model, ms. */
  maxResidualMs: number;
}

/**
 * The cost of splitting a site into more head groups: a plan whose sites cycle their heads through the timed windows
 * (as many groups per site as windows), timed in the same run; what its latency holds beyond the per-head lines'
 * prediction, per group beyond each site's first. Null when fewer than two windows were timed.
 */
export interface GroupOverhead {
  label: string;
  latencyMs: Timing;
  /** Groups beyond each site's first, summed over the sites. */
  extraGroups: number;
  /** The per-head lines' prediction for the plan, ms. */
  predictedMs: number;
  /** (median − prediction) / extraGroups, ms; what the search charges per group (0 when this is below 0). */
  perGroupMs: number;
}

export interface LatencyModel {
  seq: number;
  ep: string;
  inputs: string;
  machine: string;
  /** The dense model's latency: the model's fixed point. */
  dense: Timing;
  points: LatencyPoint[];
  fits: LatencyFit[];
  groups: GroupOverhead | null;
  /** Per planned site, what its heads' FLOPs are computed with. */
  sites: { site: number; causal: boolean; headDim: number }[];
  warnings: string[];
}

/** The choices timed uniformly: a few per realised form, from the candidates of the profile. */
export function probeChoices(profile: AdvisorProfile): HeadChoice[] {
  const all = new Map<string, HeadChoice>();
  for (const s of profile.sites) for (const c of s.choices) all.set(describeHeadChoice(c), c);
  const of = <K extends HeadChoice['kind']>(kind: K) => [...all.values()].filter((c): c is Extract<HeadChoice, { kind: K }> => c.kind === kind);
  const spread = <T,>(xs: T[]): T[] => [...new Set([xs[0], xs[Math.floor((xs.length - 1) / 2)], xs[xs.length - 1]])].filter((x) => x !== undefined);
  const windows = of('window').sort((a, b) => a.window - b.window);
  const topk = of('block-topk').sort((a, b) => a.k - b.k);
  const middle = <T,>(xs: T[]): T[] => (xs.length ? [xs[Math.floor((xs.length - 1) / 2)]] : []);
  const byWindow = (a: { window: number }, b: { window: number }) => a.window - b.window;
  return [
    ...spread(windows),
    ...(topk.length ? [...new Set([topk[0], topk[topk.length - 1]])] : []),
    ...middle(of('sink').sort(byWindow)),
    ...middle(of('strided').sort(byWindow)),
    ...middle(of('power').sort(byWindow)),
    ...(all.has('pruned') ? [{ kind: 'pruned' } as HeadChoice] : []),
  ];
}

/** The uniform plan of a probe: every head of every site that allows it (pruned: every other head), and the heads given it. */
function probePlan(profile: AdvisorProfile, c: HeadChoice): { plan: HeadPlanFile; heads: number } {
  const sites: Record<number, HeadChoice[]> = {};
  let heads = 0;
  for (const s of profile.sites) {
    if (!s.choices.some((x) => describeHeadChoice(x) === describeHeadChoice(c))) continue;
    const pruneHalf = c.kind === 'pruned';
    sites[s.site] = Array.from({ length: s.heads }, (_, h) => (pruneHalf && h % 2 === 1 ? { kind: 'dense' } : c));
    heads += pruneHalf ? Math.ceil(s.heads / 2) : s.heads;
  }
  return { plan: { version: 1, seq: profile.seq, note: `latency probe: ${describeHeadChoice(c)}`, sites }, heads };
}

let serial = 0;

/** The plan in its compute-reducing realisation, written to the context's folder; the rewrite's warnings too. */
export function writeBlocked(ctx: Pick<LatencyContext, 'model' | 'dir'>, plan: HeadPlanFile, seq: number): { path: string; flopsAfter: number; warnings: string[]; report: ReturnType<typeof rewriteModel> } {
  const path = join(ctx.dir, `blocked-${++serial}.onnx`);
  const request: RuleRequest = { rule: 'plan', params: { plan, impl: 'blocked' } };
  const report = rewriteModel(ctx.model, [request], path, { seqLen: seq, save: { externalData: 'embed' } });
  return { path, flopsAfter: report.flopsAfter, warnings: report.warnings, report };
}

async function bench(ctx: LatencyContext, paths: string[], what: string): Promise<BenchEntry[]> {
  const inputs: InputSource = 'file' in ctx.inputs ? { file: ctx.inputs.file } : { synthesis: {} };
  const r = await ctx.client.bench(
    {
      models: paths.map((path) => ({ path, infos: ctx.report.model.inputs })),
      settings: ctx.settings,
      inputs,
      ...('seq' in ctx.inputs ? { points: [{ seq: ctx.inputs.seq, past: 0 }] } : {}),
      iters: ctx.runs,
      profileRuns: 0,
    },
    { signal: ctx.signal, onProgress: (p) => ctx.onProgress?.({ phase: 'latency', done: p.done, total: p.total, message: `${what}: ${p.phase}` }) },
  );
  if (r.results.length !== paths.length) throw new Error(`bench returned ${r.results.length} entries for ${paths.length} models`);
  return r.results;
}

const timing = (e: BenchEntry): Timing => ({ p50: e.latencyMs.p50, ci95: e.latencyMs.ci95, runs: e.latencyMs.n });

function describeInputs(ctx: LatencyContext): string {
  return 'file' in ctx.inputs ? `the inputs of ${ctx.inputs.file}` : `synthesized by the runtime at ${ctx.inputs.seq} tokens, batch 1 (as bench --seq)`;
}

export function machine(): string {
  const cpu = cpus();
  return `${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${cpu.length} cores`;
}

/** Times the dense model and the probes in one interleaved bench run and fits the per-form lines. */
export async function calibrateLatency(ctx: LatencyContext, profile: AdvisorProfile): Promise<LatencyModel> {
  const sites = profile.sites.map((s) => {
    const headDim = ctx.report.sites.find((x) => x.id === s.site)?.headDim;
    if (!headDim) throw new Error(`site ${s.site}: the analysis could not read its head size, which the latency model needs`);
    return { site: s.site, causal: s.causal, headDim };
  });
  const warnings: string[] = [];
  const probes = probeChoices(profile).map((choice) => ({ choice, ...probePlan(profile, choice) })).filter((p) => p.heads > 0);
  ctx.onProgress?.({ phase: 'latency', done: 0, total: probes.length + 1, message: 'writing the uniform plans to time' });
  const written = probes.map((p) => {
    const w = writeBlocked(ctx, p.plan, profile.seq);
    warnings.push(...w.warnings.map((x) => `latency probe ${describeHeadChoice(p.choice)}: ${x}`));
    return w.path;
  });
  const mixed = mixedPlan(profile, probes.filter((p) => p.choice.kind === 'window').map((p) => p.choice));
  if (mixed) written.push(writeBlocked(ctx, mixed.plan, profile.seq).path);
  const entries = await bench(ctx, [ctx.model, ...written], 'timing the dense model and the uniform plans');
  const dense = timing(entries[0]);
  warnings.push(...entries[0].timingWarnings.map((w) => `dense model: ${w}`));
  const points = probes.map((p, i): LatencyPoint => {
    const t = timing(entries[i + 1]);
    const flops = profile.sites.filter((s) => String(s.site) in p.plan.sites).map((s) => realisedHeadFlops(p.choice, profile.seq, s.causal, sites.find((x) => x.site === s.site)!.headDim));
    return {
      label: p.choice.kind === 'pruned' ? 'every other head pruned' : describeHeadChoice(p.choice),
      choice: p.choice,
      family: p.choice.kind,
      form: realisedHead(p.choice, profile.seq, true, 1).form,
      heads: p.heads,
      flopsPerHead: flops.reduce((a, b) => a + b, 0) / flops.length,
      latencyMs: t,
      deltaPerHeadMs: (t.p50 - dense.p50) / p.heads,
    };
  });
  const model: LatencyModel = { seq: profile.seq, ep: entries[0].ep, inputs: describeInputs(ctx), machine: machine(), dense, points, fits: fitForms(points), groups: null, sites, warnings };
  if (mixed) model.groups = groupOverhead(model, mixed, timing(entries[probes.length + 1]));
  return model;
}

/** Each site's heads cycling through `windows` (at least two): as many head groups per site as windows. */
function mixedPlan(profile: AdvisorProfile, windows: HeadChoice[]): { plan: HeadPlanFile; label: string } | null {
  if (windows.length < 2) return null;
  const sites: Record<number, HeadChoice[]> = {};
  for (const s of profile.sites) sites[s.site] = Array.from({ length: s.heads }, (_, h) => windows[h % windows.length]);
  const label = `heads cycling through ${windows.map(describeHeadChoice).join(', ')}`;
  return { plan: { version: 1, seq: profile.seq, note: `latency probe: ${label}`, sites }, label };
}

/** What the mixed plan measured beyond the per-head lines' prediction, per head group beyond each site's first. */
export function groupOverhead(model: LatencyModel, mixed: { plan: HeadPlanFile; label: string }, t: Timing): GroupOverhead {
  let predicted = 0;
  let extraGroups = 0;
  for (const [site, choices] of Object.entries(mixed.plan.sites)) {
    const resolved = choices as HeadChoice[];
    for (const c of resolved) predicted += predictDeltaMs(model, Number(site), c);
    extraGroups += new Set(resolved.map(describeHeadChoice)).size - 1;
  }
  const over = t.p50 - model.dense.p50 - predicted;
  return { label: mixed.label, latencyMs: t, extraGroups, predictedMs: model.dense.p50 + predicted, perGroupMs: extraGroups > 0 ? over / extraGroups : 0 };
}

/** What the search charges per head group beyond a site's first: the measured overhead, or 0 when it is not above 0. */
export function perGroupMs(model: LatencyModel): number {
  return model.groups ? Math.max(0, model.groups.perGroupMs) : 0;
}

/**
 * Least-squares line Δ = a + b·FLOPs per family; a family timed at one FLOP count takes the windows' slope when there
 * is one (its blocked form is the window's plus extra columns), and pruned is a constant.
 */
export function fitForms(points: LatencyPoint[]): LatencyFit[] {
  const families = [...new Set(points.map((p) => p.family))];
  const line = (ps: LatencyPoint[]) => {
    const n = ps.length;
    const mx = ps.reduce((a, p) => a + p.flopsPerHead, 0) / n;
    const my = ps.reduce((a, p) => a + p.deltaPerHeadMs, 0) / n;
    const sxx = ps.reduce((a, p) => a + (p.flopsPerHead - mx) ** 2, 0);
    return sxx > 1e-12 * mx * mx ? { mx, my, b: ps.reduce((a, p) => a + (p.flopsPerHead - mx) * (p.deltaPerHeadMs - my), 0) / sxx } : { mx, my, b: null };
  };
  const windowSlope = line(points.filter((p) => p.family === 'window')).b;
  return families.map((family) => {
    const ps = points.filter((p) => p.family === family);
    const own = line(ps);
    const borrowed = own.b === null && family !== 'pruned' && windowSlope !== null ? windowSlope : null;
    const b = own.b ?? borrowed ?? 0;
    const a = own.my - b * own.mx;
    const maxResidualMs = Math.max(...ps.map((p) => Math.abs(p.deltaPerHeadMs - (a + b * p.flopsPerHead)) * p.heads));
    return { family, a, b, points: ps.length, slope: own.b !== null ? 'fitted' : borrowed !== null ? 'window' : 'none', maxResidualMs };
  });
}

/** A choice whose family the latency model did not time: its latency is unknown, not guessed. */
export class LatencyUnknown extends Error {}

/** What one head of `site` costs under `choice` relative to a dense head, by the fitted model (ms). */
export function predictDeltaMs(model: LatencyModel, site: number, choice: HeadChoice): number {
  const s = model.sites.find((x) => x.site === site);
  if (!s) throw new Error(`site ${site} is not in the latency model`);
  if (choice.kind === 'dense') return 0;
  const fit = model.fits.find((f) => f.family === choice.kind);
  if (!fit) throw new LatencyUnknown(`the latency model has no measurement of ${choice.kind} heads (${describeHeadChoice(choice)})`);
  return fit.a + fit.b * realisedHeadFlops(choice, model.seq, s.causal, s.headDim);
}

export type LatencyVerdict = 'met' | 'exceeded' | 'not shown';

/**
 * Whether a measured interval shows a budget met: met only when the whole interval is at or below it, exceeded when
 * the whole interval is above it, and otherwise not shown (the interval holds the budget).
 */
export function latencyVerdict(interval: Interval, limit: number): LatencyVerdict {
  if (interval[1] <= limit) return 'met';
  if (interval[0] > limit) return 'exceeded';
  return 'not shown';
}

export interface MeasuredLatency {
  /** The model's estimate of the plan's latency, ms. */
  estimateMs: number;
  /** The plan's blocked realisation, timed interleaved with the dense model. */
  measuredMs: Timing;
  denseMs: Timing;
  /** Plan latency over dense latency: ratio of medians, with its paired bootstrap interval. */
  share: { value: number; ci95: Interval };
  /** The budget in the unit it was given ("ms" or "share") and what the interval in that unit shows. */
  unit: 'ms' | 'share';
  limit: number;
  verdict: LatencyVerdict;
  warnings: string[];
}

/** Times the plans' blocked realisations against the dense model in one interleaved bench run. */
export async function measurePlans(
  ctx: LatencyContext,
  plans: { path: string; estimateMs: number; unit: 'ms' | 'share'; limit: number }[],
): Promise<MeasuredLatency[]> {
  const entries = await bench(ctx, [ctx.model, ...plans.map((p) => p.path)], 'timing the plans');
  const dense = entries[0];
  return plans.map((p, i) => {
    const e = entries[i + 1];
    const s = speedup(dense.samplesMs, e.samplesMs);
    const share = { value: 1 / s.ratio, ci95: [1 / s.ci95[1], 1 / s.ci95[0]] as Interval };
    const measuredMs = timing(e);
    const interval = p.unit === 'ms' ? measuredMs.ci95 : share.ci95;
    return {
      estimateMs: p.estimateMs,
      measuredMs,
      denseMs: timing(dense),
      share,
      unit: p.unit,
      limit: p.limit,
      verdict: latencyVerdict(interval, p.limit),
      warnings: [...e.timingWarnings, ...e.provider.warnings],
    };
  });
}
