// Attention written out as ops: Q·Kᵀ (MatMul), scaling (Mul/Div, anywhere on Q, K or the scores), an optional mask
// (Add or Where) and soft-capping (Tanh), Softmax, then ·V (MatMul). Covers eager exports, SDPA decomposed by the
// exporter (scale split across Q and K, boolean or float masks, the NaN guard after Softmax), fused QKV projections,
// grouped-query repeats, RoPE and KV-cache concatenation, and graphs partly fused by onnxruntime's optimizer.
import type { Node, Value } from '../ir/graph';
import { classifyMask, maskTypeOf } from './mask';
import { attrFloat, attrInt, fail, isConstantLike, ok, QDQ_OPS, scalarOf, type Ctx, type Match } from './match';
import { outputProjection } from './output';
import type { PlanSplit } from './plan-site';
import { bindSite } from './layout/bind';
import type { RawSite } from './site';
import { attentionKind, projectionWidth, projectionWithSlice, projectsLearnedData, traceBack, type Trace } from './trace';
import { keysHiddenBy } from './zero-one-mask';

// Clip: the float16 conversion (rewriters/precision) bounds values to ±65504 before each cast down.
const SCORE_PASS = new Set(['Cast', 'Clip', 'Identity', 'Reshape', ...QDQ_OPS]);

interface ScoreChain {
  qk: Node;
  nodes: Node[];
  masks: Value[];
  /** Mul operands that are tensors, not scalars (a per-head temperature): the scale is not one number then. */
  factors: Value[];
  scale: number;
  softcap?: number;
  constantBias: boolean;
}

/**
 * `split`: the site is split into head groups by a per-head plan (plan-site.ts); it is matched from the whole Q, Kᵀ
 * and V to the groups' merged output, and `sm` (group 0's Softmax) gives the score chain.
 */
