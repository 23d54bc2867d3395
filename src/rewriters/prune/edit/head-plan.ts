// The one engine behind every rewrite that changes a site's heads (prune-heads, gqa): a plan says what each new query
// head and each new KV head is made of, and which KV head each new query head reads. Applying it rewrites the Q/K/V
// projection weights and biases, the output projection's input rows, the grouped-query repeat, the literal head
// counts in the region's shapes, per-head score inputs, fused operators' attributes and the KV-cache declarations.
import { attr, type GraphBuilder } from '../../../analysis/ir/builder';
import { constantOf, type Node, type Value } from '../../../analysis/ir/graph';
import { i64 } from '../../../analysis/ir/tensor-data';
import { computedEntries, fixComputedEntries, fixShapes, type PackedWidths } from './shape-fix';
import { ShapeInfo } from '../../../analysis/ir/shapes';
import type { SiteStructure } from './structure';
import { headBlocks, isWholeAxis, type AxisBlock } from './mix';
import { writeBias, writeFeatures, writeInputs, type ResolvedProjection } from './projection';
import { selectedEntries } from './shared-selections';
import { addWeight, mixHeadRows, readFloats, setInput, type HeadMix, type Matrix } from './weights';

export interface HeadPlan {
  /** New query heads; each must be a single old head (the output projection's rows follow them). */
  q: HeadMix[];
  /** New KV heads (K and V alike). */
  kv: HeadMix[];
  /** For each new query head, the index of its new KV head. */
  qToKv: number[];
}

export interface AppliedPlan {
  heads: number;
  /** KV heads the graph now computes (more than the plan's when a fused operator needed one per query head). */
  kvHeads: number;
  warnings: string[];
}

export class PlanError extends Error {}

const single = (h: number): HeadMix => [{ head: h, weight: 1 }];
export const keepHead = single;

export function isIdentityMapping(plan: Pick<HeadPlan, 'q' | 'kv' | 'qToKv'>): boolean {
  return plan.kv.length === plan.q.length && plan.qToKv.every((k, i) => k === i);
}

/** True when query head i reads KV head ⌊i / (q/kv)⌋, the only grouping fused grouped-query operators know. */
export function isStandardGrouping(plan: Pick<HeadPlan, 'q' | 'kv' | 'qToKv'>): boolean {
  const q = plan.q.length;
  const kv = plan.kv.length;
  if (kv === 0 || q % kv !== 0) return false;
  return plan.qToKv.every((k, i) => k === Math.floor(i / (q / kv)));
}

/** One KV head per query head, each a copy of the one it reads: expressible by any operator, same outputs. */
export function perQueryKv(plan: HeadPlan): HeadPlan {
  return { q: plan.q, kv: plan.qToKv.map((k) => plan.kv[k]), qToKv: plan.q.map((_, i) => i) };
}

export function applyHeadPlan(builder: GraphBuilder, s: SiteStructure, requested: HeadPlan, rule: string): AppliedPlan {
  const warnings: string[] = [];
  if (requested.q.length === 0 || requested.kv.length === 0) throw new PlanError('a site needs at least one query head and one KV head');
  if (requested.q.some((m) => m.length !== 1 || m[0].weight !== 1)) throw new PlanError('query heads can only be kept or removed');
  let plan = requested;
  // Fused operators express only some head layouts; anything else gets one KV head per query head.
  const needs = s.form === 'ms-attention' || s.form === 'ms-mha' ? 'mha' : s.form === 'ms-gqa' || s.form === 'onnx-attention' ? 'grouped' : 'any';
  if ((needs === 'mha' && !isIdentityMapping(plan)) || (needs === 'grouped' && !isStandardGrouping(plan))) {
    plan = perQueryKv(plan);
    warnings.push(
      `site ${s.info.id}: ${s.raw.form} cannot give ${requested.q.length} query heads ${requested.kv.length} KV heads in this arrangement; ` +
        `each query head gets its own copy of its KV head (same outputs, ${plan.kv.length} KV heads in the graph)`,
    );
  }
  const base = `${s.anchor.name}::${rule}`;
  const before = { heads: s.heads, kvHeads: s.kvHeads };
  const after = { heads: plan.q.length, kvHeads: plan.kv.length };

  const computed = computedEntries(s, before, after);
  const packed = rewriteProjections(builder, s, plan, base);
  rewriteOutput(builder, s, plan, base);
  rewriteRepeat(builder, s, plan, base);
  builder.removeUnused();
  fixShapes(builder, s, before, after, packed, rule);
  fixComputedEntries(builder, s, computed, rule, () => new ShapeInfo(builder.graph));
  if (!plan.q.every((m, i) => m[0].head === i) || plan.q.length !== s.heads) gatherScoreInputs(builder, s, plan, base);
  rewriteFusedOperator(builder, s, plan, base);
  redeclareCache(builder, s, after.kvHeads);
  forgetShapes(builder, s);
  builder.removeUnused();
  return { heads: after.heads, kvHeads: after.kvHeads, warnings };
}

