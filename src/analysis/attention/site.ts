// The facts a matcher gathers about one attention block before it becomes a report entry.
import type { Node, Value } from '../ir/graph';
import type { MaskType, PositionScheme, ProjectionInfo } from '../report/types';

export interface RawSite {
  form: string;
  kind: 'self' | 'cross';
  causal: boolean;
  heads: number | null;
  kvHeads: number | null;
  headDim: number | null;
  /** Head size of V when it differs from Q/K's (rare; MLA-style models). */
  vHeadDim?: number | null;
  scale: number | null;
  maskType: MaskType;
  window?: number;
  softcap?: number;
  position: PositionScheme;
  projections: { q?: ProjectionInfo; k?: ProjectionInfo; v?: ProjectionInfo; o?: ProjectionInfo };
  kvCache: { reads: boolean; writes: boolean; pastInputs: string[]; presentOutputs: string[] };
  anchors: { softmax?: string; qk?: string; pv?: string; fused?: string };
  /** The node that orders the site in the graph (Softmax or the fused op). */
  anchor: Node;
  nodes: Set<Node>;
  notes: string[];
  /** Values for later passes: Q as it enters Q·Kᵀ, K, V and the block's output. */
  io: { q?: Value; k?: Value; v?: Value; out?: Value };
}
