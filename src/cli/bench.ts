// `attention-lens bench MODEL.onnx [MORE.onnx ...]`: latency, throughput, memory and attention's share of kernel time,
// per model and sequence length. Several models are timed interleaved on the same inputs.
import { withReferenceLayout } from '../analysis/layout/inherit-axes';
import type { BenchEntry, BenchModel, BenchRequest, InputSource, SessionSettings, SweepPoint } from '../runtime/protocol';
import { contentionWarning } from '../runtime/measure/trust';
import { profileSites } from '../runtime/sites';
import { type ParsedArgs, UsageError, intOption, parseArgs } from './args';
import { BENCH_TIMING_HELP, timingOptions } from './bench-options';
import { type FusedBaseline, writeFusedBaseline } from './bench-fused';
import { type SpeedupJson, benchSpeedups, speedupCell } from './bench-speedups';
import { formatTable } from './format';
import { type CommandHelp, IMAGE_SIZE_HELP, SESSION_HELP, specOf, usageLine } from './help';
import { defaultLength, isVision } from '../shared/lengths';
import {
  modelLabel, analyzeForRuntime, checkBatch, checkLength, environment, imageSizeOption, fmt, intList, pct, printJson, progressPrinter, sessionSettings, withRuntime,
} from './runtime-args';

export const help: CommandHelp = {
  name: 'bench',
  summary: 'Times models on onnxruntime: latency (p50, p90, mean ± std), throughput (tokens/s, or images/s for image models), ' +
    "peak memory, and attention's share of kernel time from the profiler. Several models are timed interleaved on the same inputs.",
  synopsis: 'MODEL.onnx [MORE.onnx ...] [options]',
  options: [
    ...SESSION_HELP,
    { name: 'seq', value: 'N[,N...]', help: 'new tokens per run: one point per length (a sweep)', default: "the model's default length (see compare --help); image models: their image size" },
    { name: 'decode', value: 'PAST[,PAST...]', help: 'decode points: one new token after PAST cached ones (models with a KV cache)' },
    { name: 'past', value: 'N', help: 'cached tokens for the --seq points', default: '0' },
    { name: 'batch', value: 'N', help: 'batch size', default: '1' },
    { name: 'seed', value: 'N', help: 'seed of the synthesized values', default: '0' },
    IMAGE_SIZE_HELP,
    { name: 'inputs', value: 'FILE', help: 'inputs instead of synthesized ones (they fix the shapes, so no --seq/--decode)' },
    ...BENCH_TIMING_HELP.filter((o) => o.name !== 'profile-runs'),
    {
      name: 'baseline', value: 'N|fused',
      help: 'the model (1-based) that speedups vsBaseline are measured against, e.g. the fastest exact dense variant; fused: the first model fused for the provider is written for the run and timed too, and at each point the faster of the two is the baseline',
      default: '1',
    },
    ...BENCH_TIMING_HELP.filter((o) => o.name === 'profile-runs'),
  ],
  example: 'attention-lens bench examples/demo-llama.onnx --seq 128,512 --min-runs 5',
};

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, specOf(help.options));
  const models = [...args.positional];
  if (models.length === 0) throw new UsageError(usageLine(help));
  const settings = sessionSettings(args);
  const ep = ([settings.ep ?? 'cpu'].flat()[0] ?? 'cpu');
  const fused = args.options.get('baseline') === 'fused' ? writeFusedBaseline(models[0], ep) : null;
  try {
    if (fused?.file) models.push(fused.file);
    return await benchModels(args, models, settings, fused);
  } finally {
    fused?.dispose();
  }
}

/** The models a baseline may be, by index: the one `--baseline N` names, or the first and its fused copy. */
function baselineCandidates(args: ParsedArgs, models: string[], fused: FusedBaseline | null): number[] {
  if (fused) return fused.file ? [0, models.length - 1] : [0];
  const raw = args.options.get('baseline');
  if (typeof raw === 'string' && !/^\d+$/.test(raw)) throw new UsageError(`--baseline: a model's number (1-based) or 'fused', not '${raw}'`);
  const baseline = intOption(args, 'baseline', 1, 1) - 1;
  if (baseline >= models.length) throw new UsageError(`--baseline ${baseline + 1}: there are only ${models.length} model(s)`);
  return [baseline];
}

