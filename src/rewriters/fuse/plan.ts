// Everything the fusion of one site needs, read before the graph is touched: the score core, Q/K/V stages, head counts
// and sizes, and the operator chosen. A site that cannot be fused gives the reason instead.
import type { RawSite } from '../../analysis/attention/site';
import type { Graph, Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import type { SiteInfo } from '../../analysis/report/types';
import type { FloatType } from '../sparse/ops';
import { elemTypeOf, floatTypeOf } from '../sparse/values';
import { chooseOp, type FusedOpName, type FuseOpChoice, type FuseTarget } from './choose';
import { BHPD, BPHD, D, H, P, B, peel, permTo, pick, type Operand } from './operands';
import { ropeInPlace, ropeOf, type RopePlan } from './rotary';
import { readScoreCore, type ScoreCore } from './score-core';

export interface FusePlan {
  raw: RawSite;
  core: ScoreCore;
  op: FusedOpName;
  q: Operand;
  k: Operand;
  v: Operand;
  heads: number;
  /** KV heads the operator is given: the site's own when its repeat was found, else one per query head. */
  kvHeads: number;
  headDim: number;
  vHeadDim: number;
  float: FloatType;
  /** Rank of each bias term's tensor, for bringing their sum to 4-D. */
  termRanks: number[];
  /** Whether some term already spans every query and key (the sum needs no Expand to [.., S, T]). */
  biasFull: boolean;
  /** The layout K and V are given in: [B, T, H, D] (as 3-D) or [B, H, T, D]. */
  kvLayout: number[];
  /** Rotary embeddings of Q and K to compute as com.microsoft RotaryEmbedding (rotary.ts). */
  qRope?: RopePlan;
  kRope?: RopePlan;
  /** Why an exported rotary embedding stays as it is, when one does. */
  notes: string[];
}

export interface PlanOptions {
  target: FuseTarget;
  op: FuseOpChoice;
  opset: number;
}

const num = (d: unknown) => (typeof d === 'number' && d > 0 ? d : undefined);

export function planFusion(graph: Graph, shapes: ShapeInfo, raw: RawSite, info: SiteInfo, o: PlanOptions): FusePlan | string {
  if (raw.anchors.fused) return `it is already the fused operator ${raw.form}`;
  const { q: qIn, k: kIn, v: vIn } = raw.io;
  if (!qIn || !kIn || !vIn) return 'the analysis did not find Q, K and V';
  const core = readScoreCore(graph, shapes, raw);
  if (typeof core === 'string') return core;
  const scores = shapes.shape(core.chain.qk.outputs[0]);
  if (scores?.length !== 4) return `its scores are ${scores ? `${scores.length}-D` : 'of unknown rank'}, not [batch, heads, queries, keys] (heads folded into the batch?)`;

  const heads = raw.heads;
  const headDim = num(shapes.shape(qIn)?.[3]) ?? raw.headDim;
  const vHeadDim = num(shapes.shape(vIn)?.[3]) ?? raw.vHeadDim ?? headDim;
  if (!heads || !headDim || !vHeadDim) return 'the analysis could not read its heads and head sizes';
  if (scores[1] !== null && typeof scores[1] === 'number' && scores[1] !== heads) return `its scores have ${scores[1]} heads, the analysis ${heads}`;
  const siteKv = raw.kvHeads ?? heads;
  const opts = { heads, kvHeads: siteKv, repeat: true };
  const q = peel(shapes, qIn, BHPD, { ...opts, factors: true, repeat: false });
  const k = peel(shapes, kIn, core.kUntransposed ? BHPD : [B, H, D, P], { ...opts, factors: true });
  const v = peel(shapes, vIn, BHPD, { ...opts, factors: false });
  const repeated = siteKv < heads && [k, v].every((x) => x.stages.some((s) => s.heads === siteKv));
  const kvHeads = repeated ? siteKv : heads;

  const float = floatTypeOf(qIn);
  const termRanks: number[] = [];
  let biasFull = false;
  for (const t of core.terms) {
    const tensor = t.kind === 'add' ? t.value : t.cond;
    const shape = shapes.shape(tensor);
    if (!shape) return `the rank of mask '${tensor.name}' is not known`;
    if (shape.length > 4) return `mask '${tensor.name}' is ${shape.length}-D`;
    termRanks.push(shape.length);
    if (t.kind === 'add') {
      const type = elemTypeOf(t.value);
      if (type && type !== float) return `mask '${t.value.name}' is ${type}, the scores ${float}`;
    }
    const [s, tk] = [shape.at(-2), shape.at(-1)];
    if (shape.length >= 2 && s !== null && s !== undefined && s === scores[2] && tk !== null && tk !== undefined && tk === scores[3]) biasFull = true;
  }

  const choice = chooseOp(o.target, o.op, {
    causal: info.causal && core.terms.length > 0,
    kind: info.kind,
    cache: info.kvCache.reads || cacheAhead(k) || cacheAhead(v),
    heads, kvHeads, headDim, vHeadDim,
    ...(core.softcap !== undefined ? { softcap: core.softcap } : {}),
    opset: o.opset,
  });
  if ('reason' in choice) return choice.reason;
  const op = choice.op;
  // MultiHeadAttention takes 4-D K and V only of one shape: values of another head size go 3-D (DeepSeek's latent attention).
  const kvLayout = op === 'Attention' || (op === 'MultiHeadAttention' && headDim === vHeadDim && !bothReady(k, v, heads)) ? BHPD : BPHD;
  const kvh = op === 'MultiHeadAttention' ? heads : kvHeads;
  if (!pick(k, kvh, kvLayout) || !pick(v, kvh, kvLayout)) return `${op} takes K and V with ${kvh} heads; this site's reach the product with fewer, broadcast`;
  const ropes = rotaries(shapes, { op, q, k, heads, kvh, headDim, float, kvLayout });
  return { raw, core, op, q, k, v, heads, kvHeads, headDim, vHeadDim, float, termRanks, biasFull, kvLayout, ...ropes };
}

/** MultiHeadAttention reads K and V both 3-D or both 4-D: 3-D when both have a [B, T, H, D] stage, which costs no transpose. */
function bothReady(k: Operand, v: Operand, heads: number): boolean {
  const ready = (x: Operand) => x.stages.some((s) => s.heads === heads && !permTo(s.axes, BPHD));
  return ready(k) && ready(v);
}

interface RopeNeeds {
  op: FusedOpName;
  q: Operand;
  k: Operand;
  heads: number;
  kvh: number;
  headDim: number;
  float: FloatType;
  kvLayout: number[];
}

/**
 * The rotary embeddings to compute as RotaryEmbedding: absorbed into Q, and into K when the operator reads it 3-D
 * ([B, S, heads·D], what RotaryEmbedding takes and writes); otherwise K's is rewritten in place (MultiHeadAttention's
 * 4-D K, a K concatenated with a KV cache). ONNX Attention keeps the exported rotary: its model stays standard ONNX.
 * RotaryEmbedding is taken for float32 only, where onnxruntime's CPU kernel is checked against the exported rotation.
 */
function rotaries(shapes: ShapeInfo, n: RopeNeeds): { qRope?: RopePlan; kRope?: RopePlan; notes: string[] } {
  const notes: string[] = [];
  if (n.op === 'Attention') return { notes };
  const take = (which: 'Q' | 'K', r: RopePlan | string | undefined) => {
    if (typeof r === 'string') notes.push(`the rotary embedding of ${which} stays as exported: ${r}`);
    else if (r && n.float !== 'float32') notes.push(`the rotary embedding of ${which} stays as exported: the site is ${n.float}`);
    return typeof r === 'object' && n.float === 'float32' ? r : undefined;
  };
  const qRope = take('Q', ropeOf(shapes, n.q, n.heads, n.headDim));
  const kRope = take('K', n.kvLayout === BPHD ? ropeOf(shapes, n.k, n.kvh, n.headDim) : ropeInPlace(shapes, n.k, n.headDim));
  return { ...(qRope ? { qRope } : {}), ...(kRope ? { kRope } : {}), notes };
}

/** Whether K or V (as peeled) is a concatenation with a graph input: a cache read the analysis may not have flagged. */
function cacheAhead(x: Operand): boolean {
  const last: Value = x.stages[x.stages.length - 1].value;
  const p = last.producer;
  return !!p && p.opType === 'Concat' && p.inputs.some((i) => i?.isGraphInput);
}
