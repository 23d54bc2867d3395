// The element-wise ops of a written-out site between Q·Kᵀ and the Softmax (scaling, masks, soft-capping, casts) and
// between the Softmax and ·V (casts, dropout, the SDPA NaN guard). The compute-reducing forms keep these nodes and
// feed them blocked tensors instead of S×S ones: an element-wise op does not care about the layout as long as each of
// its other inputs is a scalar, or a mask that the rewrite gathers into the same blocked layout.
import type { Graph, Node, Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import type { RawSite } from '../../analysis/attention/site';
import { isScalarLike } from './values';

export const PRE_OPS = new Set(['Mul', 'Div', 'Add', 'Sub', 'Where', 'Cast', 'Identity', 'Tanh', 'Max', 'Min']);
const POST_OPS = new Set(['Cast', 'Identity', 'Dropout', 'Where', 'IsNaN', 'Mul', 'Div', 'Not', 'Or', 'And']);

export interface PreStep {
  node: Node;
  /** The input that carries the scores. */
  dataIndex: number;
  /** Inputs that are masks (broadcastable to [B, H, Sq, Sk], rank ≤ 4); every other input is scalar. */
  maskIndexes: number[];
}

export interface ScoreChain {
  qk: Node;
  /** From Q·Kᵀ towards the Softmax. */
  pre: PreStep[];
  softmax: Node;
  pv: Node;
}

/** The chain, or why the site's scores cannot be computed in another layout. */
export function readScoreChain(graph: Graph, shapes: ShapeInfo, raw: RawSite): ScoreChain | string {
  const sm = raw.anchor;
  const qk = raw.anchors.qk ? graph.nodeByName(raw.anchors.qk) : undefined;
  const pv = raw.anchors.pv ? graph.nodeByName(raw.anchors.pv) : undefined;
  if (sm.opType !== 'Softmax' || !qk || !pv) return 'the site has no Softmax, Q·Kᵀ and ·V nodes to rewrite';
  if (qk.outputs[0].isGraphOutput || sm.outputs[0].isGraphOutput) return 'its scores or probabilities are graph outputs';
  const scoreRank = shapes.shape(qk.outputs[0])?.length;
  if (scoreRank !== undefined && scoreRank !== 4) return `its scores have rank ${scoreRank}, not [batch, heads, queries, keys]`;

  const pre: PreStep[] = [];
  let v: Value | null = sm.input(0);
  while (v && v.producer !== qk) {
    const p: Node | null = v.producer;
    if (!p || !PRE_OPS.has(p.opType) || p.domain !== '' || pre.length > 16) return `its scores pass through ${p ? p.opType : 'a graph input'} before the Softmax`;
    if (v.uses.length !== 1 || v.isGraphOutput) return `an intermediate score tensor ('${v.name}') is used outside the site`;
    const dataIndex: number = p.inputs.findIndex((x) => x !== null && reaches(x, qk, 16));
    if (dataIndex < 0) return `no path from ${p.opType} '${p.name}' back to Q·Kᵀ`;
    const maskIndexes: number[] = [];
    for (const [i, x] of p.inputs.entries()) {
      if (i === dataIndex || !x || isScalarLike(shapes, x)) continue;
      const rank = shapes.shape(x)?.length;
      if (rank === undefined || rank > 4) return `mask '${x.name}' has ${rank === undefined ? 'an unknown rank' : `rank ${rank}`}`;
      maskIndexes.push(i);
    }
    pre.unshift({ node: p, dataIndex, maskIndexes });
    v = p.input(dataIndex);
  }
  if (!v) return 'no path from the Softmax back to Q·Kᵀ';
  if (qk.outputs[0].uses.length !== 1) return 'Q·Kᵀ is used outside the site';

  // After the Softmax: every node between it and ·V must be element-wise with scalar side inputs.
  const probs = pv.input(0);
  const post = new Set<Node>();
  const stack: Value[] = probs ? [probs] : [];
  while (stack.length) {
    const x = stack.pop()!;
    if (x === sm.outputs[0]) continue;
    const p = x.producer;
    if (!p || post.has(p)) continue;
    if (!POST_OPS.has(p.opType) || p.domain !== '') return `its probabilities pass through ${p.opType} before ·V`;
    post.add(p);
    for (const i of p.inputs) {
      if (!i) continue;
      if (reaches(i, sm, 8)) stack.push(i);
      else if (!isScalarLike(shapes, i)) return `${p.opType} '${p.name}' after the Softmax reads a non-scalar '${i.name}'`;
    }
  }
  for (const n of [sm, ...post]) {
    for (const o of n.outputs) {
      if (o.name === '') continue;
      if (o.isGraphOutput) return 'its probabilities are graph outputs';
      if (o.uses.some((u) => u.node !== pv && !post.has(u.node))) return `its probabilities ('${o.name}') are used outside the site`;
    }
  }
  return { qk, pre, softmax: sm, pv };
}

/**
 * Whether `v` is computed from `target`'s outputs within `depth` producers (each node visited once). A Shape or Size
 * reads only dimensions: a mask expanded to the scores' shape (DistilBERT's `expand_as(scores)`) is not computed
 * from them.
 */
export function reaches(v: Value, target: Node, depth: number): boolean {
  const seen = new Set<Node>();
  let frontier: Value[] = [v];
  for (let d = 0; d < depth && frontier.length; d++) {
    const next: Value[] = [];
    for (const x of frontier) {
      const p = x.producer;
      if (!p || seen.has(p)) continue;
      if (p === target) return true;
      seen.add(p);
      if (p.opType === 'Shape' || p.opType === 'Size') continue;
      for (const i of p.inputs) if (i) next.push(i);
    }
    frontier = next;
  }
  return false;
}

/** The chain with the products' operands Q [B, H, Sq, D], Kᵀ [B, H, D, Sk] and V, or why they cannot be blocked. */
export function blockableChain(graph: Graph, shapes: ShapeInfo, raw: RawSite): { chain: ScoreChain; q: Value; kt: Value; v: Value } | string {
  const chain = readScoreChain(graph, shapes, raw);
  if (typeof chain === 'string') return chain;
  for (const [what, n] of [['Q·Kᵀ', chain.qk], ['·V', chain.pv]] as const) {
    const plain = plainProduct(n);
    if (plain !== true) return `${what} is ${plain}, whose operands are not laid out as a MatMul's`;
  }
  const q = chain.qk.input(0)!;
  const kt = chain.qk.input(1)!;
  const v = chain.pv.input(1)!;
  for (const [what, x] of [['Q', q], ['Kᵀ', kt], ['V', v]] as const) {
    const r = shapes.shape(x)?.length;
    if (r !== undefined && r !== 4) return `${what} has rank ${r}, not [batch, heads, positions, head size]`;
  }
  return { chain, q, kt, v };
}

/**
 * True for a product whose operands are Q [.., Sq, D] and Kᵀ [.., D, Sk] (or P and V) as they stand: a MatMul, or a
 * FusedMatMul without transposes or a factor. Else what it is: an Einsum's operands are laid out by its equation (a
 * Keras export gives K first, [batch, positions, heads, size]), and a FusedMatMul's transB or alpha changes the product.
 */
export function plainProduct(n: Node): true | string {
  if (n.opType === 'MatMul' && n.domain === '') return true;
  if (n.opType === 'FusedMatMul' && n.domain === 'com.microsoft') {
    const int = (name: string) => Number(n.attr(name)?.i ?? 0);
    const alpha = n.attr('alpha')?.f ?? 1;
    if (int('transA') === 0 && int('transB') === 0 && int('transBatchA') === 0 && int('transBatchB') === 0 && alpha === 1) return true;
    return `a FusedMatMul with transposes or a factor ('${n.name}')`;
  }
  return `${n.opType === 'Einsum' ? 'an' : 'a'} ${n.opType} ('${n.name}')`;
}
