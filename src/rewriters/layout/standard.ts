// Rewrites an attention site whose exporter chose another layout — heads folded into the batch (torch.nn's
// MultiheadAttention), Q, K and V cut out of one packed projection by Gather or Slice (timm), sequence-first
// activations — into the standard written-out form every rule reads: per-role projections, [batch, heads, positions,
// head size], Q·Kᵀ, the same masks, Softmax, ·V, heads merged, the output projection. It is exact: the new weights are
// the old ones' columns picked by the site's head map, and the result replaces the old output projection's value in
// the layout the rest of the graph expects. The Softmax keeps its name, so the site keeps its id.
import type { GraphBuilder } from '../../analysis/ir/builder';
import { attr } from '../../analysis/ir/builder';
import type { Node, Value } from '../../analysis/ir/graph';
import { ShapeInfo } from '../../analysis/ir/shapes';
import type { RawSite } from '../../analysis/attention/site';
import type { HeadColumns, SiteBinding, SiteInfo, TokenAxes } from '../../analysis/report/types';
import { addWeight, type WeightDtype } from '../prune/edit/weights';
import { SiteOps } from '../sparse/ops';
import { pickColumns, pickInputRows, projectionWeights, type ProjectionWeights } from './projection-weights';
import { LayoutError, standardOperand } from './score-operands';
import { retargetShapeReaders } from './shape-readers';

const STANDARD = JSON.stringify([['batch'], ['head'], ['query'], ['key']]);

/** Whether the site's Q·Kᵀ gives [batch, heads, queries, keys] from [batch, heads, positions, size] operands. */
export function standardCore(b: SiteBinding): boolean {
  return !b.einsum && JSON.stringify(b.scoreAxes) === STANDARD;
}

/** Why the site is not in the standard layout the rules read (null when it is, or when nothing can be said). */
export function nonStandardLayout(info: SiteInfo): string | null {
  const b = info.binding;
  if (!b || (info.form !== 'unfused' && info.form !== 'sdpa-decomposed')) return null;
  if (b.einsum) return `an Einsum core (${b.einsum.qk}; ${b.einsum.pv})`;
  if (JSON.stringify(b.scoreAxes) !== STANDARD) return `scores laid out as ${b.scoreAxes.map((a) => a.join('·')).join(', ')}`;
  const packed = b.q.node === b.k.node || b.k.node === b.v.node;
  if (packed && !info.projections.q?.fused && !info.projections.k?.fused) return 'Q, K and V cut from one projection by Gather or Slice';
  return null;
}

function roleRows(h: HeadColumns): number[] {
  const offs = h.offsets ?? Array.from({ length: h.width }, (_, i) => i);
  return h.starts.flatMap((s) => offs.map((o) => s + o));
}

