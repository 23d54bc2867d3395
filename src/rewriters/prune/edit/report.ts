// Per-site figures every head-level rule reports: analytic attention cost at the report's sequence length (the
// analysis' own formula, so rewritten and original sites are costed alike), projection parameter counts, and the
// nodes a rule added and removed.
import { attentionCost } from '../../../analysis/analyze';
import type { GraphBuilder } from '../../../analysis/ir/builder';
import type { Node } from '../../../analysis/ir/graph';
import type { SiteChange } from '../../rule';
import type { SiteStructure } from './structure';

export interface Cost {
  flops: number | null;
  bytes: number | null;
}

export function cost(heads: number, headDim: number | null, vHeadDim: number | null | undefined, seq: number): Cost {
  if (heads === 0) return { flops: 0, bytes: 0 };
  const c = attentionCost({ heads, headDim, vHeadDim }, seq);
  return { flops: c?.flops ?? null, bytes: c?.bytes ?? null };
}

/** Snapshot of the node list; the returned function counts nodes added and removed since. */
export function trackNodes(builder: GraphBuilder): () => { nodesAdded: number; nodesRemoved: number } {
  const before = new Set<Node>(builder.graph.nodes);
  return () => {
    const after = new Set<Node>(builder.graph.nodes);
    let nodesAdded = 0;
    let nodesRemoved = 0;
    for (const n of after) if (!before.has(n)) nodesAdded++;
    for (const n of before) if (!after.has(n)) nodesRemoved++;
    return { nodesAdded, nodesRemoved };
  };
}

/** Weight and bias elements of the site's Q, K, V and O projections for the given head counts (a packed weight once). */
export function projectionParams(s: SiteStructure, heads: number, kvHeads: number): number {
  const d = s.headDim;
  const dv = s.vHeadDim;
  const width = { q: heads * d, k: kvHeads * d, v: kvHeads * dv };
  let total = 0;
  for (const role of ['q', 'k', 'v'] as const) {
    const p = s.proj[role];
    if (!p) continue;
    total += width[role] * (p.inputs + (p.bias ? 1 : 0));
  }
  const o = s.proj.o;
  if (o) total += heads * dv * o.features + (o.bias ? o.features : 0);
  return total;
}

export function siteChange(
  site: number,
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  costBefore: Cost,
  costAfter: Cost,
  nodes: { nodesAdded: number; nodesRemoved: number },
): SiteChange {
  return {
    site,
    before,
    after,
    flopsBefore: costBefore.flops,
    flopsAfter: costAfter.flops,
    bytesBefore: costBefore.bytes,
    bytesAfter: costAfter.bytes,
    ...nodes,
  };
}
