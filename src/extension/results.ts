// Runtime results turned into the dashboard's plain-JSON shapes (protocol.ts). No `vscode` here: tests check these
// conversions with real runtime output.
import type { AttentionMaps, SpeedPoint, VariantAccuracy } from '../protocol';
import type { BenchEntry, CompareResult, FedInputs, MapsResult } from '../runtime/protocol';
import { userError } from './errors';

/** Bench entries keyed by model path → dashboard points keyed by `original` / variant id. */
export function speedPoints(entries: BenchEntry[], keyOfPath: Map<string, string>): SpeedPoint[] {
  return entries.map((e) => {
    const model = keyOfPath.get(e.model);
    if (model === undefined) throw new Error(`bench returned a model that was not asked for: ${e.model}`);
    return {
      model,
      seq: e.seq,
      latencyMs: { p50: e.latencyMs.p50, p90: e.latencyMs.p90, mean: e.latencyMs.mean, std: e.latencyMs.std, runs: e.latencyMs.n },
      tokensPerSecond: e.tokensPerSecond,
      attentionShare: e.attentionShare,
      attentionCoreShare: e.profile?.attentionCoreShare ?? null,
    };
  });
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
export function attentionMaps(r: MapsResult, site: number, causal: boolean, finishedAt: string): AttentionMaps {
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
