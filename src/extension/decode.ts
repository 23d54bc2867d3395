// Decoding with a KV cache, from the dashboard: the time of one new token after chosen numbers of cached ones (the
// CLI's `bench --decode`), and each variant's accuracy over a greedy continuation of a prompt (runtime generate).
// No `vscode` here.
import type { AnalysisReport } from '../analysis/report/types';
import { ORIGINAL, type DecodePoint, type DecodeResults, type GenerationResults, type Variant } from '../protocol';
import { identity, speedup } from '../runtime/measure/stats';
import type { BenchEntry } from '../runtime/protocol';
import { defaultLength } from '../shared/lengths';
import { userError } from './errors';
import { describeProgress } from './progress';
import { type RunContext, namePaths } from './runs';

export function hasKvCache(report: AnalysisReport): boolean {
  return report.model.inputs.some((i) => i.role === 'past_key' || i.role === 'past_value');
}

function requireCache(ctx: RunContext): void {
  if (!hasKvCache(ctx.report)) {
    throw userError(`${ctx.report.model.path} takes no KV cache (no past_key_values inputs): decoding one token at a time needs a model exported with its cache`);
  }
}

/** Past lengths the model can take with one new token: its position table bounds past + 1; what is dropped is said. */
export function usablePasts(report: AnalysisReport, pasts: number[]): { pasts: number[]; warning: string | null } {
  const limit = report.model.maxPositions;
  const sorted = [...new Set(pasts)].sort((a, b) => a - b);
  if (limit === undefined) return { pasts: sorted, warning: null };
  const kept = sorted.filter((p) => p + 1 <= limit);
  const dropped = sorted.filter((p) => p + 1 > limit);
  if (dropped.length === 0) return { pasts: kept, warning: null };
  return {
    pasts: kept.length ? kept : [limit - 1],
    warning: `the model takes at most ${limit} positions: past lengths ${dropped.join(', ')} were left out${kept.length ? '' : `; ran at ${limit - 1}`}`,
  };
}

export async function runDecodeBenchmark(ctx: RunContext, variants: Variant[], asked: number[]): Promise<DecodeResults> {
  requireCache(ctx);
  const { pasts, warning } = usablePasts(ctx.report, asked);
  ctx.progress(0, 'writing the variants');
  const files = await Promise.all(variants.map((v) => ctx.files.get(v, ctx.signal)));
  const keyOfPath = new Map<string, string>([[ctx.modelPath, ORIGINAL], ...variants.map((v, i) => [files[i], v.id] as [string, string])]);
  const result = await ctx.runtime.bench(
    {
      models: [ctx.modelPath, ...files].map((path) => ({ path, infos: ctx.report.model.inputs })),
      settings: { ep: ctx.settings.executionProviders },
      points: pasts.map((past) => ({ seq: 1, past })),
      warmup: ctx.settings.warmup,
      minRuns: ctx.settings.iterations,
      minTimeMs: ctx.settings.minTimeMs,
      profileRuns: 0,
    },
    { signal: ctx.signal, onProgress: (p) => ctx.progress(null, describeProgress(p), p.phase === 'warmup' || p.phase === 'timed') },
  );
  const names = new Map(variants.map((v, i) => [files[i], `variant ${v.id} (${v.label})`]));
  return {
    ep: result.results[0]?.ep ?? ctx.settings.executionProviders[0],
    pasts,
    variants: variants.map((v) => ({ id: v.id, label: v.label })),
    points: decodePoints(result.results, keyOfPath),
    warnings: [...new Set([...(warning ? [warning] : []), ...result.results.flatMap((e) => [...e.provider.warnings, ...e.inputWarnings])].map((w) => namePaths(w, names)))],
    finishedAt: new Date().toISOString(),
  };
}