/** `before`: the model's shapes before any site was rewritten (for the Reshapes on this site's scores and probabilities). */
export function toStandardLayout(b: GraphBuilder, raw: RawSite, info: SiteInfo, before: ShapeInfo): void {
  const bind = info.binding;
  if (!bind?.tokens?.out || !bind.o) throw new LayoutError(bind?.oUnbound ?? 'the site has no bound token axes');
  if (raw.softcap !== undefined) throw new LayoutError('soft-capped scores');
  if (raw.kvCache.reads || raw.kvCache.writes) throw new LayoutError('a KV cache (the rebuilt site would not carry it)');
  const runtimeFactors = checkPlainPaths(raw, new ShapeInfo(b.model.graph));
  if (!raw.io.q || !raw.io.k) throw new LayoutError('the site has no Q or K value');
  const graph = b.model.graph;
  const shapes = new ShapeInfo(graph);
  const resolve = (name: string) => {
    const r = projectionWeights(graph, name, shapes);
    if (!r.ok) throw new LayoutError(r.reason);
    return r.value;
  };
  const pq = resolve(bind.q.node);
  const pk = resolve(bind.k.node);
  const pv = resolve(bind.v.node);
  const po = resolve(bind.o.node);
  const sm = raw.anchor;
  const ops = new SiteOps(b, `${sm.name}::layout`, pq.dtype);
  const chain = scoreChain(graph, sm, raw);
  const probCasts = probsPath(before, sm);

  const windows = checkWindows(bind);
  const acts = new Map<Value, Value>();
  // The batch of the activation Q reads (for masks that differ by window, and to merge windows back).
  const batchDim = () => (bind.tokens!.q.batch === undefined ? ops.i64([1], 'one') : ops.vec(ops.dim(ops.shape(pq.activation, 'act_shape'), bind.tokens!.q.batch, 'act_batch'), 'act_batch_vec'));
  const project = (p: ProjectionWeights, role: 'q' | 'k' | 'v', heads: number) => projectRole(b, ops, p, bind[role], bind.tokens![role], heads, role, acts);
  let q = project(pq, 'q', bind.heads);
  // The scalar factors go into Q (the replay below skips them on the scores); a tensor factor is replayed there.
  const scalar = raw.scale ?? raw.scalarScale ?? null;
  if (scalar !== null && scalar !== 1) q = ops.op('Mul', [q, ops.floats([scalar], [], 'scale')], 'q_scaled');
  // Scalars computed at run time on Q's or K's way (Swin's head_dim ** -0.5 from the shape) scale the scores alike.
  for (const f of runtimeFactors) q = ops.op(f.op, [q, f.value], 'q_runtime_scaled');
  const k = repeatKv(ops, project(pk, 'k', bind.kvHeads), bind, 'k');
  const v = repeatKv(ops, project(pv, 'v', bind.kvHeads), bind, 'v');
  let scores = ops.op('MatMul', [q, ops.transpose(k, [0, 1, 3, 2], 'k_t')], 'qk');
  let onPath = chain.length ? chain[0].inputs.find((x) => x?.producer?.name === raw.anchors.qk) ?? null : null;
  // The exporter's layout of the scores at each op: BART, Marian and fairseq add their masks to a [batch, heads, q, k]
  // view of [batch·heads, q, k] scores, so a Reshape there changes the layout the masks are read in.
  let axes = bind.scoreAxes;
  for (const n of chain) {
    if (n.opType === 'Reshape') axes = regroupedAxes(before, n, axes, bind.heads);
    else scores = replay(ops, shapes, n, onPath, scores, { ...bind, scoreAxes: axes }, batchDim);
    onPath = n.outputs[0];
  }
  const anchorName = sm.name;
  b.renameNode(sm, b.uniqueNodeName(`${anchorName}_replaced`));
  // SiteOps holds the model at opset 13 or later, where Softmax normalises over one axis.
  const probs = b.op('Softmax', [scores], { name: anchorName, attrs: { axis: attr.int(-1) } });
  const cast = probCasts.reduce((x, c) => ops.op('Cast', [x], 'probs_cast', { to: attr.int(c) }), probs);
  const ctx = ops.op('MatMul', [cast, v], 'pv');
  const merged = ops.reshape(ops.transpose(ctx, [0, 2, 1, 3], 'merge_t'), ops.i64([0, 0, bind.heads * bind.vHeadDim], 'merge_shape'), 'merge');
  const wo = pickInputRows(po, roleRows(bind.o));
  let out = ops.op('MatMul', [merged, weightOf(b, ops, 'o', wo.rows, wo.cols, wo.data, po.dtype)], 'o_proj');
  if (po.bias) out = ops.op('Add', [out, sharedWeight(b, ops.name('o_bias'), [po.bias.length], po.bias, po.dtype)], 'o_bias_add');
  if (windows) out = ops.reshape(out, ops.shapeOf([batchDim(), -1, wo.cols], 'o_unwindow_shape'), 'o_unwindow');
  out = toOriginalTokens(ops, out, bind);
  b.replaceAllUses(po.output, out, { graphOutputs: true });
  if (raw.layouts) retargetShapeReaders(b, ops, raw.layouts);
}

