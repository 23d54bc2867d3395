// The work behind Benchmark Variants, Compare Accuracy and Show Attention Maps, from a model and its variants to the
// dashboard's results: variants are written by the core thread, models run in the runtime worker. No `vscode` here:
// a session wraps these in tasks, and the webview tests call them directly to get real results.
import { mkdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { withReferenceLayout } from '../analysis/layout/inherit-axes';
import type { AnalysisReport, SiteInfo } from '../analysis/report/types';
import { type SiteMeasures, siteMeasures } from '../analysis/report/site-measures';
import { type AccuracyResults, type AttentionMaps, ORIGINAL, type SessionSettings, type SpeedResults, type Variant } from '../protocol';
import type { RuntimeClient } from '../runtime/client';
import type { BoundScope } from '../runtime/measure/trust';
import type { BenchModel, InputSource, SessionSettings as RuntimeSettings } from '../runtime/protocol';
import { profileSites } from '../runtime/sites';
import type { CoreClient } from '../cli/core-client';
import { denseBaseline } from './dense-baseline';
import { userError } from './errors';
import { BenchProgress, describeProgress } from './progress';
import { attentionMaps, describeFed, speedPoints, variantAccuracy } from './results';
import { type DefaultLength, defaultLength, fixedTokens, isVision, usableLengths } from '../shared/lengths';
import { isExactVariant } from '../shared/run-results';
import { type Calibration, calibrationInputs } from '../runtime/inputs/calibration';
import { MAX_MAP_VALUES, mapsLength } from './calibration';

/**
 * Progress of long work: a fraction in [0, 1] (null: unknown) and a line for people. `timing` is true while runs are
 * timed: whoever shows the progress should then stay still (no animation, few redraws), since any work it does on
 * this machine lands in the measurement.
 */
export type ReportProgress = (fraction: number | null, message: string, timing?: boolean) => void;

/** Profiled runs per model and point: enough for attention's share of the time, few enough to keep sweeps short. */
export const PROFILE_RUNS = 1;

/**
 * Variants written once each into a folder of their own, for the runtime to load. A variant whose steps changed since
 * its file was written is written again: the dense baseline keeps its id when a change of provider changes its steps.
 */
export class VariantFiles {
  private readonly files = new Map<string, { steps: string; file: Promise<string> }>();

  constructor(private readonly core: CoreClient, private readonly modelPath: string, private readonly folder: string) {}

  get(v: Variant, signal?: AbortSignal): Promise<string> {
    const steps = JSON.stringify(v.steps);
    const cached = this.files.get(v.id);
    if (cached?.steps === steps) return cached.file;
    const dir = path.join(this.folder, v.id);
    mkdirSync(dir, { recursive: true });
    const output = path.join(dir, `${path.basename(this.modelPath, '.onnx')}.${v.id}.onnx`);
    const names = new Map([[output, `variant ${v.id} (${v.label})`]]);
    const file = namingPaths(names, () => this.core.request({ type: 'write', file: this.modelPath, steps: v.steps, output }, signal), this.folder).then(() => output);
    // A failed or cancelled write is tried again next time.
    file.catch(() => {
      if (this.files.get(v.id)?.file === file) this.files.delete(v.id);
    });
    this.files.set(v.id, { steps, file });
    return file;
  }

  remove(id: string): void {
    this.files.delete(id);
    rmSync(path.join(this.folder, id), { recursive: true, force: true });
  }

  dispose(): void {
    this.files.clear();
    rmSync(this.folder, { recursive: true, force: true });
  }
}

export interface RunContext {
  core: CoreClient;
  runtime: RuntimeClient;
  modelPath: string;
  report: AnalysisReport;
  settings: SessionSettings;
  files: VariantFiles;
  signal: AbortSignal;
  progress: ReportProgress;
  /** The dashboard's calibration data, read; null: synthesized inputs. */
  calibration: Calibration | null;
}

function runtimeSettings(settings: SessionSettings): RuntimeSettings {
  return { ep: settings.executionProviders };
}

/**
 * The sweep's lengths the model can take: a learned position table bounds them (GPT-2's 1024, a test model's 64), and a
 * longer synthesized input would fail inside onnxruntime. What is dropped is said, never silently.
 */
export function sweepLengths(report: AnalysisReport, settings: SessionSettings): { seqs: number[]; warning: string | null } {
  // An image model runs at its own image size whatever length is asked for: one point, its patch grid.
  if (isVision(report.model)) return { seqs: [], warning: null };
  // A model exported with fixed shapes runs at its one length.
  const fixed = fixedTokens(report.model.inputs);
  if (fixed !== undefined) {
    const others = settings.sequenceLengths.filter((s) => s !== fixed);
    return { seqs: [fixed], warning: others.length ? `the model was exported for exactly ${fixed} tokens: lengths ${others.join(', ')} of attentionLens.sweep.sequenceLengths were left out; ran at ${fixed}` : null };
  }
  const { kept, dropped } = usableLengths(report.model, settings.sequenceLengths);
  const limit = report.model.maxPositions;
  if (dropped.length === 0 || limit === undefined) return { seqs: kept, warning: null };
  const seqs = kept.length ? kept : [limit];
  return { seqs, warning: `the model takes at most ${limit} positions: lengths ${dropped.join(', ')} of attentionLens.sweep.sequenceLengths were left out${kept.length ? '' : `; ran at ${limit}`}` };
}

/** A warning with the variants' scratch files named as people know them: by the variant, not a temporary path. */
export function namePaths(text: string, names: Map<string, string>, scratch?: string): string {
  let out = text;
  for (const [file, name] of names) out = out.split(file).join(name);
  // Whatever else lies in the scratch folder (a save's temporary file) is no file a person knows either.
  if (scratch) out = out.replace(new RegExp(`${scratch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[^\\s'"]*`, 'g'), 'a temporary file');
  return out;
}

/** Runs `work`; an error it raises names the scratch files as people know them (its message is what they see). */
export async function namingPaths<T>(names: Map<string, string>, work: () => Promise<T>, scratch?: string): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (e instanceof Error) e.message = namePaths(e.message, names, scratch);
    throw e;
  }
}

