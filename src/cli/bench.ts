// `attention-lens bench MODEL.onnx [MORE.onnx ...]`: latency, throughput, memory and attention's share of kernel time,
// per model and sequence length. Several models are timed interleaved on the same inputs.
import type { BenchEntry, BenchModel, InputSource, SweepPoint } from '../runtime/protocol';
import { profileSites } from '../runtime/sites';
import { UsageError, intOption, parseArgs } from './args';
import { formatTable } from './format';
import { type CommandHelp, SESSION_HELP, specOf, usageLine } from './help';
import { defaultLength, isVision } from '../shared/lengths';
import {
  modelLabel, analyzeForRuntime, environment, fmt, intList, pct, printJson, progressPrinter, sessionSettings, withRuntime,
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
    { name: 'inputs', value: 'FILE', help: 'inputs instead of synthesized ones (they fix the shapes, so no --seq/--decode)' },
    { name: 'iters', value: 'N', help: 'timed runs per model and point', default: '10' },
    { name: 'warmup', value: 'N', help: 'untimed runs first', default: '2' },
    { name: 'budget-ms', value: 'N', help: 'time budget per model and point instead of a fixed --iters' },
    { name: 'profile-runs', value: 'N', help: "profiled runs for attention's share of the time (0: no profile)", default: '3' },
  ],
  example: 'attention-lens bench examples/demo-llama.onnx --seq 128,512 --iters 5',
};

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, specOf(help.options));
  const models = args.positional;
  if (models.length === 0) throw new UsageError(usageLine(help));
  const settings = sessionSettings(args);
  const seqs = intList(args, 'seq', 1);
  const decode = intList(args, 'decode', 0);
  const past = args.options.has('past') ? intOption(args, 'past', 0, 0) : 0;
  if (args.options.has('inputs') && (seqs || decode)) throw new UsageError('--inputs fixes the shapes; drop --seq/--decode');
  const points: SweepPoint[] = [...(seqs ?? []).map((seq) => ({ seq, past })), ...(decode ?? []).map((p) => ({ seq: 1, past: p }))];

  const warnings: string[] = [];
  const vision = new Set<string>();
  const reports = models.map((path) => analyzeForRuntime(path, warnings));
  const benchModels: BenchModel[] = models.map((path, i) => {
    const report = reports[i];
    if (report && isVision(report.model)) vision.add(path);
    return report ? { path, sites: profileSites(report.sites), infos: report.model.inputs } : { path };
  });
  // Without --seq: the first model's default length (its own, or 512 tokens), never the synthesizer's handful.
  if (points.length === 0 && !args.options.has('inputs') && !vision.has(models[0])) points.push({ seq: defaultLength(reports[0]?.model).seq, past });
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
  else process.stdout.write(render(result.results, warnings, vision));
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

/** Image models have no token count: their rows say "image" and their throughput is images per second. */
function render(entries: BenchEntry[], warnings: string[], vision: Set<string>): string {
  const rows = entries.map((e) => [
    modelLabel(e.model), e.ep, vision.has(e.model) ? 'image' : String(e.seq), String(e.past), fmt(e.latencyMs.p50, 2), fmt(e.latencyMs.p90, 2),
    `${fmt(e.latencyMs.mean, 2)} ± ${fmt(e.latencyMs.std, 2)}`,
    vision.has(e.model) ? `${fmt((1000 * e.batch) / e.latencyMs.p50, 0)} img/s` : fmt(e.tokensPerSecond, 0), pct(e.attentionShare),
    pct(e.profile?.attentionCoreShare), fmt(e.peakRssMB, 0),
  ]);
  const lines = [
    formatTable(['model', 'ep', 'seq', 'past', 'p50 ms', 'p90 ms', 'mean ± std ms', 'throughput', 'attention', 'scores', 'peak RSS MB'], rows),
    '',
    "attention: share of kernel time in the analysis' attention sites (projections included); scores: QK, mask, softmax and PV alone.",
  ];
  for (const w of warnings) lines.push(`warning: ${w}`);
  return lines.join('\n') + '\n';
}
