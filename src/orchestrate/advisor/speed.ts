// The advisor's speed step (issue 10): each frontier plan in its compute-reducing realisation (the `plan` rule with
// `impl: blocked`: heads split into groups by choice, each group computed with its pattern's compute-reducing form)
// timed against the best dense baseline, in ONE interleaved runtime bench run, exactly as `bench` and bench:rewrites
// time: the same worker request (models interleaved run by run, warm-up, stop rule, profile), the same statistics
// (median with its bootstrap interval, paired speedups with theirs, trust warnings, the Amdahl bound of the removed
// attention FLOPs). The dense candidates are the original and the `fuse` rule's fused model; the faster of the two
// exact models (by median) is the baseline, as bench:rewrites and `bench --baseline` use it. The uniform rules the
// advisor measured beside the plans (uniform.ts) are timed in the same run, each in its own fast form (`blocked`,
// block-topk `gather`), so that plans and uniform rules are compared on speed the same way as on accuracy.
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { analyzeModel } from '../../analysis/analyze';
import { siteMeasures } from '../../analysis/report/site-measures';
import type { AnalysisReport } from '../../analysis/report/types';
import { rewriteModel, type RewriteReport, type RuleRequest } from '../../rewriters/pipeline';
import { type Budget, describeBudget } from '../../rewriters/plan/budget';
import type { HeadPlanFile } from '../../rewriters/plan/choices';
import { RuleError } from '../../rewriters/rule';
import type { RuntimeClient } from '../../runtime/client';
import type { Interval } from '../../runtime/measure/stats';
import { type BoundScope, type TimedForComparison, type Verdict, compareTimed } from '../../runtime/measure/trust';
import type { BenchEntry, BenchModel, BenchRequest, InputSource, ProgressEvent, SessionSettings } from '../../runtime/protocol';
import { profileSites } from '../../runtime/sites';

/** What to time and how: the stop rule, warm-up and profile of `bench` (their defaults are the worker's). */
export interface SpeedOptions extends Pick<BenchRequest, 'warmup' | 'iters' | 'minRuns' | 'minTimeMs' | 'maxRuns' | 'profileRuns'> {
  /**
   * Tokens per run, on inputs synthesized by the runtime as `bench --seq` makes them; without it, a token file's
   * window length (synthesized too), or the inputs file as given (its shapes fix the run).
   */
  seq?: number;
  /** Time the uniform rules measured at the same budgets too (default true). */
  uniform?: boolean;
}

/** A speedup over one reference, with the Amdahl bound against that same reference and what a table may say. */
export interface SpeedVs {
  against: string;
  ratio: number;
  ci95: Interval;
  significant: boolean;
  paired: boolean;
  /** The whole model's bound from the attention FLOPs removed and the reference's measured score-path share; null when unknown. */
  modelBound: number | null;
  /** Why there is no bound although the FLOPs are known (the two models' scores run on other kernels). */
  boundNote?: string;
  boundExceeded: boolean;
  verdict: Verdict;
}

export interface TimedModel {
  /** "original", "fused", or "plan at B (blocked)" with B its budget in words ("attention FLOPs ≤ 0.3 of dense"). */
  label: string;
  latencyMs: { p50: number; ci95: Interval; p90: number; min: number; runs: number };
  /** Attention FLOPs at the bench length (the rewrite report's count); null when an inputs file fixed the shapes. */
  attentionFlops: number | null;
  /** Share of kernel time in the attention sites and in their score path (the profile; null without one). */
  attentionShare: number | null;
  attentionCoreShare: number | null;
  /** Share of the nodes outside the sites that only build their masks (the profile; null without one). */
  maskBuildShare: number | null;
  warnings: string[];
}

export interface PlanSpeed extends TimedModel {
  /** The budget's value, in the unit of the run's budgets. */
  budget: number;
  /** Sites the plan split into head groups (the compute-reducing form), of the sites it names. */
  blockedSites: number;
  plannedSites: number;
  vsOriginal: SpeedVs;
  vsBaseline: SpeedVs;
}