export function matchSoftmax(ctx: Ctx, sm: Node, split?: PlanSplit): Match<RawSite> {
  const rank = ctx.shapes.shape(sm.input(0))?.length;
  const axis = attrInt(sm, 'axis') ?? -1;
  if (rank !== undefined && axis !== -1 && axis !== rank - 1) return fail(`softmax over axis ${axis}, not the last (key) axis`);
  const chain = scoreChain(ctx, sm.input(0));
  if (!chain.ok) return chain;
  const fwd = probsToPV(ctx, sm.outputs[0]);
  if (!fwd.ok) return fwd;
  const { qk } = chain.value;
  const { pv, nodes: fwdNodes } = fwd.value;

  const qIn = split?.q ?? qk.input(0)!;
  const kIn = split?.kt ?? qk.input(1)!;
  const vIn = split?.v ?? pv.input(1)!;
  const q = traceBack(ctx, qIn);
  const k = traceBack(ctx, kIn);
  const v = traceBack(ctx, vIn);

  const out = outputProjection(ctx, split?.out ?? pv.outputs[0]);
  const oAt = out.projection ? out.nodes.findIndex((n) => n.name === out.projection!.node) : -1;
  // A split site's scores are one group's, not the site's: they are not checked against the bound heads.
  const bound = bindSite(ctx, { qk, pv, q, k, v, qIn, kIn, vIn, outChain: oAt >= 0 ? out.nodes.slice(0, oAt) : [], oNode: out.projection?.node, ...(split ? { scores: null } : {}) });
  if (!bound.ok && bound.contradiction) return fail(`the dimensions of this block disagree: ${bound.reason}`);
  const dims = bound.ok ? bound.binding : legacyDims(ctx, qk, qIn, vIn, q, k, split?.heads);
  if (!dims) return fail(`could not read the number of heads from the score shape or the Q projection (${bound.ok ? '' : bound.reason})`);
  const { heads, kvHeads, headDim } = dims;
  if (split && heads !== split.heads) return fail(`the per-head plan's groups hold ${split.heads} heads where Q has ${heads}`);

  // A factor the same for every key (a per-head temperature) is no mask: it scales whole rows, and the
  // compute-reducing forms apply it to the blocked scores as it is.
  const perRow = (m: Value) => chain.value.factors.includes(m) && ctx.shapes.shape(m)?.at(-1) === 1;
  const mask = classifyMask(ctx, chain.value.masks.filter((m) => !perRow(m)));
  const kind = fixedLengthsDiffer(ctx, qk) && k.cacheConcats.length === 0 ? 'cross' : attentionKind(q, k);
  const nodes = new Set<Node>([...chain.value.nodes, sm, ...fwdNodes, pv, ...q.nodes, ...k.nodes, ...v.nodes, ...out.nodes]);
  const form = sdpaShape(chain.value, q, k) ? 'sdpa-decomposed' : 'unfused';
  const notes: string[] = [];
  if (!q.projection) notes.push('no Q projection found');
  if (!bound.ok) notes.push(`dimensions not bound across Q, K, V and the output: ${bound.reason}`);
  const unknownFactor = q.scaleUnknown ?? k.scaleUnknown;
  if (unknownFactor) notes.push(`scale unknown: ${unknownFactor} multiplies by a value computed at run time`);
  const tensorFactor = chain.value.factors[0];
  if (tensorFactor) notes.push(`scale not one number: the scores are multiplied by '${tensorFactor.name}' (${shapeText(ctx, tensorFactor)}), a factor per head or position`);
  const scale = unknownFactor || tensorFactor ? null : chain.value.scale * q.scale * k.scale;
  return ok({
    form,
    kind,
    causal: mask.causal || mask.window !== undefined,
    heads,
    kvHeads,
    headDim,
    scale,
    maskType: maskTypeOf(mask),
    maskValues: chain.value.masks,
    ...(tensorFactor && !unknownFactor ? { scalarScale: chain.value.scale * q.scale * k.scale } : {}),
    ...(mask.window !== undefined ? { window: mask.window } : {}),
    ...(chain.value.softcap !== undefined ? { softcap: chain.value.softcap } : {}),
    position: q.rope || k.rope ? 'rope' : mask.relativeBias ? 'relative-bias' : mask.alibi ? 'alibi' : 'none',
    projections: {
      ...(q.projection ? { q: projectionWithSlice(ctx, q)! } : {}),
      ...(k.projection ? { k: projectionWithSlice(ctx, k)! } : {}),
      ...(v.projection ? { v: projectionWithSlice(ctx, v)! } : {}),
      ...(out.projection ? { o: out.projection } : {}),
    },
    kvCache: {
      reads: k.cacheConcats.length > 0 || v.cacheConcats.length > 0,
      writes: k.graphOutputs.length > 0 || v.graphOutputs.length > 0,
      pastInputs: [...k.graphInputs, ...v.graphInputs].filter((x) => k.cacheConcats.concat(v.cacheConcats).some((c) => c.inputs.includes(x))).map((x) => x.name),
      presentOutputs: [...k.graphOutputs, ...v.graphOutputs].map((x) => x.name),
    },
    anchors: { softmax: sm.name, qk: qk.name, pv: pv.name },
    anchor: sm,
    nodes,
    notes,
    io: { q: qIn, k: kIn, v: vIn, out: out.value },
    ...(bound.ok ? { binding: bound.binding, layouts: bound.layouts } : {}),
    ...(dims.vHeadDim ? { vHeadDim: dims.vHeadDim } : {}),
  });
}

/**
 * Dimensions read the way the first version did, for sites the walk cannot bind (no projection, an Einsum core):
 * heads from the scores' axis 1 ([batch, heads, queries, keys], or the blocked 5-D layouts of rewritten sites), else
 * from the Reshape that splits heads, else the projection's width over the head size.
 */
function legacyDims(ctx: Ctx, qk: Node, qIn: Value, vIn: Value, q: Trace, k: Trace, planHeads?: number): { heads: number; kvHeads: number; headDim: number | null; vHeadDim?: number } | undefined {
  const qShape = ctx.shapes.shape(qIn);
  // V's head size is its own (LeViT's values are two or four times as wide as its keys): it is read, not assumed equal.
  const vHeadDim = num(ctx.shapes.shape(vIn)?.at(-1));
  const sShape = ctx.shapes.shape(qk.outputs[0]);
  const split = headSplit(ctx, q);
  const headDim = num(qShape?.[qShape.length - 1]) ?? split?.headDim ?? null;
  // A plan's head groups each have their own scores: the heads are those of all groups together.
  let heads = planHeads ?? (sShape && (sShape.length === 4 || sShape.length === 5) ? num(sShape[1]) : undefined);
  heads ??= split?.heads;
  if (heads === undefined && headDim) heads = div(projectionWidth(ctx, q), headDim);
  if (heads === undefined) return undefined;
  // Each query head reads one KV head, so their count divides the heads: a width that does not is not K's alone (a
  // packed QKV projection cut on a head axis, as timm's `unbind` does) and the next reading is taken.
  const kShape = ctx.shapes.shape(qk.input(1));
  const readings = [headDim ? div(projectionWidth(ctx, k), headDim) : undefined, pastHeads(ctx, k), headSplit(ctx, k)?.heads, kShape?.length === 4 ? num(kShape[1]) : undefined];
  const kvHeads = readings.find((r) => r !== undefined && heads % r === 0) ?? heads;
  return { heads, kvHeads, headDim, ...(vHeadDim ? { vHeadDim } : {}) };
}

