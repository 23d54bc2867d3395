// Runtime results turned into the dashboard's plain-JSON shapes (protocol.ts). No `vscode` here: tests check these
// conversions with real runtime output.
import { ORIGINAL, type AttentionMaps, type SpeedBaseline, type SpeedPoint, type VariantAccuracy } from '../protocol';
import { identity, speedup } from '../runtime/measure/stats';
import type { BenchEntry, CompareResult, FedInputs, MapsResult } from '../runtime/protocol';
import { userError } from './errors';

/**
 * Bench entries keyed by model path → dashboard points keyed by `original` / variant id, each with its speedup over
 * the original and over the length's dense baseline: the fastest (lowest median) of the `exact` models, those that
 * compute what the original computes (the original itself, and variants that only change how attention is written,
 * such as a fused kernel). Models of one length ran interleaved round by round, so their runs pair up.
 */
export function speedPoints(entries: BenchEntry[], keyOfPath: Map<string, string>, exact: ReadonlySet<string>): { points: SpeedPoint[]; baselines: SpeedBaseline[] } {
  const keyed = entries.map((e) => {
    const model = keyOfPath.get(e.model);
    if (model === undefined) throw new Error(`bench returned a model that was not asked for: ${e.model}`);
    return { model, e };
  });
  const points: SpeedPoint[] = [];
  const baselines: SpeedBaseline[] = [];
  for (const seq of [...new Set(entries.map((e) => e.seq))]) {
    const atSeq = keyed.filter((k) => k.e.seq === seq);
    const original = atSeq.find((k) => k.model === ORIGINAL);
    if (!original) throw new Error(`bench returned no timing of the original at ${seq} tokens`);
    const candidates = atSeq.filter((k) => k.model === ORIGINAL || exact.has(k.model));
    const baseline = candidates.reduce((best, k) => (k.e.latencyMs.p50 < best.e.latencyMs.p50 ? k : best));
    baselines.push({ seq, model: baseline.model });
    for (const { model, e } of atSeq) {
      const l = e.latencyMs;
      points.push({
        model,
        seq: e.seq,
        latencyMs: { p50: l.p50, p90: l.p90, mean: l.mean, std: l.std, runs: l.n, ci95: l.ci95, outliers: l.outliers },
        tokensPerSecond: e.tokensPerSecond,
        attentionShare: e.attentionShare,
        attentionCoreShare: e.profile?.attentionCoreShare ?? null,
        maskBuildShare: e.profile?.maskBuildShare ?? null,
        vsOriginal: e === original.e ? identity() : speedup(original.e.samplesMs, e.samplesMs),
        vsBaseline: e === baseline.e ? identity() : speedup(baseline.e.samplesMs, e.samplesMs),
        warnings: e.timingWarnings,
      });
    }
  }
  return { points, baselines };
}

export function variantAccuracy(variant: { id: string; label: string }, r: CompareResult): VariantAccuracy {
  return {
    variant: variant.id,
    label: variant.label,
    outputs: r.outputs,
    mismatched: r.mismatched,
    onlyInOriginal: r.onlyInA,
    onlyInVariant: r.onlyInB,
  };
}

/** "input_ids[1,64] (synthesized), attention_mask[1,64] (synthesized)" */
export function describeFed(fed: FedInputs): string {
  return Object.entries(fed.shapes)
    .map(([name, s]) => `${name}[${s.dims.join(',')}]${fed.synthesized.includes(name) ? ' (synthesized)' : ''}`)
    .join(', ');
}

/** One site's map from a maps result: batch item 0 only, as plain numbers. */
export function attentionMaps(r: MapsResult, site: number, causal: boolean, finishedAt: string, fed: { labels: string[] | null; description: string }): AttentionMaps {
  const m = r.sites.find((s) => s.site === site);
  if (!m) throw new Error(`the maps run returned no map for site ${site}`);
  if ('unknown' in m) throw userError(`site ${site}: the attention map cannot be read: ${m.unknown}`);
  const p = m.probabilities;
  if (!p) throw new Error(`the maps run returned no probabilities for site ${site}`);
  if (m.layout.windows > 1) {
    throw userError(`site ${site} attends within ${m.layout.windows} windows; the dashboard draws one map per site (use the CLI's \`maps\` command for per-window maps)`);
  }
  const keys = p.dims[p.dims.length - 1];
  const queries = p.dims[p.dims.length - 2];
  const heads = p.dims.length >= 3 ? p.dims[p.dims.length - 3] : 1;
  const count = heads * queries * keys;
  if (!(p.data instanceof Float32Array || p.data instanceof Float64Array)) {
    throw new Error(`site ${site}: attention probabilities of type ${p.dtype} cannot be drawn (float32 or float64 expected)`);
  }
  return {
    site,
    // Labels belong to the keys; a map whose keys are not the fed tokens (a cache in front) gets none.
    tokens: fed.labels && fed.labels.length === keys ? fed.labels : null,
    lengthNote: fed.description,
    causal,
    pattern: r.pattern ?? null,
    dims: [heads, queries, keys],
    probabilities: Array.from(p.data.subarray(0, count)),
    heads: m.stats.heads,
    maxRowSumError: m.stats.maxRowSumError,
    maxFutureMass: m.stats.maxFutureMass,
    ep: r.provider.used,
    inputs: describeFed(r.fed),
    finishedAt,
  };
}
