// Measures of a model's sites that speed comparisons read (runtime/measure/trust.ts): how wide the projections are,
// and which kernels compute the scores. Pure, over the report's site records, so the extension and the webview can
// use them without loading a model.
import type { SiteInfo } from './types';

/**
 * How wide the sites' projections are, summed over the sites: Q and the output projection's input are heads·(head
 * size), K and V are KV heads·(head size): (heads + KV heads)·(head size + V's head size) per unit of the model's
 * width. Pruning heads scales the projections' FLOPs by its ratio. Null when a site's heads or size are unknown.
 */
export function projectionWork(sites: readonly Pick<SiteInfo, 'heads' | 'kvHeads' | 'headDim' | 'binding'>[]): number | null {
  let total = 0;
  for (const s of sites) {
    if (!s.heads || !s.headDim) return null;
    total += (s.heads + (s.kvHeads ?? s.heads)) * (s.headDim + (s.binding?.vHeadDim ?? s.headDim));
  }
  return total;
}

/**
 * What computes the sites' scores: the fused operators by name, or `standard ops` (MatMul, Softmax, ...: written out
 * or SDPA-decomposed), sorted and joined. Two models' FLOPs compare as time only when this is the same.
 */
export function scoreKernels(sites: readonly Pick<SiteInfo, 'form'>[]): string {
  const kinds = new Set(sites.map((s) => (s.form === 'unfused' || s.form === 'sdpa-decomposed' ? 'standard ops' : s.form)));
  return [...kinds].sort().join(', ');
}

/** Both measures of one model, as speed comparisons carry them. */
export interface SiteMeasures {
  kernels: string;
  projectionWork: number | null;
}

export function siteMeasures(sites: readonly Pick<SiteInfo, 'heads' | 'kvHeads' | 'headDim' | 'binding' | 'form'>[]): SiteMeasures {
  return { kernels: scoreKernels(sites), projectionWork: projectionWork(sites) };
}