/** What a run feeds: the calibration data's first `length.seq` tokens (or its inputs), else synthesized inputs. */
export interface RunInputs {
  source: InputSource;
  /** Where the inputs come from and why this long, for the screen. */
  description: string;
  /** The fed tokens as text (text and .bytes files). */
  labels: string[] | null;
}

export function runInputs(ctx: Pick<RunContext, 'report' | 'calibration'>, length: DefaultLength): RunInputs {
  const infos = ctx.report.model.inputs;
  if (!ctx.calibration) return { source: { synthesis: { seq: length.seq }, infos }, description: `synthesized: ${length.reason}`, labels: null };
  const fed = calibrationInputs(ctx.calibration, infos, length.seq);
  return { source: fed.source, description: fed.tokens === null ? fed.description : `${fed.description}; ${length.reason}`, labels: fed.labels };
}

/** The variants to time: the chosen ones, and the fused original when none of them is exact (dense-baseline.ts). */
async function withDenseBaseline(ctx: RunContext, chosen: Variant[]): Promise<{ variants: Variant[]; exact: Set<string>; scope: Map<string, BoundScope> }> {
  const { exact, scope } = await classify(ctx.core, chosen, ctx.signal);
  if (chosen.length === 0 || exact.size > 0) return { variants: chosen, exact, scope };
  ctx.progress(0, 'fusing the original: the dense baseline');
  const dense = await denseBaseline(ctx.core, ctx.modelPath, ctx.settings.executionProviders[0], ctx.signal);
  if (!dense) return { variants: chosen, exact, scope };
  exact.add(dense.id);
  scope.set(dense.id, 'none');
  return { variants: [...chosen, dense], exact, scope };
}