async function benchModels(args: ParsedArgs, models: string[], settings: SessionSettings, fused: FusedBaseline | null): Promise<number> {
  const baseline = baselineCandidates(args, models, fused);
  const timing = timingOptions(args);
  const seqs = intList(args, 'seq', 1);
  const decode = intList(args, 'decode', 0);
  const past = args.options.has('past') ? intOption(args, 'past', 0, 0) : 0;
  if (args.options.has('inputs') && (seqs || decode)) throw new UsageError('--inputs fixes the shapes; drop --seq/--decode');
  const points: SweepPoint[] = [...(seqs ?? []).map((seq) => ({ seq, past })), ...(decode ?? []).map((p) => ({ seq: 1, past: p }))];

  const warnings: string[] = [];
  const notes = fused ? [fused.note] : [];
  const vision = new Set<string>();
  const reports = models.map((path) => analyzeForRuntime(path, warnings));
  const benchModels: BenchModel[] = models.map((path, i) => {
    const report = reports[i];
    if (report && isVision(report.model)) vision.add(path);
    // Later models are usually variants of the first: they take its input layout where theirs is not established.
    const infos = report && reports[0] && i > 0 ? withReferenceLayout(reports[0].model.inputs, report.model.inputs) : report?.model.inputs;
    return report ? { path, sites: profileSites(report.sites), infos } : { path };
  });
  for (const r of reports) for (const p of points) checkLength(r, p.seq + p.past, p.past ? `--seq ${p.seq} after ${p.past} past tokens` : `--seq ${p.seq}`, p.seq);
  const batch = args.options.has('batch') ? intOption(args, 'batch', 1, 1) : undefined;
  if (batch !== undefined) for (const r of reports) checkBatch(r, batch);
  // Without --seq: the first model's default length (its own, or 512 tokens), never the synthesizer's handful.
  if (points.length === 0 && !args.options.has('inputs') && !vision.has(models[0])) points.push({ seq: defaultLength(reports[0]?.model).seq, past });
  // --seq and --past are sweep points here, not synthesis options; the rest (batch, seed, a file) is the input source.
  const imageSize = imageSizeOption(args, reports[0]);
  const source: InputSource = { synthesis: { ...(args.options.has('seed') ? { seed: intOption(args, 'seed', 0, 0) } : {}), ...(imageSize !== undefined ? { imageSize } : {}) } };
  const file = args.options.get('inputs');
  if (typeof file === 'string') source.file = file;

  const json = args.options.has('json');
  const result = await withRuntime((client) =>
    client.bench(
      {
        models: benchModels,
        settings,
        inputs: source,
        ...(points.length > 0 ? { points } : {}),
        ...(batch !== undefined ? { batch } : {}),
        ...timing,
      },
      { onProgress: progressPrinter(!json) },
    ),
  );
  for (const e of result.results) {
    for (const w of [...e.provider.warnings, ...e.inputWarnings]) if (!warnings.includes(w)) warnings.push(w);
  }
  const speedups = benchSpeedups(result.results, models.length, baseline);
  const results = result.results.map((e, i) => summarizeEntry(e, speedups[i]));
  if (json) printJson({ results, environment: environment(), warnings, ...(notes.length ? { notes } : {}) });
  else process.stdout.write(render(result.results, speedups, baseline, warnings, vision) + notes.map((n) => `note: ${n}\n`).join(''));
  return 0;
}