/** A uniform rule of the candidate set at a frontier budget, timed in its fast form. */
export interface UniformSpeed extends TimedModel {
  budget: number;
  family: string;
  /** The rule as applied, e.g. "window 60". */
  rule: string;
  vsOriginal: SpeedVs;
  vsBaseline: SpeedVs;
}

/** A uniform rule to time: its budget and family, and its rule request (written with its fast implementation). */
export interface UniformToTime {
  budget: Budget;
  family: string;
  rule: string;
  request: RuleRequest;
}

export interface SpeedReport {
  /** Tokens per run, or null when the inputs file fixed the shapes. */
  seq: number | null;
  inputs: string;
  ep: string;
  original: TimedModel;
  /** The fused model, or null with the reason it could not be made. */
  fused: (TimedModel & { vsOriginal: SpeedVs }) | null;
  fusedReason?: string;
  /** The best dense baseline: the faster exact model by median. */
  baseline: 'original' | 'fused';
  plans: PlanSpeed[];
  /** The uniform rules at the same budgets (none when not asked for, or none was measured). */
  uniform: UniformSpeed[];
  settings: SpeedOptions;
  /** Other processes' share of the CPU during the timed runs (null when unknown) and the load average before and after. */
  otherCpuShare: number | null;
  loadAverage: { before: number[]; after: number[] };
  machine: string;
  warnings: string[];
}

interface Variant {
  label: string;
  path: string;
  /** Its analysis: its sites let the profiler attribute kernel time to attention (a plan's split sites read back as one site each). */
  report: AnalysisReport;
  /** Attention FLOPs at the bench length; null when an inputs file fixes the length (the count would be at another). */
  flops: number | null;
  /** Which measured share its FLOP ratio bounds (trust.ts). */
  scope: BoundScope;
  budget?: number;
  blocked?: { sites: number; planned: number };
  uniform?: { family: string; rule: string };
}

export interface SpeedContext {
  client: RuntimeClient;
  model: string;
  settings?: SessionSettings;
  signal?: AbortSignal;
  /** Throws the advisor's cancellation error once `signal` is aborted. */
  checkCancelled: () => void;
  /** A temporary folder for the rewritten models. */
  dir: string;
  onProgress: (p: ProgressEvent) => void;
}

/**
 * Times the plans' blocked forms, the original and the fused model in one interleaved bench run. `inputsFile` is the
 * advisor's inputs file (used as is when no length is asked for); `calibrationSeq` a token file's window length.
 */