export async function runBenchmark(ctx: RunContext, chosen: Variant[]): Promise<SpeedResults> {
  const { core, signal, progress, settings } = ctx;
  const { variants, exact, scope } = await withDenseBaseline(ctx, chosen);
  progress(0, 'writing the variants');
  const files = await Promise.all(variants.map((v) => ctx.files.get(v, signal)));
  const keyOfPath = new Map<string, string>([[ctx.modelPath, ORIGINAL], ...variants.map((v, i) => [files[i], v.id] as [string, string])]);
  const models: BenchModel[] = [{ path: ctx.modelPath, sites: profileSites(ctx.report.sites), infos: ctx.report.model.inputs }];
  const names = new Map(variants.map((v, i) => [files[i], `variant ${v.id} (${v.label})`]));
  // Each variant's own analysis names its sites' nodes, so the profiler attributes its kernel time correctly.
  const measures: SiteMeasures[] = [];
  for (const f of files) {
    const r = await namingPaths(names, () => core.request({ type: 'analyze', file: f }, signal));
    models.push({ path: f, sites: profileSites(r.sites), infos: withReferenceLayout(ctx.report.model.inputs, r.model.inputs) });
    measures.push(siteMeasures(r.sites));
  }
  const { seqs: requested, warning } = sweepLengths(ctx.report, settings);
  const tracker = new BenchProgress(models.length);
  const result = await namingPaths(names, () => ctx.runtime.bench(
    {
      models,
      settings: runtimeSettings(settings),
      // No points: the model's own size (an image model's; text models always get their sweep's lengths).
      ...(requested.length ? { points: requested.map((seq) => ({ seq, past: 0 })) } : {}),
      warmup: settings.warmup,
      minRuns: settings.iterations,
      minTimeMs: settings.minTimeMs,
      profileRuns: PROFILE_RUNS,
    },
    { signal, onProgress: (p) => progress(tracker.fraction(p), describeProgress(p), p.phase === 'warmup' || p.phase === 'timed') },
  ));
  const { points, baselines } = speedPoints(result.results, keyOfPath, exact);
  // The lengths that ran, as the runtime reports them (an image model's patch count), for the bounds and the charts.
  const seqs = [...new Set(result.results.map((e) => e.seq))].sort((a, b) => a - b);
  progress(1, 'computing the FLOP bounds');
  const bounds = (
    await Promise.all(variants.map((v) => core.request({ type: 'bounds', file: ctx.modelPath, variant: v.id, steps: v.steps, seqs }, signal)))
  ).flat();
  return {
    ep: result.results[0]?.ep ?? settings.executionProviders[0],
    iterations: settings.iterations,
    minTimeMs: settings.minTimeMs,
    warmup: settings.warmup,
    seqs,
    variants: variants.map((v, i) => ({ id: v.id, label: v.label, boundScope: scope.get(v.id) ?? 'none', measures: measures[i] })),
    originalMeasures: siteMeasures(ctx.report.sites),
    points,
    baselines,
    bounds,
    warnings: [...new Set([...(warning ? [warning] : []), ...result.results.flatMap((e) => [...e.provider.warnings, ...e.inputWarnings])].map((w) => namePaths(w, names)))],
    finishedAt: new Date().toISOString(),
  };
}

/**
 * What each variant's rules do, from their families. Exact variants compute what the original computes, candidates
 * for the dense baseline: every rule is of the structure family (how attention is written, e.g. a fused kernel). The
 * bound scope says which measured share their FLOP ratio bounds: pruning shrinks whole sites (projections included),
 * sparse rules the score path; shared projections and pure restructuring are not bounded by the analytic FLOPs.
 */