/**
 * One role's heads as [batch, heads, positions, head size] from a projection of their own: the columns of `p` the head
 * map gives them, split into heads. `acts` shares the laid-out activation between roles.
 */
export function projectRole(b: GraphBuilder, ops: SiteOps, p: ProjectionWeights, cols: HeadColumns, t: TokenAxes, heads: number, role: string, acts = new Map<Value, Value>()): Value {
  const x = standardActivation(ops, acts, p.activation, t, role);
  const { weight, bias } = pickColumns(p, roleRows(cols));
  let y = ops.op('MatMul', [x, weightOf(b, ops, role, weight.rows, weight.cols, weight.data, p.dtype)], `${role}_proj`);
  if (bias) y = ops.op('Add', [y, sharedWeight(b, ops.name(`${role}_bias`), [bias.length], bias, p.dtype)], `${role}_bias_add`);
  const split = ops.reshape(y, ops.i64([0, 0, heads, cols.width], `${role}_heads`), `${role}_split`);
  return ops.transpose(split, [0, 2, 1, 3], `${role}_bhsd`);
}

/** Ops that only move entries between the projections and the core (or on to the output projection). */
export const LAYOUT_OPS = new Set(['Reshape', 'Transpose', 'Gather', 'Slice', 'Split', 'Squeeze', 'Unsqueeze', 'Expand', 'Tile', 'Identity', 'Cast', 'Dropout', 'Flatten']);

/**
 * The rebuilt site applies the projections, the scale and the score ops, nothing else: a path with rotary embedding,
 * a cache Concat or any other computation between a projection and the core would be dropped, so it is refused.
 * Returns the scalar factors computed at run time (one-element values that are not constants) on Q's and K's paths.
 */
function checkPlainPaths(raw: RawSite, shapes: ShapeInfo): { op: 'Mul' | 'Div'; value: Value }[] {
  const runtime: { op: 'Mul' | 'Div'; value: Value }[] = [];
  const onQk = new Set([...upstream(raw.io.q), ...upstream(raw.io.k)]);
  for (const v of raw.layouts?.keys() ?? []) {
    const p = v.producer;
    if (!p || !raw.nodes.has(p) || LAYOUT_OPS.has(p.opType)) continue;
    const scalarFactor = (p.opType === 'Mul' || p.opType === 'Div') && p.inputs.some((x) => x !== null && !raw.layouts!.has(x) && knownScalar(shapes, x));
    const projection = p.opType === 'MatMul' || p.opType === 'Gemm' || p.opType === 'Add';
    if (scalarFactor || (projection && isProjectionOutput(raw, v))) continue;
    const factor = (p.opType === 'Mul' || p.opType === 'Div') && onQk.has(p) ? runtimeScalar(p, raw, shapes) : undefined;
    if (factor) {
      runtime.push({ op: p.opType as 'Mul' | 'Div', value: factor });
      continue;
    }
    throw new LayoutError(`${p.opType} '${p.name}' between a projection and the core`);
  }
  return runtime;
}

/** A one-element value the analysis reads (a constant, or folded from constants): it is counted in the site's scale. */
function knownScalar(shapes: ShapeInfo, x: Value): boolean {
  if (x.constant) return x.constant.size === 1;
  const vals = shapes.values(x);
  return vals?.length === 1 && typeof vals[0] === 'number' && !!shapes.shape(x)?.every((d) => d === 1);
}

/** The one-element, computed-at-run-time operand of a Mul (either side) or Div (the divisor), off the data path. */
function runtimeScalar(p: Node, raw: RawSite, shapes: ShapeInfo): Value | undefined {
  const candidates = p.opType === 'Div' ? [p.input(1)] : [p.input(0), p.input(1)];
  const x = candidates.find((c) => c && !raw.layouts!.has(c) && !c.constant && shapes.shape(c)?.every((d) => d === 1));
  return x ?? undefined;
}