export async function timePlans(
  ctx: SpeedContext,
  plans: { budget: Budget; plan: HeadPlanFile }[],
  options: SpeedOptions,
  data: { inputsFile?: string; calibrationSeq?: number },
  uniform: UniformToTime[] = [],
): Promise<SpeedReport> {
  const seq = options.seq ?? data.calibrationSeq ?? null;
  if (seq === null && !data.inputsFile) throw new Error('the speed step needs a length or an inputs file');
  const before = loadavg();
  // Every model is analysed at the bench length: its sites' FLOPs and nodes are what the run is compared on.
  const analyze = (path: string) => analyzeModel(path, seq ? { seqLen: seq } : {});
  const original = analyze(ctx.model);
  const total = plans.length + uniform.length + 2;
  const step = (done: number, message: string) => ctx.onProgress({ phase: 'speed', done, total, message });
  const warnings: string[] = [];

  step(0, 'writing the fused model');
  const flops = (n: number) => (seq === null ? null : n);
  const variants: Variant[] = [{ label: 'original', path: ctx.model, report: original, flops: flops(siteFlops(original)), scope: 'none' }];
  const ep = [ctx.settings?.ep ?? 'cpu'].flat()[0];
  let fusedReason: string | undefined;
  try {
    const fused = write(ctx, 'fused', [{ rule: 'fuse', params: ep === 'cuda' ? { target: 'cuda' } : {} }], seq);
    variants.push({ label: 'fused', path: fused.path, report: analyze(fused.path), flops: flops(fused.report.flopsAfter), scope: 'none' });
  } catch (e) {
    if (!(e instanceof RuleError)) throw e;
    fusedReason = e.message;
  }
  for (const [i, p] of plans.entries()) {
    ctx.checkCancelled();
    // Named by its budget's kind and unit, as every other line of the run names it.
    const name = `plan at ${describeBudget(p.budget)}`;
    step(1 + i, `writing the ${name} (blocked)`);
    const r = write(ctx, `plan-${i}`, [{ rule: 'plan', params: { plan: p.plan, impl: 'blocked' } }], seq);
    const changes = r.report.applied.flatMap((a) => a.changes);
    const blocked = changes.filter((c) => (c.after as { impl?: string }).impl === 'blocked').length;
    for (const w of r.report.warnings) warnings.push(`${name}: ${w}`);
    const report = analyze(r.path);
    variants.push({ label: `${name} (blocked)`, path: r.path, report, flops: flops(r.report.flopsAfter), scope: 'core', budget: p.budget.value, blocked: { sites: blocked, planned: changes.length } });
  }

  for (const [i, u] of uniform.entries()) {
    ctx.checkCancelled();
    const name = `${u.rule} at ${describeBudget(u.budget)}`;
    step(1 + plans.length + i, `writing the uniform ${name} (fast form)`);
    try {
      const r = write(ctx, `uniform-${i}`, [fastForm(u.request)], seq);
      const report = analyze(r.path);
      variants.push({ label: `uniform ${name} (${fastImpl(u.request)})`, path: r.path, report, flops: flops(r.report.flopsAfter), scope: 'core', budget: u.budget.value, uniform: { family: u.family, rule: u.rule } });
    } catch (e) {
      if (!(e instanceof RuleError)) throw e;
      warnings.push(`uniform ${name}: not timed: ${e.message}`);
    }
  }

  ctx.checkCancelled();
  step(total - 1, 'timing');
  const models: BenchModel[] = variants.map((v) => ({ path: v.path, infos: original.model.inputs, sites: profileSites(v.report.sites) }));
  const inputs: InputSource = seq === null ? { file: data.inputsFile! } : { synthesis: {} };
  const { seq: _, ...stop } = options;
  const result = await ctx.client.bench(
    { models, settings: ctx.settings, inputs, ...(seq === null ? {} : { points: [{ seq, past: 0 }] }), ...stop },
    { signal: ctx.signal, onProgress: (p) => ctx.onProgress({ phase: 'speed', done: total - 1, total, message: `${p.phase} ${Math.round(p.done)}/${Math.round(p.total)}${p.message ? ` ${p.message}` : ''}` }) },
  );
  step(total, 'timed');
  return report(variants, result.results, { seq, inputsFile: data.inputsFile, options, fusedReason, warnings, before });
}

function write(ctx: SpeedContext, name: string, requests: RuleRequest[], seq: number | null): { path: string; report: RewriteReport } {
  const path = join(ctx.dir, `speed-${name}.onnx`);
  const report = rewriteModel(ctx.model, requests, path, { ...(seq ? { seqLen: seq } : {}), save: { externalData: 'embed' } });
  return { path, report };
}

/** The rule request with its compute-reducing implementation (block-topk gathers its blocks; the others are blocked). */
function fastForm(r: RuleRequest): RuleRequest {
  return { ...r, params: { ...(r.params as Record<string, unknown>), impl: fastImpl(r) } };
}

function fastImpl(r: RuleRequest): 'gather' | 'blocked' {
  return r.rule === 'block-topk' ? 'gather' : 'blocked';
}

function siteFlops(r: AnalysisReport): number {
  return r.sites.reduce((n, s) => n + (s.flops ?? 0), 0);
}