async function classify(core: CoreClient, variants: Variant[], signal: AbortSignal): Promise<{ exact: Set<string>; scope: Map<string, BoundScope> }> {
  const family = new Map((await core.request({ type: 'rules' }, signal)).map((r) => [r.name, r.family]));
  const exact = new Set<string>();
  const scope = new Map<string, BoundScope>();
  for (const v of variants) {
    const families = v.preview.applied.map((a) => family.get(a.rule));
    if (isExactVariant(v.preview.applied.map((a) => a.rule), (r) => family.get(r))) exact.add(v.id);
    scope.set(v.id, families.includes('shared') || families.includes(undefined) ? 'none' : families.includes('prune') ? 'site' : families.includes('sparse') ? 'core' : 'none');
  }
  return { exact, scope };
}

/** Every variant against the original on the same inputs: the calibration data, or synthesized at the model's length. */
export async function runComparison(ctx: RunContext, variants: Variant[]): Promise<AccuracyResults> {
  const { settings, signal, progress } = ctx;
  const fed = runInputs(ctx, defaultLength(ctx.report.model));
  const out = [];
  const warnings = new Set<string>();
  let inputs = '';
  let ep = settings.executionProviders[0];
  for (const [i, v] of variants.entries()) {
    progress(i / variants.length, `${v.label}: writing`);
    const file = await ctx.files.get(v, signal);
    progress((i + 0.5) / variants.length, `${v.label}: running both models`);
    const names = new Map([[file, `variant ${v.id} (${v.label})`]]);
    const r = await namingPaths(names, () => ctx.runtime.compare({ a: ctx.modelPath, b: file, settings: runtimeSettings(settings), inputs: fed.source }, { signal }));
    for (const w of [...r.providerA.warnings, ...r.providerB.warnings, ...r.fed.warnings]) warnings.add(namePaths(w, names));
    inputs = `${describeFed(r.fed)}; ${fed.description}`;
    ep = r.providerA.used;
    out.push(variantAccuracy(v, r));
  }
  return { ep, inputs, variants: out, warnings: [...warnings], finishedAt: new Date().toISOString() };
}

/**
 * Largest map sent to a dashboard (calibration.ts): heads × queries × keys probabilities. A webview gets them as JSON and
 * keeps them in its saved state, so 512 tokens × 8 heads (2M values, tens of MB) is already too much to stay responsive.
 */
export { MAX_MAP_VALUES };

/** One site's attention probabilities and head statistics, with a sparse pattern's recall when one is given. */
export async function runMaps(ctx: RunContext, site: SiteInfo, pattern: string | null): Promise<AttentionMaps> {
  const { signal, progress, settings } = ctx;
  const length = mapsLength(ctx.report, site.heads ?? 1, settings.mapsSequenceLength);
  const fed = runInputs(ctx, length);
  progress(0.1, 'adding the probabilities to the outputs');
  const exposed = await ctx.core.request({ type: 'exposeMaps', file: ctx.modelPath, sites: [site.id] }, signal);
  try {
    progress(0.4, 'running the model');
    const names = new Map([[exposed.model, `${path.basename(ctx.modelPath)} (with its attention probabilities as outputs)`]]);
    const r = await namingPaths(names, () => ctx.runtime.maps(
      {
        model: exposed.model,
        sites: exposed.sites,
        settings: runtimeSettings(settings),
        inputs: fed.source,
        ...(pattern ? { pattern } : {}),
        includeProbabilities: true,
      },
      { signal },
    ));
    const values = r.sites.reduce((n, m) => n + ('unknown' in m || !m.probabilities ? 0 : m.probabilities.dims.slice(-3).reduce((a, b) => a * b, 1)), 0);
    if (values > MAX_MAP_VALUES) {
      throw userError(
        `the maps of site ${site.id} hold ${values} probabilities, more than a dashboard can draw (${MAX_MAP_VALUES}); ` +
          `${ctx.calibration?.kind === 'inputs' ? 'use a shorter calibration input' : 'lower attentionLens.maps.sequenceLength'}, or use the CLI's \`maps\` command`,
      );
    }
    return attentionMaps(r, site.id, site.causal, new Date().toISOString(), { labels: fed.labels, description: fed.description });
  } finally {
    rmSync(exposed.dir, { recursive: true, force: true });
  }
}