/**
 * Queries and keys of fixed, different counts without a cache: whatever Q comes from, it is not the keys' sequence
 * (Nyströmformer's landmarks), so positions cannot be compared.
 */
function fixedLengthsDiffer(ctx: Ctx, qk: Node): boolean {
  const s = ctx.shapes.shape(qk.outputs[0]);
  const [queries, keys] = s && s.length === 4 ? [num(s[2]), num(s[3])] : [];
  return queries !== undefined && keys !== undefined && queries !== keys;
}

function num(d: unknown): number | undefined {
  return typeof d === 'number' && d > 0 ? d : undefined;
}
function div(a: number | undefined, b: number): number | undefined {
  return a !== undefined && b > 0 && a % b === 0 ? a / b : undefined;
}

/**
 * When shapes could not be inferred: the Reshape that splits the projection into heads, [batch, seq, heads, head_dim]
 * (heads may be -1, then width / head_dim).
 */
function headSplit(ctx: Ctx, t: Trace): { heads?: number; headDim: number } | undefined {
  for (const n of t.nodes) {
    if (n.opType !== 'Reshape') continue;
    const target = ctx.shapes.values(n.input(1));
    if (!target || target.length !== 4) continue;
    const d = num(target[3]);
    if (!d) continue;
    const h = num(target[2]) ?? div(projectionWidth(ctx, t), d);
    return { heads: h, headDim: d };
  }
  return undefined;
}

/** KV heads from a cache input's shape [batch, kv_heads, past, head_dim]. */
function pastHeads(ctx: Ctx, t: Trace): number | undefined {
  for (const g of t.graphInputs) {
    const s = ctx.shapes.shape(g);
    if (s?.length === 4) return num(s[1]);
  }
  return undefined;
}

/** The TorchScript SDPA decomposition scales Q and K separately by sqrt(scale) right before Q·Kᵀ. */
function sdpaShape(chain: ScoreChain, q: Trace, k: Trace): boolean {
  return chain.scale === 1 && q.scale !== 1 && k.scale !== 1;
}

/** From the Softmax input back to Q·Kᵀ, collecting masks, biases, scale factors and soft-capping. */
function scoreChain(ctx: Ctx, start: Value | null): Match<ScoreChain> {
  const nodes: Node[] = [];
  const masks: Value[] = [];
  const factors: Value[] = [];
  let inner = 1; // factors between Q·Kᵀ and a tanh (or all factors when there is none)
  let outer = 1; // factors between the tanh and the Softmax (the soft-cap)
  let tanhSeen = false;
  let constantBias = false;
  // 0/1 tensors whose zeros a term after them hides: a product by one of them is part of that mask (zero-one-mask.ts).
  const hiddenZeros = new Set<Value>();
  let v = start;
  for (let step = 0; step < 16 && v; step++) {
    const p = v.producer;
    if (!p) return fail(v.isGraphInput ? `scores come from graph input '${v.name}'` : 'scores have no producer');
    if (isProduct(p)) {
      const [a, b] = p.inputs;
      const weight = (x: Value) => isConstantLike(ctx, x) && !projectsLearnedData(ctx, x);
      if (!a || !b || weight(a) || weight(b)) return fail(`scores come from ${p.opType} '${p.name}' with a weight, not Q·Kᵀ`);
      nodes.push(p);
      // onnxruntime's optimizer folds the scale into FusedMatMul's alpha.
      const alpha = p.opType === 'FusedMatMul' ? attrFloat(p, 'alpha') : undefined;
      if (alpha !== undefined) inner *= alpha;
      const scale = tanhSeen ? inner * outer : inner;
      return ok({ qk: p, nodes, masks, factors, scale, softcap: tanhSeen ? outer : undefined, constantBias });
    }
    nodes.push(p);
    if (SCORE_PASS.has(p.opType)) {
      v = p.input(0);
    } else if (p.opType === 'Tanh') {
      tanhSeen = true;
      [inner, outer] = [1, inner];
      v = p.input(0);
    } else if (p.opType === 'Mul' || p.opType === 'Div') {
      const [a, b] = p.inputs;
      const c = scalarOf(ctx, b) ?? (p.opType === 'Mul' ? scalarOf(ctx, a) : undefined);
      if (c !== undefined) {
        inner *= p.opType === 'Mul' ? c : 1 / c;
        v = scalarOf(ctx, b) !== undefined ? a : b;
      } else {
        const next = pickScorePath(ctx, a, b);
        if (!next) return fail(`no Q·Kᵀ MatMul behind ${p.opType} '${p.name}'`);
        const other = next === a ? b! : a!;
        masks.push(other);
        if (p.opType === 'Div' || !hiddenZeros.has(other)) factors.push(other);
        v = next;
      }
    } else if (p.opType === 'Add' || p.opType === 'Sub') {
      const [a, b] = p.inputs;
      const next = pickScorePath(ctx, a, b);
      if (!next) return fail(`no Q·Kᵀ MatMul behind ${p.opType} '${p.name}'`);
      const other = next === a ? b! : a!;
      if (isConstantLike(ctx, other)) constantBias = true;
      masks.push(other);
      const zeros = p.opType === 'Add' || next === a ? keysHiddenBy(ctx, p.opType as 'Add' | 'Sub', other) : undefined;
      if (zeros) hiddenZeros.add(zeros);
      v = next;
    } else if (p.opType === 'Where') {
      const [c, x, y] = p.inputs;
      const next = pickScorePath(ctx, x, y);
      if (!next || !c) return fail(`no Q·Kᵀ MatMul behind Where '${p.name}'`);
      masks.push(c);
      v = next;
    } else {
      return fail(`scores come from ${p.opType} '${p.name}', not from a Q·Kᵀ MatMul`);
    }
  }
  return fail('no Q·Kᵀ MatMul within 16 ops before the softmax');
}

