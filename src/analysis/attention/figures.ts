// The figures a matcher read for a site (head counts, head size) must be possible before anything is built from them:
// the fused binding makes a table per head, the rewriters cut weights per head. A mutated reshape target or attribute
// can make the matchers read 2^53 heads, a head size of 0.06, or 68 heads of 32 in front of a 128-feature projection;
// such a site is reported as unmatched, with the reason, instead.
import type { Graph } from '../ir/graph';
import type { ProjectionInfo } from '../report/types';
import type { RawSite } from './site';

const MAX_HEADS = 65536;

const whole = (x: number | null | undefined, max = Number.MAX_SAFE_INTEGER) => x === null || x === undefined || (Number.isSafeInteger(x) && x >= 1 && x <= max);

/** Why the site's figures cannot be right, or undefined when they can. */
export function impossibleFigures(graph: Graph, s: RawSite): string | undefined {
  const { heads, kvHeads, headDim } = s;
  if (!whole(heads, MAX_HEADS) || !whole(kvHeads, MAX_HEADS)) return `it reads ${heads} query heads and ${kvHeads} KV heads, not whole numbers from 1 to ${MAX_HEADS}`;
  // KV heads need not divide the query heads: a pruned written-out site maps its query heads to KV heads one by one.
  if (!whole(headDim) || !whole(s.vHeadDim)) return `it reads a head size of ${headDim}${s.vHeadDim ? ` (V: ${s.vHeadDim})` : ''}, not a whole number`;
  // A weight that Q shares with K or V (a packed in_proj the binding takes apart) holds more than Q's features.
  const { q, k, v } = s.projections;
  const shared = q && (k?.weight === q.weight || v?.weight === q.weight);
  const width = q && !shared ? projectionWidth(graph, q) : undefined;
  if (heads && headDim && width !== undefined && heads * headDim !== width) {
    return `${heads} heads of ${headDim} do not fill its Q projection's ${width} features`;
  }
  return undefined;
}

/** Output features of a projection whose weight is a 2-D initializer (its slice, for a fused one); else undefined. */
function projectionWidth(graph: Graph, p: ProjectionInfo): number | undefined {
  if (p.fused) return p.sliceStart !== undefined && p.sliceEnd !== undefined ? p.sliceEnd - p.sliceStart : undefined;
  const node = graph.nodeByName(p.node);
  if (!node || node.domain !== '' || (node.opType !== 'MatMul' && node.opType !== 'Gemm')) return undefined;
  const dims = graph.initializers.get(p.weight)?.dims;
  if (dims?.length !== 2) return undefined;
  return p.layout === 'in_out' ? dims[1] : dims[0];
}
