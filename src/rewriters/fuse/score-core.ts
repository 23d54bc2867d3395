// What a written-out site computes between Q·Kᵀ and ·V, restated in the terms every fused operator uses:
//   softmax( softcap·tanh(scale·Q·Kᵀ / softcap) + bias ) · V
// The score chain (sparse/score-chain.ts finds it) is read op by op, keeping track of which constant factors apply to
// the product and which to each mask added before them, so that the bias handed to the operator is exactly what the
// chain adds. A per-head factor on the bare product (a temperature per head) is applied to Q instead. Anything else with
// no place in that formula (a mask inside the soft-cap, a product with another tensor, a probability rescaled before
// ·V) is a reason not to fuse, never an approximation.
import type { Graph, Node, Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import type { RawSite } from '../../analysis/attention/site';
import { attrFloat, attrInt, scalarOf as scalarIn, type Ctx } from '../../analysis/attention/match';
import { keysHiddenBy, MASK_VALUE_LIMIT } from '../../analysis/attention/zero-one-mask';
import { readScoreChain, type ScoreChain } from '../sparse/score-chain';

/** A term of the bias: `coef·value` added to the scores, or a Where that puts `fill` (already scaled) where keys are hidden. */
export type MaskTerm =
  | { kind: 'add'; value: Value; coef: number }
  | { kind: 'where'; cond: Value; visibleWhen: boolean; fill: number };

/** A tensor the bare Q·Kᵀ is multiplied (or divided) by that varies only by head: a per-head temperature. */
export interface HeadFactor {
  value: Value;
  divide: boolean;
}

export interface ScoreCore {
  chain: ScoreChain;
  /** The factor on Q·Kᵀ from the chain alone (factors on the Q and K paths are the operands' business). */
  scale: number;
  /** Per-head factors on the bare product (SwinV2's logit scale): the fused form applies them to Q. */
  headFactors: HeadFactor[];
  softcap?: number;
  terms: MaskTerm[];
  /** Q·Kᵀ as onnxruntime's FusedMatMul writes it: K enters untransposed ([B, H, T, D]). */
  kUntransposed: boolean;
}

export function readScoreCore(graph: Graph, shapes: ShapeInfo, raw: RawSite): ScoreCore | string {
  const ctx = { graph, shapes, order: new Map() };
  const scalarOf = (v: Value | null) => scalarIn(ctx, v);
  const chain = readScoreChain(graph, shapes, raw);
  if (typeof chain === 'string') return chain;
  const product = productOf(chain.qk);
  if (typeof product === 'string') return product;
  const post = probabilitiesToV(chain, scalarOf);
  if (post) return post;

  let inner = product.alpha; // factors on Q·Kᵀ before a tanh (all of them when there is none)
  let outer = 1; // factors after the tanh: the soft-cap
  let tanh = false;
  let constantAdded = false;
  const terms: MaskTerm[] = [];
  const headFactors: HeadFactor[] = [];
  const scaleBy = (c: number) => {
    if (tanh) outer *= c;
    else inner *= c;
    for (const t of terms) {
      if (t.kind === 'add') t.coef *= c;
      else t.fill *= c;
    }
  };
  for (const [at, step] of chain.pre.entries()) {
    const n = step.node;
    const others = n.inputs.filter((_, i) => i !== step.dataIndex);
    const scalar = () => (step.maskIndexes.length === 0 && others.length === 1 ? scalarOf(others[0]) : undefined);
    switch (n.opType) {
      case 'Cast':
      case 'Identity':
        break;
      case 'Mul':
      case 'Div': {
        const c = scalar();
        if (n.opType === 'Div' && step.dataIndex !== 0) return `Div '${n.name}' divides by the scores`;
        // A product by the 0/1 tensor a later term hides the zeros of: that term alone is the mask (zero-one-mask.ts).
        if (c === undefined && n.opType === 'Mul' && others.length === 1 && others[0] && hiddenLater(ctx, chain, at, others[0])) break;
        if (c === undefined) {
          // Per head and on the bare product (no mask or cap yet, which it would scale too): it can scale Q instead.
          const perHead = others.length === 1 && others[0] && isHeadFactor(shapes, others[0], raw.heads);
          if (!perHead || terms.length > 0 || constantAdded || tanh) return `${n.opType} '${n.name}' scales the scores by a tensor, not a constant`;
          headFactors.push({ value: others[0]!, divide: n.opType === 'Div' });
          break;
        }
        if (c === 0) return `${n.opType} '${n.name}' scales the scores by 0`;
        scaleBy(n.opType === 'Mul' ? c : 1 / c);
        break;
      }
      case 'Add':
      case 'Sub': {
        if (n.opType === 'Sub' && step.dataIndex !== 0) return `Sub '${n.name}' subtracts the scores from something`;
        const other = others[0];
        if (!other) return `${n.opType} '${n.name}' has one input`;
        if (step.maskIndexes.length === 0) {
          // A constant added to every score leaves the softmax unchanged, unless a tanh follows.
          constantAdded = true;
          break;
        }
        terms.push({ kind: 'add', value: other, coef: n.opType === 'Sub' ? -1 : 1 });
        break;
      }
      case 'Where': {
        if (step.dataIndex === 0) return `Where '${n.name}' uses the scores as its condition`;
        const cond = n.input(0);
        const fillValue = n.input(step.dataIndex === 1 ? 2 : 1);
        const fill = fillValue ? scalarOf(fillValue) : undefined;
        if (!cond || fill === undefined) return `Where '${n.name}' puts a tensor, not a constant, in place of scores`;
        if (!(fill <= MASK_VALUE_LIMIT)) return `Where '${n.name}' puts ${fill} in place of scores, which is not a masking value`;
        terms.push({ kind: 'where', cond, visibleWhen: step.dataIndex === 1, fill });
        break;
      }
      case 'Tanh':
        if (tanh) return 'the scores pass through two tanh';
        if (terms.length > 0 || constantAdded) return `a mask or bias is added before the soft-cap tanh '${n.name}'; the fused operators add it after`;
        tanh = true;
        break;
      default:
        return `the scores pass through ${n.opType} '${n.name}', which no fused operator computes`;
    }
  }
  for (const t of terms) {
    if (t.kind === 'where' && !(t.fill <= MASK_VALUE_LIMIT)) return `a later factor turns the masking value into ${t.fill}`;
  }
  const scale = tanh ? inner * outer : inner;
  if (tanh && !(outer > 0)) return `the soft-cap factor after the tanh is ${outer}, not a positive cap`;
  return { chain, scale, headFactors, ...(tanh ? { softcap: outer } : {}), terms, kUntransposed: product.transB };
}

/** Whether a term added or subtracted after step `at`, before any tanh, hides the zeros of the 0/1 tensor `m`. */
function hiddenLater(ctx: Ctx, chain: ScoreChain, at: number, m: Value): boolean {
  for (const { node, dataIndex } of chain.pre.slice(at + 1)) {
    if (node.opType === 'Tanh') return false;
    if ((node.opType === 'Add' || (node.opType === 'Sub' && dataIndex === 0)) && node.inputs.some((x, i) => i !== dataIndex && x && keysHiddenBy(ctx, node.opType as 'Add' | 'Sub', x) === m)) return true;
  }
  return false;
}

/** A factor broadcast over queries and keys and the batch, with one value per head or one for all: [.., H, 1, 1]. */
function isHeadFactor(shapes: ShapeInfo, v: Value, heads: number | null): boolean {
  const d = shapes.shape(v);
  if (!d || d.length < 2 || d.length > 4 || !heads) return false;
  const fromRight = (i: number) => (i <= d.length ? d[d.length - i] : 1);
  return fromRight(1) === 1 && fromRight(2) === 1 && (fromRight(3) === heads || fromRight(3) === 1) && fromRight(4) === 1;
}

/** Q·Kᵀ as a plain MatMul or onnxruntime's FusedMatMul (a scale and a transposed K folded in). */
function productOf(qk: Node): { alpha: number; transB: boolean } | string {
  if (qk.opType === 'MatMul' && qk.domain === '') return { alpha: 1, transB: false };
  if (qk.opType === 'FusedMatMul' && qk.domain === 'com.microsoft') {
    if (attrInt(qk, 'transA') || attrInt(qk, 'transBatchA') || attrInt(qk, 'transBatchB')) return `FusedMatMul '${qk.name}' transposes Q or the batch axes`;
    return { alpha: attrFloat(qk, 'alpha') ?? 1, transB: attrInt(qk, 'transB') === 1 };
  }
  return `Q·Kᵀ is a ${qk.opType}, not a MatMul`;
}

/**
 * Between the Softmax and ·V only what leaves the probabilities as they are: casts, identity, inference-mode dropout,
 * and the SDPA export's NaN guard (Where(IsNaN(p), 0, p)), which acts only on rows with every key hidden.
 */
function probabilitiesToV(chain: ScoreChain, scalarOf: (v: Value | null) => number | undefined): string | null {
  let v: Value | null = chain.pv.input(0);
  for (let step = 0; step < 8 && v && v !== chain.softmax.outputs[0]; step++) {
    const p: Node | null = v.producer;
    if (!p) return 'the probabilities come from a graph input';
    if (['Cast', 'Identity', 'Dropout'].includes(p.opType)) v = p.input(0);
    else if (p.opType === 'Where' && p.input(0)?.producer?.opType === 'IsNaN' && scalarOf(p.input(1)) === 0) v = p.input(2);
    else return `the probabilities pass through ${p.opType} '${p.name}' before ·V`;
  }
  return v === chain.softmax.outputs[0] ? null : 'no direct path from the Softmax to ·V';
}