/** Nodes on the way to `v` (its producers, transitively). */
function upstream(v: Value | undefined): Set<Node> {
  const out = new Set<Node>();
  const stack = v?.producer ? [v.producer] : [];
  while (stack.length && out.size < 10_000) {
    const n = stack.pop()!;
    if (out.has(n)) continue;
    out.add(n);
    for (const i of n.inputs) if (i?.producer) stack.push(i.producer);
  }
  return out;
}

function isProjectionOutput(raw: RawSite, v: Value): boolean {
  const b = raw.binding;
  const names = b ? [b.q.node, b.k.node, b.v.node, b.o?.node] : [];
  const p = v.producer!;
  return names.includes(p.name) || p.inputs.some((x) => x !== null && names.includes(x.producer?.name ?? ''));
}

function weightOf(b: GraphBuilder, ops: SiteOps, role: string, rows: number, cols: number, data: Float64Array, dtype: WeightDtype): Value {
  return sharedWeight(b, ops.name(`${role}_weight`), [rows, cols], data, dtype);
}

/**
 * Exporters store the weights of identical layers once (cloned torch.nn layers, Identity-deduplicated initializers);
 * the new weights of such sites are stored once too, so that re-laying a model out does not grow its file.
 */
const created = new WeakMap<GraphBuilder, Map<string, { data: Float64Array; value: Value }[]>>();

function sharedWeight(b: GraphBuilder, name: string, dims: number[], data: Float64Array, dtype: WeightDtype): Value {
  let byKey = created.get(b);
  if (!byKey) created.set(b, (byKey = new Map()));
  const key = `${dtype}:${dims.join('x')}:${checksum(data)}`;
  const same = byKey.get(key)?.find((c) => c.data.every((x, i) => x === data[i]) && b.model.graph.values.get(c.value.name) === c.value);
  if (same) return same.value;
  const value = addWeight(b, name, dims, data, dtype);
  byKey.set(key, [...(byKey.get(key) ?? []), { data, value }]);
  return value;
}

function checksum(data: Float64Array): number {
  let h = 0;
  for (let i = 0; i < data.length; i += Math.max(1, data.length >> 10)) h = (h * 31 + Math.round(data[i] * 1e6)) | 0;
  return h;
}

/**
 * Windowed attention (positions cut into windows of N consecutive tokens): the standard form takes the windows into
 * the batch, [batch·windows, heads, N, size], so every rule reads positions within a window. Q, K and V must be cut
 * alike. Returns the window size, or undefined for attention over whole sequences.
 */
function checkWindows(bind: SiteBinding): number | undefined {
  const t = bind.tokens!;
  const n = t.q.window;
  if (t.k.window !== n || t.v.window !== n) throw new LayoutError('Q, K and V are cut into different windows');
  if (n !== undefined && JSON.stringify(bind.scoreAxes) !== WINDOWED) throw new LayoutError(`windowed scores laid out as ${bind.scoreAxes.map((a) => a.join('·')).join(', ')}`);
  return n;
}

const WINDOWED = JSON.stringify([['batch'], ['window'], ['head'], ['query'], ['key']]);

/**
 * The activation as [batch, positions, features] (a batch axis of 1 added when it has none); windowed, as
 * [batch·windows, positions in a window, features].
 */
function standardActivation(ops: SiteOps, cache: Map<Value, Value>, x: Value, t: TokenAxes, role: string): Value {
  const hit = cache.get(x);
  if (hit) return hit;
  let y: Value;
  if (t.batch === undefined && t.rank === 2) y = ops.unsqueeze(x, [0], `${role}_batch`);
  else if (t.rank === 3 && t.batch !== undefined && t.batch !== 2 && t.positions !== 2) {
    const perm = [t.batch, t.positions, 2];
    y = perm.join() === '0,1,2' ? x : ops.transpose(x, perm, `${role}_act`);
  } else throw new LayoutError(`an activation of rank ${t.rank} with batch ${t.batch ?? 'none'} and positions ${t.positions}`);
  if (t.window !== undefined) y = ops.reshape(y, ops.i64([-1, t.window, 0], `${role}_windows`), `${role}_windowed`);
  cache.set(x, y);
  return y;
}