/** Bench entries → one point per model and past length, each with its speedup over the original (runs paired by round). */
export function decodePoints(entries: BenchEntry[], keyOfPath: Map<string, string>): DecodePoint[] {
  const points: DecodePoint[] = [];
  for (const past of [...new Set(entries.map((e) => e.past))]) {
    const at = entries.filter((e) => e.past === past);
    const original = at.find((e) => keyOfPath.get(e.model) === ORIGINAL);
    if (!original) throw new Error(`bench returned no timing of the original at past ${past}`);
    for (const e of at) {
      const model = keyOfPath.get(e.model);
      if (model === undefined) throw new Error(`bench returned a model that was not asked for: ${e.model}`);
      const l = e.latencyMs;
      points.push({
        model,
        past,
        latencyMs: { p50: l.p50, p90: l.p90, mean: l.mean, std: l.std, runs: l.n, ci95: l.ci95, outliers: l.outliers },
        tokensPerSecond: e.tokensPerSecond,
        vsOriginal: e === original ? identity() : speedup(original.samplesMs, e.samplesMs),
        warnings: e.timingWarnings,
      });
    }
  }
  return points;
}

/** The prompt: the calibration data's first tokens, else synthesized ids; as long as the model allows with the steps. */
function promptOf(ctx: RunContext, steps: number): { prompt?: number[]; promptLength?: number; text: string; pieces: Map<number, string> | null } {
  const room = (ctx.report.model.maxPositions ?? Infinity) - steps;
  if (room < 1) throw userError(`the model takes at most ${ctx.report.model.maxPositions} positions: no room for a prompt before ${steps} new tokens`);
  const length = defaultLength(ctx.report.model);
  const n = Math.min(length.seq, room);
  const cal = ctx.calibration;
  if (!cal?.ids) return { promptLength: n, text: `${n} synthesized tokens`, pieces: null };
  const ids = Array.from(cal.ids.subarray(0, n));
  const pieces = cal.pieces ? new Map<number, string>() : null;
  cal.pieces?.forEach((p, i) => {
    if (!pieces!.has(cal.ids![i])) pieces!.set(cal.ids![i], p);
  });
  return { prompt: ids, text: `the first ${ids.length} tokens of ${cal.file} (${cal.how})`, pieces };
}

export async function runGeneration(ctx: RunContext, variants: Variant[], steps: number): Promise<GenerationResults> {
  requireCache(ctx);
  if (variants.length === 0) throw userError('there are no variants to compare yet: make one in the Rewrite studio');
  const { prompt, promptLength, text, pieces } = promptOf(ctx, steps);
  const rows: GenerationResults['rows'] = [];
  let ep = ctx.settings.executionProviders[0];
  for (const [i, v] of variants.entries()) {
    ctx.progress(i / variants.length, `${v.label}: writing`);
    const file = await ctx.files.get(v, ctx.signal);
    const r = await ctx.runtime.generate(
      { a: ctx.modelPath, b: file, ...(prompt ? { prompt } : { promptLength }), steps, settings: { ep: ctx.settings.executionProviders }, infos: ctx.report.model.inputs },
      { signal: ctx.signal, onProgress: (p) => ctx.progress((i + p.done / Math.max(1, p.total)) / variants.length, `${v.label}: decoding ${p.done}/${p.total}`) },
    );
    ep = r.providerA.used;
    rows.push({
      variant: v.id, label: v.label, tokensOriginal: r.tokensA, tokensVariant: r.tokensB, agreedSteps: r.agreedSteps,
      perStep: r.perStep, top1Agreement: r.top1Agreement, meanKl: r.meanKl, cached: r.cachedA && r.cachedB,
    });
  }
  // Labels for the generated ids that occur in the prompt's text (a tokenizer's other ids are shown as numbers).
  const shown = pieces ? Object.fromEntries(rows.flatMap((r) => [...r.tokensOriginal, ...r.tokensVariant]).filter((id) => pieces.has(id)).map((id) => [id, pieces.get(id)!])) : null;
  return { prompt: text, steps, ep, rows, pieces: shown, finishedAt: new Date().toISOString() };
}
