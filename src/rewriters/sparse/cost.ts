// Analytic cost of a rewritten site, on the analysis' terms (analyze.ts attentionCost): Q·Kᵀ and P·V cost
// 2·heads·rows·keys·headDim FLOPs each and the attention matrix is heads·rows·keys float32 values, where rows and keys
// are what the graph computes (padding included), not what the pattern lets through. A mask form computes all S keys
// of every query, so its cost stays the dense one; the compute-reducing forms compute fewer.
import type { SiteInfo } from '../../analysis/report/types';
import type { SiteChange } from '../rule';

export interface Computed {
  /** Query rows the graph computes (S, or S rounded up to whole blocks). */
  rows: number;
  /** Keys computed per query row. */
  keys: number;
  /** Extra FLOPs outside Q·Kᵀ and P·V that the form adds (block selection), if any. */
  extraFlops?: number;
}

export function costOf(info: SiteInfo, c: Computed): { flops: number | null; bytes: number | null } {
  if (!info.heads || !info.headDim) return { flops: null, bytes: null };
  return {
    flops: 2 * info.heads * c.rows * c.keys * 2 * info.headDim + (c.extraFlops ?? 0),
    bytes: 4 * info.heads * c.rows * c.keys,
  };
}

/** Mean keys a query of the unmodified site sees at `s` tokens. */
export function denseKeysPerQuery(info: SiteInfo, s: number): number {
  if (info.window !== undefined && info.causal) return keysCausalWindow(info.window, s);
  return info.causal ? (s + 1) / 2 : s;
}

function keysCausalWindow(w: number, s: number): number {
  let t = 0;
  for (let i = 0; i < s; i++) t += Math.min(i + 1, w);
  return t / s;
}

export function describeBefore(info: SiteInfo, s: number): Record<string, unknown> {
  return {
    pattern: info.window !== undefined ? `existing window ${info.window}` : info.causal ? 'dense causal' : 'dense',
    heads: info.heads,
    kvHeads: info.kvHeads,
    keysPerQuery: round(denseKeysPerQuery(info, s)),
    keysComputedPerQuery: s,
  };
}

export function siteChange(
  info: SiteInfo, seqLen: number, after: Record<string, unknown>, computed: Computed, nodes: { added: number; removed: number },
): SiteChange {
  const cost = costOf(info, computed);
  return {
    site: info.id,
    before: describeBefore(info, seqLen),
    after: { ...after, keysComputedPerQuery: computed.keys, ...(computed.rows !== seqLen ? { rowsComputed: computed.rows } : {}) },
    flopsBefore: info.flops,
    flopsAfter: cost.flops,
    bytesBefore: info.attnMatrixBytes,
    bytesAfter: cost.bytes,
    nodesAdded: nodes.added,
    nodesRemoved: nodes.removed,
  };
}

export function round(x: number): number {
  return Math.round(x * 100) / 100;
}
