// The facts a matcher gathers about one attention block before it becomes a report entry: the report's fields, plus
// references into the graph that rewriters and later passes need.
import type { Node, Value } from '../ir/graph';
import type { SiteBinding, SiteInfo } from '../report/types';
import type { Layouts } from './layout/bind';

export interface RawSite
  extends Pick<SiteInfo, 'form' | 'kind' | 'causal' | 'heads' | 'kvHeads' | 'headDim' | 'scale' | 'maskType' | 'window' | 'softcap' | 'position' | 'projections' | 'kvCache' | 'anchors' | 'notes' | 'plan'> {
  binding?: SiteBinding;
  /** The axis layout of each value the binding walked through (for passes that rebuild the site). */
  layouts?: Layouts;
  /** Head size of V when it differs from Q/K's (rare; MLA-style models). */
  vHeadDim?: number | null;
  /** The node that orders the site in the graph (Softmax or the fused op). */
  anchor: Node;
  nodes: Set<Node>;
  /** Values for later passes: Q as it enters Q·Kᵀ, K, V and the block's output. */
  io: { q?: Value; k?: Value; v?: Value; out?: Value };
  /** The masks the site applies to its scores as they enter it (added, or a fused operator's mask inputs). */
  maskValues?: Value[];
  /**
   * When `scale` is unknown because the scores are also multiplied by a tensor (a per-head temperature): the product
   * of the scalar factors alone, which a pass that rebuilds the site still has to apply (the tensor stays on the scores).
   */
  scalarScale?: number;
}
