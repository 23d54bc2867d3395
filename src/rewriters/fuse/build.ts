// Writes one planned site as its fused operator: Q, K and V brought to the layout the operator reads (from the stage
// that needs the fewest new ops), the chain's masks summed into one additive bias, the operator itself, and its output
// put where the written-out attention's merged heads were. The nodes that only served the written-out core are then
// removed. The operator takes the Softmax's name, so site ids (which the pipeline maps through anchor names) survive;
// every node added is named `<softmax>::fuse/...`, so detection and the profiler attribute it to the site.
import { attr, type Attr, type GraphBuilder } from '../../analysis/ir/builder';
import { FUSED_INPUTS } from '../../analysis/attention/fused';
import { attrInts } from '../../analysis/attention/match';
import type { Node, Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import { SiteOps } from '../sparse/ops';
import { BHPD, BPHD, pick, permTo, type Operand, type Stage } from './operands';
import type { FusePlan } from './plan';
import { ROTARY_SCOPE } from '../node-names';
import { rehomeReaders, rotate, type RopeCache, type RopePlan } from './rotary';
import type { HeadFactor, MaskTerm } from './score-core';
import { elemTypeOf } from '../sparse/values';

/** What this rewrite built that later sites reuse: biases by the terms they sum (layers that share a mask share one
 * bias), and rotary tables by the cos and sin they come from. */
export interface FuseCaches {
  biases: Map<string, Value>;
  ropes: RopeCache;
}

export interface Built {
  node: Node;
  /** KV heads the operator reads (MultiHeadAttention: one per query head, the grouped ones repeated). */
  kvHeads: number;
  /** The operator's scale: the chain's factors times those peeled off Q and K. */
  scale: number;
  /** The operands whose rotary embedding became RotaryEmbedding ('Q', 'K'). */
  rotated: string[];
  nodesAdded: number;
  nodesRemoved: number;
}

export function buildFused(builder: GraphBuilder, shapes: ShapeInfo, plan: FusePlan, caches: FuseCaches): Built {
  const biases = caches.biases;
  const { core, heads, kvHeads, headDim, vHeadDim } = plan;
  const sm = core.chain.softmax;
  const name = sm.name;
  const before = new Set(builder.graph.nodes);
  const ops = new SiteOps(builder, `${name}::fuse`, plan.float);
  // The rotation's own nodes under `…::fuse/rotary/`: the profiler counts them with the site, but not in its score path
  // (runtime/sites.ts), as it does not count the exported rotation they replace.
  const ropeOps = new SiteOps(builder, `${name}::fuse/${ROTARY_SCOPE}`, plan.float);
  const stageOf = (x: Operand, h: number, layout: number[], what: string) => {
    const s = pick(x, h, layout);
    if (!s) throw new Error(`site '${name}': no ${what} with ${h} heads`);
    return s;
  };
  const kvLayout = plan.kvLayout;
  const kvh = plan.op === 'MultiHeadAttention' ? heads : kvHeads;
  // An operand with a rotary to absorb is read before the rotation: RotaryEmbedding then writes it (rotary.ts).
  const qStage = plan.qRope?.input ?? stageOf(plan.q, heads, plan.op === 'Attention' ? BHPD : BPHD, 'Q');
  const kAbsorbed = plan.kRope && !plan.kRope.inPlace ? plan.kRope : undefined;
  const kStage = kAbsorbed?.input ?? stageOf(plan.k, kvh, kvLayout, 'K');
  const vStage = stageOf(plan.v, kvh, kvLayout, 'V');
  const scale = core.scale * qStage.factor * kStage.factor;

  let fused: Node;
  const replaced: Node[] = [];
  let rotatedOut: { q: Value; k: Value } | undefined;
  if (plan.op === 'Attention') {
    const [q, k, v] = [to4d(ops, qStage, 'q'), to4d(ops, kStage, 'k'), to4d(ops, vStage, 'v')];
    const bias = maskBias(ops, plan, biases, () => [dimOf(ops, q, 2, 'sq'), dimOf(ops, k, 2, 'sk')]);
    fused = onnxAttention(builder, ops, { q: scaleHeads(ops, q, core.headFactors, 4, heads, headDim), k, v, bias, scale, softcap: core.softcap });
    // A 4-D Attention returns [B, H, S, Dv], the layout of ·V's output.
    builder.replaceAllUses(core.chain.pv.outputs[0], fused.outputs[0], { graphOutputs: true });
  } else {
    builder.setOpset('com.microsoft', builder.model.opsets.get('com.microsoft') ?? 1);
    const flat = (s: Stage, rope: RopePlan | undefined, width: number, what: string) => {
      const x = to3d(ops, shapes, s, width, what);
      return rope ? rotate(builder, ropeOps, rope, x, headDim, caches.ropes, what) : x;
    };
    const q = flat(qStage, plan.qRope, heads * headDim, 'q');
    const [k, v] = kvLayout === BPHD
      ? [flat(kStage, kAbsorbed, kvh * headDim, 'k'), to3d(ops, shapes, vStage, kvh * vHeadDim, 'v')]
      : [to4d(ops, kStage, 'k'), to4d(ops, vStage, 'v')];
    rotatedOut = { q, k };
    const sq = dimOf(ops, q, 1, 'sq');
    const bias = maskBias(ops, plan, biases, () => [sq, kvLayout === BPHD ? dimOf(ops, k, 1, 'sk') : dimOf(ops, k, 2, 'sk')]);
    // The per-head factors go into the operator's Q only: the rotation's other readers keep the unscaled Q.
    const io = { q: scaleHeads(ops, q, core.headFactors, 3, heads, headDim), k, v, bias, scale, softcap: core.softcap };
    fused = plan.op === 'GroupQueryAttention' ? groupQueryAttention(builder, ops, io, sq, heads, kvHeads) : multiHeadAttention(builder, ops, io, heads);
    replaced.push(...connectMerged(builder, ops, shapes, plan, fused.outputs[0]));
  }
  builder.removeDeadFrom([sm, core.chain.pv, ...replaced]);
  if (builder.graph.nodes.includes(sm)) throw new Error(`site '${name}': the Softmax is still in use after fusing`);
  const rotated: string[] = [];
  for (const [which, rope, out] of [['Q', plan.qRope, rotatedOut?.q], ['K', plan.kRope, rotatedOut?.k]] as const) {
    if (!rope) continue;
    const w = which.toLowerCase();
    // In place: RotaryEmbedding of the projection, for the readers of the exported rotation (which then goes).
    const result = rope.inPlace ? rotate(builder, ropeOps, rope, to3d(ropeOps, shapes, rope.input, rope.heads * headDim, w), headDim, caches.ropes, w) : out;
    if (!result) continue;
    rotated.push(rope.inPlace ? `${which} (in place)` : which);
    if (rehomeReaders(builder, ropeOps, rope, result, headDim, w)) builder.removeDeadFrom([rope.match.add]);
  }
  builder.renameNode(fused, name);
  const now = new Set(builder.graph.nodes);
  return { node: fused, kvHeads: kvh, scale, rotated, nodesAdded: [...now].filter((n) => !before.has(n)).length, nodesRemoved: [...before].filter((n) => !now.has(n)).length };
}

/**
 * Q times the scores' per-head factors: scaling head h's queries scales its scores alike. Q is [B, S, H·D] (3) or
 * [B, H, S, D] (4); a factor holds one value per head, or one for all.
 */
function scaleHeads(ops: SiteOps, q: Value, factors: HeadFactor[], rank: 3 | 4, heads: number, headDim: number): Value {
  let out = q;
  for (const f of factors) {
    const typed = elemTypeOf(f.value) === ops.float ? f.value : ops.toFloat(f.value, 'head_factor_cast');
    const g = rank === 4
      ? ops.reshape(typed, ops.i64([1, -1, 1, 1], 'head_factor_shape'), 'head_factor')
      : ops.reshape(ops.op('Expand', [ops.reshape(typed, ops.i64([-1, 1], 'head_factor_col'), 'head_factor_h'), ops.i64([heads, headDim], 'head_factor_d')], 'head_factor_hd'), ops.i64([-1], 'head_factor_flat'), 'head_factor');
    out = ops.op(f.divide ? 'Div' : 'Mul', [out, g], 'q_head_scaled');
  }
  return out;
}

interface OpInputs {
  q: Value;
  k: Value;
  v: Value;
  bias: Value | null;
  scale: number;
  softcap?: number;
}

const softcapAttr = (c?: number): Record<string, Attr> => (c !== undefined ? { softcap: attr.float(c) } : {});

function onnxAttention(builder: GraphBuilder, ops: SiteOps, x: OpInputs): Node {
  const t = FUSED_INPUTS['onnx.Attention'];
  return builder.node('Attention', inputs({ [t.query]: x.q, [t.key]: x.k, [t.value]: x.v, [t.attnMask]: x.bias }), {
    name: ops.name('op'),
    attrs: { scale: attr.float(x.scale), ...softcapAttr(x.softcap) },
  });
}

/** Prompt mode without a cache: every row's keys are all S positions (seqlens_k = S − 1); the bias hides the rest. */
function groupQueryAttention(builder: GraphBuilder, ops: SiteOps, x: OpInputs, sq: Value, heads: number, kvHeads: number): Node {
  const t = FUSED_INPUTS['com.microsoft.GroupQueryAttention'];
  const total = ops.cast(sq, 'int32', 'total_len');
  const last = ops.cast(ops.vec(ops.op('Sub', [sq, ops.scalarI64(1, 'one')], 'last_key'), 'last_key_vec'), 'int32', 'last_key_i32');
  const seqlens = ops.op('Expand', [last, ops.slice(ops.shape(x.q, 'q_shape'), 0, 0, 1, 'batch')], 'seqlens_k');
  return builder.node('GroupQueryAttention', inputs({
    [t.query]: x.q, [t.key]: x.k, [t.value]: x.v, [t.seqlensK]: seqlens, [t.totalSequenceLength]: total, [t.attentionBias]: x.bias,
  }), {
    name: ops.name('op'),
    domain: 'com.microsoft',
    outputs: 3,
    attrs: { num_heads: attr.int(heads), kv_num_heads: attr.int(kvHeads), scale: attr.float(x.scale), ...softcapAttr(x.softcap) },
  });
}

function multiHeadAttention(builder: GraphBuilder, ops: SiteOps, x: OpInputs, heads: number): Node {
  const t = FUSED_INPUTS['com.microsoft.MultiHeadAttention'];
  return builder.node('MultiHeadAttention', inputs({ [t.query]: x.q, [t.key]: x.k, [t.value]: x.v, [t.attentionBias]: x.bias }), {
    name: ops.name('op'),
    domain: 'com.microsoft',
    attrs: { num_heads: attr.int(heads), scale: attr.float(x.scale) },
  });
}

/** Positional inputs from an index map, omitted ones as null. */
function inputs(byIndex: Record<number, Value | null | undefined>): (Value | null)[] {
  const n = Math.max(...Object.keys(byIndex).filter((i) => byIndex[Number(i)]).map(Number)) + 1;
  return Array.from({ length: n }, (_, i) => byIndex[i] ?? null);
}

function to4d(ops: SiteOps, s: Stage, what: string): Value {
  const perm = permTo(s.axes, BHPD);
  return perm ? ops.transpose(s.value, perm, `${what}_bhsd`) : s.value;
}

/**
 * [B, S, heads·size]: the projection output itself when the stage is its head split, else a Reshape of the
 * [B, S, heads, size] stage (transposed there first if it is another layout).
 */
function to3d(ops: SiteOps, shapes: ShapeInfo, s: Stage, width: number, what: string): Value {
  const perm = permTo(s.axes, BPHD);
  const source = perm ? undefined : headSplitSource(shapes, s.value, width);
  if (source) return source;
  const x = perm ? ops.transpose(s.value, perm, `${what}_bshd`) : s.value;
  return ops.reshape(x, ops.i64([0, 0, width], `${what}_width`), `${what}_3d`);
}

/** x when v = Reshape(x) only cuts x's last axis into heads: x [B, S, width], v [B, S, heads, size] (same batch and length). */
function headSplitSource(shapes: ShapeInfo, v: Value, width: number): Value | undefined {
  const p = v.producer;
  const x = p?.input(0);
  if (!p || !x || p.opType !== 'Reshape' || p.domain !== '') return undefined;
  const [a, b] = [shapes.shape(x), shapes.shape(v)];
  if (a?.length !== 3 || b?.length !== 4 || a[2] !== width) return undefined;
  return a[0] !== null && a[1] !== null && a[0] === b[0] && a[1] === b[1] ? x : undefined;
}

function dimOf(ops: SiteOps, v: Value, axis: number, what: string): Value {
  return ops.dim(ops.shape(v, `${what}_shape`), axis, what);
}

/**
 * The chain's masks as one additive bias [B or 1, H or 1, S, T]: each Add term times the factors after it, each Where
 * as 0 where keys are visible and its (scaled) masking value elsewhere. Null when the chain has no mask. The sum is
 * shared by the sites with the same terms (one mask serves every layer); the Expand of a broadcast mask ([B, 1, 1, T]
 * padding) over the queries is per site, since only the site knows its query and key lengths.
 */
function maskBias(ops: SiteOps, plan: FusePlan, cache: Map<string, Value>, lengths: () => [Value, Value]): Value | null {
  const { terms } = plan.core;
  if (terms.length === 0) return null;
  const key = `${plan.float}|${terms.map(termKey).join('+')}`;
  let bias = cache.get(key);
  if (!bias) {
    let sum: Value | undefined;
    terms.forEach((t, i) => {
      const x = t.kind === 'add'
        ? t.coef === 1 ? t.value : ops.op('Mul', [t.value, ops.scalarF(t.coef, `coef_${i}`)], `term_${i}`)
        : ops.op('Where', t.visibleWhen ? [t.cond, ops.zeroF(), ops.scalarF(t.fill, `fill_${i}`)] : [t.cond, ops.scalarF(t.fill, `fill_${i}`), ops.zeroF()], `term_${i}`);
      sum = sum ? ops.op('Add', [sum, x], `bias_sum_${i}`) : x;
    });
    bias = sum!;
    const rank = Math.max(...plan.termRanks);
    if (rank < 4) bias = ops.unsqueeze(bias, Array.from({ length: 4 - rank }, (_, i) => i), 'bias_4d');
    cache.set(key, bias);
  }
  if (plan.biasFull) return bias;
  const [s, t] = lengths();
  return ops.op('Expand', [bias, ops.shapeOf([1, 1, ops.vec(s, 's_vec'), ops.vec(t, 't_vec')], 'bias_shape')], 'bias_full');
}

function termKey(t: MaskTerm): string {
  return t.kind === 'add' ? `add(${t.value.name}*${t.coef})` : `where(${t.cond.name},${t.visibleWhen},${t.fill})`;
}

/**
 * Puts the operator's [B, S, H·Dv] output where the written-out site merged its heads. The usual export is ·V →
 * Transpose(0, 2, 1, 3) → Reshape to [B, S, H·Dv]: the Reshape's output is replaced by the operator's, and whatever
 * still reads the intermediate tensors (Shape ops computing the reshape target) reads an equivalent view instead.
 */
function connectMerged(builder: GraphBuilder, ops: SiteOps, shapes: ShapeInfo, plan: FusePlan, out: Value): Node[] {
  const pvOut = plan.core.chain.pv.outputs[0];
  const dataUses = (v: Value) => v.uses.filter((u) => u.node.opType !== 'Shape');
  const first = dataUses(pvOut);
  const merge = first.length === 1 && isHeadMerge(first[0].node) ? first[0].node : undefined;
  const seeds: Node[] = merge ? [merge] : [];
  let bshd: Value | undefined;
  const view = () => (bshd ??= ops.reshape(out, ops.i64([0, 0, plan.heads, plan.vHeadDim], 'heads_shape'), 'bshd'));
  if (merge) {
    const mOut = merge.outputs[0];
    const next = dataUses(mOut);
    const reshape = next.length === 1 && next[0].node.opType === 'Reshape' ? next[0].node : undefined;
    const merged = reshape && shapes.shape(reshape.outputs[0]);
    if (reshape && merged?.length === 3 && merged[2] === plan.heads * plan.vHeadDim) {
      // A graph output keeps its name: the operator's output then takes it (and becomes another Value object).
      out = builder.replaceAllUses(reshape.outputs[0], out, { graphOutputs: true });
      seeds.push(reshape);
    }
    if (mOut.uses.length || mOut.isGraphOutput) builder.replaceAllUses(mOut, view(), { graphOutputs: true });
  }
  if (pvOut.uses.some((u) => u.node !== merge) || pvOut.isGraphOutput) {
    builder.replaceAllUses(pvOut, ops.transpose(view(), [0, 2, 1, 3], 'bhsd'), { graphOutputs: true, except: merge ? [merge] : [] });
  }
  return seeds;
}

function isHeadMerge(n: Node): boolean {
  const perm = attrInts(n, 'perm');
  return n.opType === 'Transpose' && !!perm && perm.join() === '0,2,1,3';
}