/** A speedup of `cur` over `ref` with the Amdahl bound against `ref` (its measured shares, the FLOP ratio of the two). */
function versus(ref: { v: Variant; e: BenchEntry }, cur: { v: Variant; e: BenchEntry }): SpeedVs & { warning: string | null } {
  const r = forComparison(ref);
  const c = compareTimed(r, ref.e === cur.e ? r : forComparison(cur));
  const s = c.speedup;
  return { against: ref.v.label, ratio: s.ratio, ci95: s.ci95, significant: s.significant, paired: s.paired, modelBound: c.modelBound, ...(c.boundNote ? { boundNote: c.boundNote } : {}), boundExceeded: c.boundExceeded, verdict: c.verdict, warning: c.warning };
}

function forComparison(t: { v: Variant; e: BenchEntry }): TimedForComparison {
  return { label: t.v.label, samplesMs: t.e.samplesMs, shares: { attentionShare: t.e.attentionShare, attentionCoreShare: t.e.profile?.attentionCoreShare ?? null, maskBuildShare: t.e.profile?.maskBuildShare ?? null }, flops: t.v.flops, scope: t.v.scope, measures: siteMeasures(t.v.report.sites) };
}

function withoutWarning(v: SpeedVs & { warning: string | null }): SpeedVs {
  const { warning: _, ...rest } = v;
  return rest;
}

function timed(v: Variant, e: BenchEntry): TimedModel {
  const l = e.latencyMs;
  return {
    label: v.label,
    latencyMs: { p50: l.p50, ci95: l.ci95, p90: l.p90, min: l.min, runs: l.n },
    attentionFlops: v.flops,
    attentionShare: e.attentionShare,
    attentionCoreShare: e.profile?.attentionCoreShare ?? null,
    maskBuildShare: e.profile?.maskBuildShare ?? null,
    warnings: [...e.timingWarnings, ...e.inputWarnings, ...e.provider.warnings],
  };
}

function report(
  variants: Variant[], entries: BenchEntry[],
  o: { seq: number | null; inputsFile?: string; options: SpeedOptions; fusedReason?: string; warnings: string[]; before: number[] },
): SpeedReport {
  if (entries.length !== variants.length) throw new Error(`bench returned ${entries.length} entries for ${variants.length} models`);
  const rows = variants.map((v, i) => ({ v, e: entries[i] }));
  const fused = rows.find((r) => r.v.label === 'fused') ?? null;
  const best = fused && fused.e.latencyMs.p50 < rows[0].e.latencyMs.p50 ? fused : rows[0];
  const warnings = [...o.warnings];
  const compared = (r: { v: Variant; e: BenchEntry }) => {
    const [a, b] = [versus(rows[0], r), versus(best, r)];
    const t = timed(r.v, r.e);
    return { ...t, warnings: [...t.warnings, ...[a.warning, b.warning].filter((w): w is string => w !== null)], vsOriginal: withoutWarning(a), vsBaseline: withoutWarning(b), budget: r.v.budget! };
  };
  const plans = rows.filter((r) => r.v.blocked).map((r): PlanSpeed => ({ ...compared(r), blockedSites: r.v.blocked!.sites, plannedSites: r.v.blocked!.planned }));
  const uniform = rows.filter((r) => r.v.uniform).map((r): UniformSpeed => ({ ...compared(r), ...r.v.uniform! }));
  const busy = entries.map((e) => e.otherCpuShare).find((x) => x !== null) ?? null;
  const cpu = cpus();
  return {
    seq: o.seq,
    inputs: o.seq === null ? `the inputs of ${o.inputsFile}` : `synthesized by the runtime at ${o.seq} tokens, batch 1 (as bench --seq)`,
    ep: entries[0].ep,
    original: timed(rows[0].v, rows[0].e),
    fused: fused ? { ...timed(fused.v, fused.e), vsOriginal: withoutWarning(versus(rows[0], fused)) } : null,
    ...(o.fusedReason ? { fusedReason: o.fusedReason } : {}),
    baseline: best === rows[0] ? 'original' : 'fused',
    plans,
    uniform,
    settings: o.options,
    otherCpuShare: busy,
    loadAverage: { before: o.before, after: loadavg() },
    machine: `${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${cpu.length} cores`,
    warnings,
  };
}
