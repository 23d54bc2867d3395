// `attention-lens bench MODEL.onnx [MORE.onnx ...]`: latency, throughput, memory and attention's share of kernel time,
// per model and sequence length. Several models are timed interleaved on the same inputs.
import type { BenchEntry, BenchModel, InputSource, SweepPoint } from '../runtime/protocol';
import { profileSites } from '../runtime/sites';
import { UsageError, intOption, parseArgs } from './args';
import { formatTable } from './format';
import {
  SESSION_OPTIONS, modelLabel, analyzeForRuntime, environment, fmt, intList, pct, printJson, progressPrinter, sessionSettings, withRuntime,
} from './runtime-args';

const USAGE =
  'usage: attention-lens bench MODEL.onnx [MORE.onnx ...] [--ep cpu|cuda|webgpu|dml|coreml[,...]] [--seq N[,N...]] ' +
  '[--decode PAST[,PAST...]] [--batch N] [--iters N] [--warmup N] [--budget-ms N] [--profile-runs N] [--threads N] [--inputs FILE] [--json]';

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, {
    ...SESSION_OPTIONS, inputs: true, seq: true, decode: true, past: true, batch: true, seed: true,
    iters: true, warmup: true, 'budget-ms': true, 'profile-runs': true,
  });
  const models = args.positional;
  if (models.length === 0) throw new UsageError(USAGE);
  const settings = sessionSettings(args);
  const seqs = intList(args, 'seq', 1);
  const decode = intList(args, 'decode', 0);
  const past = args.options.has('past') ? intOption(args, 'past', 0, 0) : 0;
  if (args.options.has('inputs') && (seqs || decode)) throw new UsageError('--inputs fixes the shapes; drop --seq/--decode');
  const points: SweepPoint[] = [...(seqs ?? []).map((seq) => ({ seq, past })), ...(decode ?? []).map((p) => ({ seq: 1, past: p }))];
  if (points.length === 0 && !args.options.has('inputs') && args.options.has('past')) points.push({ seq: 16, past });

  const warnings: string[] = [];
  const benchModels: BenchModel[] = models.map((path) => {
    const report = analyzeForRuntime(path, warnings);
    return report ? { path, sites: profileSites(report.sites), infos: report.model.inputs } : { path };
  });
  // --seq and --past are sweep points here, not synthesis options; the rest (batch, seed, a file) is the input source.
  const source: InputSource = { synthesis: args.options.has('seed') ? { seed: intOption(args, 'seed', 0, 0) } : {} };
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
        ...(args.options.has('batch') ? { batch: intOption(args, 'batch', 1, 1) } : {}),
        warmup: intOption(args, 'warmup', 2, 0),
        ...(args.options.has('iters') || !args.options.has('budget-ms') ? { iters: intOption(args, 'iters', 10, 1) } : {}),
        ...(args.options.has('budget-ms') ? { budgetMs: intOption(args, 'budget-ms', 1000, 1) } : {}),
        profileRuns: intOption(args, 'profile-runs', 3, 0),
      },
      { onProgress: progressPrinter(!json) },
    ),
  );
  for (const e of result.results) {
    for (const w of [...e.provider.warnings, ...e.inputWarnings]) if (!warnings.includes(w)) warnings.push(w);
  }
  const results = result.results.map(summarizeEntry);
  if (json) printJson({ results, environment: environment(), warnings });
  else process.stdout.write(render(result.results, warnings));
  return 0;
}

/** The JSON entry: the contract's fields first, the profile trimmed to what a reader can use. */
function summarizeEntry(e: BenchEntry) {
  const { latencyMs, profile } = e;
  return {
    model: e.model,
    ep: e.ep,
    seq: e.seq,
    past: e.past,
    batch: e.batch,
    latencyMs: { p50: latencyMs.p50, p90: latencyMs.p90, mean: latencyMs.mean, std: latencyMs.std, min: latencyMs.min, max: latencyMs.max, runs: latencyMs.n },
    tokensPerSecond: e.tokensPerSecond,
    attentionShare: e.attentionShare,
    attentionCoreShare: profile?.attentionCoreShare ?? null,
    peakRssMB: e.peakRssMB,
    sessionCreateMs: e.sessionCreateMs,
    warmupMs: e.warmupMs,
    requestedEp: e.provider.requested,
    providerWarnings: e.provider.warnings,
    profile: profile && {
      runsProfiled: profile.runsProfiled,
      totalKernelMs: profile.totalKernelMs,
      attentionKernelMs: profile.attentionKernelMs,
      perSite: profile.perSite,
      byOpType: profile.byOpType.slice(0, 10),
      byProvider: profile.byProvider,
    },
  };
}

function render(entries: BenchEntry[], warnings: string[]): string {
  const rows = entries.map((e) => [
    modelLabel(e.model), e.ep, String(e.seq), String(e.past), fmt(e.latencyMs.p50, 2), fmt(e.latencyMs.p90, 2),
    `${fmt(e.latencyMs.mean, 2)} ± ${fmt(e.latencyMs.std, 2)}`, fmt(e.tokensPerSecond, 0), pct(e.attentionShare),
    pct(e.profile?.attentionCoreShare), fmt(e.peakRssMB, 0),
  ]);
  const lines = [
    formatTable(['model', 'ep', 'seq', 'past', 'p50 ms', 'p90 ms', 'mean ± std ms', 'tok/s', 'attention', 'scores', 'peak RSS MB'], rows),
    '',
    "attention: share of kernel time in the analysis' attention sites (projections included); scores: QK, mask, softmax and PV alone.",
  ];
  for (const w of warnings) lines.push(`warning: ${w}`);
  return lines.join('\n') + '\n';
}