/**
 * New Q, K, V weights and biases; for a packed projection, the new part widths. A weight whose heads all stay as they
 * are (the query heads under GQA) is left alone: the output keeps referencing the original tensor.
 */
function rewriteProjections(builder: GraphBuilder, s: SiteStructure, plan: HeadPlan, base: string): PackedWidths | undefined {
  const d = s.headDim;
  const dv = s.vHeadDim;
  const part = (role: 'q' | 'k' | 'v', p: ResolvedProjection, start: number) => {
    const heads = role === 'q' ? plan.q : plan.kv;
    const size = role === 'v' ? dv : d;
    const blocks = headBlocks(start, size, heads);
    const bias = p.bias ? mixHeadRows({ rows: p.bias.data.length, cols: 1, data: p.bias.data }, start, size, heads).data : undefined;
    return { blocks, bias };
  };
  if (s.packed) {
    const { proj, parts } = s.packed;
    const built = parts.map((pt) => ({ pt, ...part(pt.role, proj, pt.start) }));
    const covered = parts.reduce((a, p) => a + (p.end - p.start), 0);
    if (covered !== proj.features) throw new PlanError(`the packed projection '${proj.node.name}' has features outside its Q/K/V parts`);
    const blocks = built.flatMap((b) => b.blocks);
    if (!isWholeAxis(blocks, proj.features)) {
      writeFeatures(builder, proj, blocks, `${base}/qkv`);
      if (proj.bias) writeBias(builder, proj, concat(built.map((b) => b.bias!)), `${base}/qkv`, selectedEntries(blocks));
    }
    return built.map((b) => ({ role: b.pt.role, before: b.pt.end - b.pt.start, after: b.blocks.reduce((a, x) => a + x.size, 0) }));
  }
  for (const role of ['q', 'k', 'v'] as const) {
    const p = s.proj[role]!;
    const start = p.info.sliceStart ?? 0;
    const { blocks, bias } = part(role, p, start);
    if (start === 0 && isWholeAxis(blocks, p.features)) continue;
    writeFeatures(builder, p, blocks, `${base}/${role}`);
    if (bias) writeBias(builder, p, bias, `${base}/${role}`, selectedEntries(blocks));
  }
  // MultiHeadAttention may take the Q/K/V biases packed in its 4th input instead.
  if (s.form === 'ms-mha' && s.anchor.input(3)) {
    const t = constantOf(s.anchor.input(3));
    if (!t) throw new PlanError(`the packed bias of '${s.anchor.name}' is not a constant`);
    const all = readFloats(t);
    const qw = s.heads * d;
    const kw = s.kvHeads * d;
    const col = (from: number, n: number): Matrix => ({ rows: n, cols: 1, data: all.slice(from, from + n) });
    const qb = mixHeadRows(col(0, qw), 0, d, plan.q).data;
    const kb = mixHeadRows(col(qw, kw), 0, d, plan.kv).data;
    const vb = mixHeadRows(col(qw + kw, s.kvHeads * s.vHeadDim), 0, s.vHeadDim, plan.kv).data;
    const merged = concat([qb, kb, vb]);
    setInput(s.anchor, 3, addWeight(builder, `${base}/qkv_bias`, [merged.length], merged, s.proj.q!.dtype));
  }
  return undefined;
}

function rewriteOutput(builder: GraphBuilder, s: SiteStructure, plan: HeadPlan, base: string): void {
  const unchanged = plan.q.length === s.heads && plan.q.every((m, i) => m[0].head === i);
  if (unchanged) return;
  const o = s.proj.o;
  if (!o) throw new PlanError('no output projection');
  const blocks: AxisBlock[] = headBlocks(0, s.vHeadDim, plan.q);
  writeInputs(builder, o, blocks, `${base}/o`);
}

/**
 * Unfused sites: each new query head must read its KV head. The existing repeat is replaced by a Gather of the KV
 * heads (it expresses any assignment, also uneven ones), or by nothing when each query head has its own KV head in order.
 */
function rewriteRepeat(builder: GraphBuilder, s: SiteStructure, plan: HeadPlan, base: string): void {
  if (s.form !== 'unfused') return;
  const identity = isIdentityMapping(plan);
  for (const role of ['k', 'v'] as const) {
    const r = s.repeats[role];
    if (r) {
      const to = identity ? r.pre : gatherHeads(builder, r.pre, plan.qToKv, 1, `${base}/repeat_${role}`);
      builder.replaceAllUses(r.post, to);
      continue;
    }
    if (identity) continue;
    // No repeat yet (a multi-head site made grouped-query): gather K/V heads right where they enter the core.
    const io = s.raw.io[role];
    const core = role === 'k' ? s.raw.anchors.qk : s.raw.anchors.pv;
    const mm = io?.uses.find((u) => u.node.name === core && u.index === 1)?.node;
    const shape = s.shapes.shape(io);
    if (!io || !mm || !shape || shape.length !== 4) throw new PlanError(`cannot place the ${role.toUpperCase()} head gather: the ${role.toUpperCase()} tensor is not [batch, heads, ·, ·]`);
    setInput(mm, 1, gatherHeads(builder, io, plan.qToKv, 1, `${base}/repeat_${role}`));
  }
}