/** K or V [batch, kv heads, positions, size] repeated to the query heads, in the site's query-to-KV order. */
function repeatKv(ops: SiteOps, x: Value, bind: SiteBinding, role: string): Value {
  if (bind.kvHeads === bind.heads && bind.qToKv.every((k, h) => k === h)) return x;
  return ops.op('Gather', [x, ops.i64(bind.qToKv, `${role}_kv_of_head`)], `${role}_repeat`, { axis: attr.int(1) });
}

/** The ops between Q·Kᵀ and the Softmax, from Q·Kᵀ outwards. */
function scoreChain(graph: import('../../analysis/ir/graph').Graph, sm: Node, raw: RawSite): Node[] {
  const qk = raw.anchors.qk ? graph.nodeByName(raw.anchors.qk) : undefined;
  if (!qk) throw new LayoutError('the site has no Q·Kᵀ node');
  const out: Node[] = [];
  let v = sm.input(0);
  for (let i = 0; i < 16 && v && v.producer !== qk; i++) {
    const p: Node | null = v.producer;
    if (!p) throw new LayoutError('the scores have no producer');
    out.unshift(p);
    v = p.inputs.find((x) => x && reaches(x, qk, 16)) ?? null;
  }
  if (!v || v.producer !== qk) throw new LayoutError('the scores do not lead back to Q·Kᵀ');
  return out;
}

function reaches(v: Value, target: Node, depth: number): boolean {
  const p = v.producer;
  if (!p || depth === 0) return false;
  return p === target || p.inputs.some((x) => x !== null && reaches(x, target, depth - 1));
}

/**
 * Between the probabilities and ·V (a MatMul or an Einsum) only casts, dropout and Reshapes that regroup batch and
 * heads (BLOOM's view back to [batch·heads, q, k]) may sit. Returns the casts' target types, which the rebuilt site
 * applies again (a float32 softmax cast back to the model's float16).
 */
function probsPath(shapes: ShapeInfo, sm: Node): number[] {
  const casts: number[] = [];
  let v = sm.outputs[0];
  for (let i = 0; i < 5; i++) {
    const uses = v.uses.filter((u) => u.node.opType !== 'Shape');
    const mm = uses.find((u) => (u.node.opType === 'MatMul' || u.node.opType === 'Einsum') && u.index === 0);
    if (mm) return casts;
    const next = uses.find((u) => ['Dropout', 'Identity', 'Cast'].includes(u.node.opType) || (u.node.opType === 'Reshape' && u.index === 0 && keepsLastTwo(shapes, u.node)));
    if (!next) break;
    if (next.node.opType === 'Cast') casts.push(Number(next.node.attr('to')?.i ?? 1));
    v = next.node.outputs[0];
  }
  throw new LayoutError('the probabilities pass through ops other than Dropout on their way to ·V');
}

type ScoreAxes = SiteBinding['scoreAxes'];
const FOLDED = JSON.stringify([['batch', 'head'], ['query'], ['key']]);

/** A Reshape that leaves the query and key axes as they are (known, and equal before and after). */
function keepsLastTwo(shapes: ShapeInfo, n: Node): boolean {
  const a = shapes.shape(n.input(0)!);
  const b = shapes.shape(n.outputs[0]);
  if (!a || !b || a.length < 2 || b.length < 2) return false;
  const tail = (s: typeof a) => s.slice(-2);
  return tail(a).every((d, i) => d !== null && d === tail(b)[i]);
}

/**
 * The scores' layout after a Reshape on them: batch·heads split into batch and heads, or merged back. Any other
 * Reshape moves scores between positions the rules would read differently, so it is refused.
 */
function regroupedAxes(shapes: ShapeInfo, n: Node, axes: ScoreAxes, heads: number): ScoreAxes {
  const out = shapes.shape(n.outputs[0]);
  const key = JSON.stringify(axes);
  if (out && keepsLastTwo(shapes, n)) {
    if (key === FOLDED && out.length === 4 && out[1] === heads) return [['batch'], ['head'], ['query'], ['key']];
    if (key === STANDARD && out.length === 3) return [['batch', 'head'], ['query'], ['key']];
    if (out.length === axes.length && JSON.stringify(out) === JSON.stringify(shapes.shape(n.input(0)!))) return axes;
  }
  throw new LayoutError(`Reshape '${n.name}' on the scores`);
}