/** The JSON entry: the contract's fields first, the profile trimmed to what a reader can use, the raw runs last. */
function summarizeEntry(e: BenchEntry, speedup: SpeedupJson | null) {
  const { latencyMs: l, profile } = e;
  return {
    model: e.model,
    ep: e.ep,
    seq: e.seq,
    past: e.past,
    batch: e.batch,
    latencyMs: { p50: l.p50, p90: l.p90, mean: l.mean, std: l.std, min: l.min, max: l.max, runs: l.n, ci95: l.ci95, iqr: l.iqr, outliers: l.outliers },
    ...(speedup ? { speedup } : {}),
    tokensPerSecond: e.tokensPerSecond,
    attentionShare: e.attentionShare,
    attentionCoreShare: profile?.attentionCoreShare ?? null,
    peakRssMB: e.peakRssMB,
    sessionCreateMs: e.sessionCreateMs,
    warmupMs: e.warmupMs,
    requestedEp: e.provider.requested,
    providerWarnings: e.provider.warnings,
    otherCpuShare: e.otherCpuShare,
    warnings: e.timingWarnings,
    profile: profile && {
      runsProfiled: profile.runsProfiled,
      totalKernelMs: profile.totalKernelMs,
      attentionKernelMs: profile.attentionKernelMs,
      perSite: profile.perSite,
      byOpType: profile.byOpType.slice(0, 10),
      byProvider: profile.byProvider,
    },
    samplesMs: e.samplesMs,
  };
}

/** Image models have no token count: their rows say "image" and their throughput is images per second. */
function render(entries: BenchEntry[], speedups: (SpeedupJson | null)[], baseline: number[], warnings: string[], vision: Set<string>): string {
  const several = speedups.some((s) => s !== null);
  const withBaseline = several && (baseline.length > 1 || baseline[0] > 0);
  const rows = entries.map((e, i) => {
    const s = speedups[i];
    return [
      modelLabel(e.model), e.ep, vision.has(e.model) ? 'image' : String(e.seq), String(e.past),
      `${fmt(e.latencyMs.p50, 2)} [${fmt(e.latencyMs.ci95[0], 2)}–${fmt(e.latencyMs.ci95[1], 2)}]`, fmt(e.latencyMs.p90, 2),
      ...(several ? [s ? speedupCell({ ratio: s.vsFirst, ci95: s.ci95, significant: s.significant }) : '–'] : []),
      ...(withBaseline ? [s ? speedupCell(s.vsBaseline) : '–'] : []),
      vision.has(e.model) ? `${fmt((1000 * e.batch) / e.latencyMs.p50, 0)} img/s` : fmt(e.tokensPerSecond, 0), pct(e.attentionShare), pct(e.profile?.attentionCoreShare), fmt(e.peakRssMB, 0),
    ];
  });
  const header = [
    'model', 'ep', 'seq', 'past', 'p50 ms [95% CI]', 'p90 ms',
    ...(several ? ['speedup vs first [95% CI]'] : []), ...(withBaseline ? [baseline.length > 1 ? 'vs dense baseline' : `vs ${modelLabel(entries[baseline[0]].model)}`] : []),
    'throughput', 'attention', 'scores', 'peak RSS MB',
  ];
  const lines = [formatTable(header, rows), ''];
  lines.push(`runs per model: ${[...new Set(entries.map((e) => e.latencyMs.n))].join(', ')} (models interleaved run by run); intervals: bootstrap of the median, paired by round for speedups.`);
  if (several) lines.push('speedup: the reference\'s median over the model\'s; "≈1" marks a speedup not distinguishable from 1 (its 95% interval contains 1).');
  if (withBaseline && baseline.length > 1) {
    const chosen = [...new Set(speedups.map((s) => s && modelLabel(s.vsBaseline.baseline)).filter((b): b is string => !!b))];
    lines.push(`dense baseline: at each point the faster of ${baseline.map((i) => modelLabel(entries[i].model)).join(' and ')} (${chosen.join(', ')} here).`);
  }
  lines.push("attention: share of kernel time in the analysis' attention sites (projections included); scores: the score path alone (QK to PV with mask and softmax, and the nodes a rule added there; no projections or rotary).");
  // A busy machine is said once per point, not once per model of it.
  const said = new Set<string>();
  for (const e of entries) {
    const where = vision.has(e.model) ? `${e.seq} patches` : `seq ${e.seq}${e.past ? `, past ${e.past}` : ''}`;
    const busy = contentionWarning(e.otherCpuShare);
    if (busy) said.add(`warning: at ${where}, ${busy}`);
    for (const w of e.timingWarnings) if (w !== busy) said.add(`warning: ${modelLabel(e.model)} at ${where}: ${w}`);
  }
  for (const w of warnings) said.add(`warning: ${w}`);
  lines.push(...said);
  return lines.join('\n') + '\n';
}