function gatherHeads(builder: GraphBuilder, x: Value, heads: number[], axis: number, name: string): Value {
  const idx = builder.initializer(builder.uniqueName(`${name}_heads`), [heads.length], i64(heads));
  return builder.op('Gather', [x, idx], { name, attrs: { axis: attr.int(axis) } });
}

/** Inputs of the score path that carry one slice per query head (relative-position or ALiBi biases, per-head masks). */
function gatherScoreInputs(builder: GraphBuilder, s: SiteStructure, plan: HeadPlan, base: string): void {
  const kept = plan.q.map((m) => m[0].head);
  const inRegion = (v: Value) => !!v.producer && s.region.has(v.producer);
  for (const n of [...s.region]) {
    if (s.roles.get(n) !== 'scores' || !builder.graph.nodes.includes(n)) continue;
    if (!['Add', 'Sub', 'Mul', 'Div', 'Where'].includes(n.opType)) continue;
    n.inputs.forEach((v, i) => {
      if (!v || inRegion(v)) return;
      const shape = s.shapes.shape(v);
      if (!shape || shape.length < 3 || shape[shape.length - 3] !== s.heads || s.heads === 1) return;
      setInput(n, i, gatherHeads(builder, v, kept, shape.length - 3, `${base}/score_heads`));
    });
  }
}

function rewriteFusedOperator(builder: GraphBuilder, s: SiteStructure, plan: HeadPlan, base: string): void {
  const n = s.anchor;
  const q = plan.q.length;
  const kv = plan.kv.length;
  const setIf = (name: string, value: number) => {
    if (n.attr(name)) builder.setAttribute(n, name, attr.int(value));
  };
  switch (s.form) {
    case 'ms-attention': {
      builder.setAttribute(n, 'num_heads', attr.int(q));
      if (n.attr('qkv_hidden_sizes')) builder.setAttribute(n, 'qkv_hidden_sizes', attr.ints([q * s.headDim, kv * s.headDim, kv * s.vHeadDim]));
      break;
    }
    case 'ms-mha':
      builder.setAttribute(n, 'num_heads', attr.int(q));
      gatherPerHeadInput(builder, n, 5, s, plan, base);
      break;
    case 'ms-gqa':
      builder.setAttribute(n, 'num_heads', attr.int(q));
      builder.setAttribute(n, 'kv_num_heads', attr.int(kv));
      break;
    case 'onnx-attention':
      setIf('q_num_heads', q);
      setIf('kv_num_heads', kv);
      gatherPerHeadInput(builder, n, 3, s, plan, base);
      break;
    case 'unfused':
      break;
  }
}

/** A fused operator's attention bias or mask with a head axis ([batch, heads, q, k]) keeps the kept heads' slices. */
function gatherPerHeadInput(builder: GraphBuilder, n: Node, index: number, s: SiteStructure, plan: HeadPlan, base: string): void {
  const v = n.input(index);
  const shape = s.shapes.shape(v);
  if (!v || !shape || shape.length !== 4 || shape[1] !== s.heads || s.heads === 1) return;
  setInput(n, index, gatherHeads(builder, v, plan.q.map((m) => m[0].head), 1, `${base}/bias_heads`));
}

/**
 * The KV cache shrinks with the KV heads: the declared head axis of the site's past inputs and present outputs follows,
 * so callers (and input synthesis) feed caches of the new size.
 */
function redeclareCache(builder: GraphBuilder, s: SiteStructure, kvHeads: number): void {
  const names = [...s.info.kvCache.pastInputs, ...s.info.kvCache.presentOutputs];
  for (const name of names) {
    const v = builder.graph.values.get(name);
    const dims = v?.info?.type?.tensorType?.shape?.dim;
    if (!dims) continue;
    const axis = dims.length === 5 ? 2 : 1;
    const dim = dims[axis];
    if (dim && dim.dimValue !== undefined && dim.dimValue !== null && Number(dim.dimValue) === s.kvHeads) dims[axis] = { dimValue: kvHeads };
  }
}

/** Declared shapes of values whose head count changed would contradict the new graph; onnxruntime re-infers them. */
function forgetShapes(builder: GraphBuilder, s: SiteStructure): void {
  const proto = builder.graph.proto as { valueInfo?: { name?: string | null }[] };
  if (!proto.valueInfo?.length) return;
  const changed = new Set<string>();
  for (const n of s.region) for (const o of n.outputs) changed.add(o.name);
  for (const p of Object.values(s.proj)) {
    if (!p) continue;
    for (const o of p.node.outputs) changed.add(o.name);
    changed.add(p.output.name);
  }
  proto.valueInfo = proto.valueInfo.filter((vi) => !changed.has(vi.name ?? ''));
}

function concat(parts: Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