/** One op of the score chain again on the standard scores: scalar scales are already in Q, masks are re-laid out. */
function replay(ops: SiteOps, shapes: ShapeInfo, n: Node, prev: Value | null, scores: Value, bind: SiteBinding, batchDim: () => Value): Value {
  const dataIdx = prev ? n.inputs.indexOf(prev) : -1;
  if (dataIdx < 0) throw new LayoutError(`'${n.name}' is not on the score path`);
  const others = n.inputs.filter((x, i): x is Value => i !== dataIdx && x !== null);
  // A constant scalar is in the site's scale (applied to Q); one computed at run time is applied again here.
  const constantScalar = others.every((x) => knownScalar(shapes, x));
  if ((n.opType === 'Mul' || n.opType === 'Div') && constantScalar) return scores;
  const runtimeScalar = others.every((x) => shapes.shape(x)?.every((d) => d === 1));
  if ((n.opType === 'Mul' || n.opType === 'Div') && runtimeScalar) return ops.op(n.opType, n.inputs.map((x, i) => (i === dataIdx ? scores : x)), 'runtime_scale');
  if (n.opType === 'Identity') return scores;
  if (n.opType === 'Cast') return ops.op('Cast', [scores], 'cast', { to: attr.int(Number(n.attr('to')?.i ?? 1)) });
  if (!['Add', 'Sub', 'Mul', 'Where'].includes(n.opType)) throw new LayoutError(`${n.opType} '${n.name}' on the scores`);
  const inputs = n.inputs.map((x, i) => (i === dataIdx ? scores : x ? standardOperand(ops, shapes, x, bind, batchDim) : null));
  return ops.op(n.opType, inputs, n.opType.toLowerCase());
}

/** From [batch, positions, features] to the token layout the old output projection produced. */
function toOriginalTokens(ops: SiteOps, out: Value, bind: SiteBinding): Value {
  const groups = bind.tokens!.out!;
  const read = new Set(groups.flat());
  // A token axis of size 1 need not appear among the output's axes (it carries no factor): a site without a batch, a
  // fixed batch of 1, one query position (a pooling probe). It is dropped here, and the Reshape below puts a 1 back
  // where the exporter's shape has one.
  const ofOne = { batch: bind.tokens!.q.batch === undefined || bind.batch === 1, positions: bind.queryPositions === 1 };
  const kept = (['batch', 'positions'] as const).filter((k) => read.has(k) || !ofOne[k]);
  const dropped = [0, 1].filter((i) => !kept.includes((['batch', 'positions'] as const)[i]));
  let y = dropped.length ? ops.squeeze(out, dropped, 'o_unbatch') : out;
  const order = groups.flat().map((k) => kept.indexOf(k));
  const rank = kept.length + 1;
  const perm = [...order, rank - 1];
  if (perm.length !== rank || order.some((i) => i < 0)) throw new LayoutError('the output projection reads tokens the site does not have');
  if (perm.some((p, i) => p !== i)) y = ops.transpose(y, perm, 'o_tokens');
  if (groups.every((g) => g.length <= 1) && groups.length === rank - 1) return y;
  const shape = ops.shape(y, 'o_shape');
  let at = 0;
  const parts: (number | Value)[] = groups.map((g) => {
    const dims = g.map(() => ops.vec(ops.dim(shape, at++, 'o_dim'), 'o_vec'));
    if (dims.length === 0) return 1;
    return dims.reduce((a, d) => ops.op('Mul', [a, d], 'o_group'));
  });
  parts.push(ops.vec(ops.dim(shape, rank - 1, 'o_width'), 'o_width_vec'));
  return ops.reshape(y, ops.shapeOf(parts, 'o_target'), 'o_restore');
}