/** Which operand continues the score path: the one that reaches an activation×activation MatMul. */
function pickScorePath(ctx: Ctx, a: Value | null, b: Value | null): Value | null {
  const reaches = (v: Value | null, depth: number): boolean => {
    if (!v || depth === 0 || isConstantLike(ctx, v)) return false;
    const p = v.producer;
    if (!p) return false;
    if (isProduct(p)) return !p.inputs.some((i) => isConstantLike(ctx, i));
    if (['Add', 'Sub', 'Mul', 'Div', 'Where', 'Cast', 'Clip', 'Tanh', 'Reshape', 'Identity'].includes(p.opType) || QDQ_OPS.has(p.opType)) {
      return p.inputs.some((i) => reaches(i, depth - 1));
    }
    return false;
  };
  const ra = reaches(a, 8);
  const rb = reaches(b, 8);
  if (ra && !rb) return a;
  if (rb && !ra) return b;
  if (ra && rb) return a;
  return null;
}

/** From the Softmax output forward to the MatMul with V, through casts, dropout and the SDPA NaN guard. */
function probsToPV(ctx: Ctx, probs: Value): Match<{ pv: Node; nodes: Node[] }> {
  const nodes: Node[] = [];
  let v = probs;
  for (let step = 0; step < 6; step++) {
    const pv = v.uses.find((u) => isProduct(u.node) && u.index === 0 && u.node.input(1) && !isConstantLike(ctx, u.node.input(1)));
    if (pv) return ok({ pv: pv.node, nodes });
    const next = v.uses.find((u) =>
      ((['Cast', 'Clip', 'Dropout', 'Identity', 'Reshape'].includes(u.node.opType) || QDQ_OPS.has(u.node.opType)) && u.index === 0) ||
      (u.node.opType === 'Where' && u.index > 0) ||
      (u.node.opType === 'Mul' && u.node.inputs.every((i) => i === v || (i && isConstantLike(ctx, i)) || (i && i.isGraphInput))),
    );
    if (!next) break;
    nodes.push(next.node);
    for (const u of v.uses) if (u.node.opType === 'IsNaN') nodes.push(u.node);
    v = next.node.outputs[0];
  }
  return fail('the softmax output does not reach a MatMul with V');
}

/**
 * A product of two tensors: MatMul, onnxruntime's FusedMatMul (transposes and a scale folded in), or a two-operand
 * Einsum (`bhqd,bhkd->bhqk` and the like, as some exporters write attention).
 */
function isProduct(n: Node): boolean {
  if (n.opType === 'MatMul' && n.domain === '') return true;
  if (n.opType === 'FusedMatMul' && n.domain === 'com.microsoft') return true;
  return n.opType === 'Einsum' && n.domain === '' && n.inputs.length === 2;
}

function shapeText(ctx: Ctx, v: Value): string {
  const shape = ctx.shapes.shape(v);
  return shape ? `[${shape.map((d) => d ?? '?').join(', ')}]` : 'shape unknown';
}
