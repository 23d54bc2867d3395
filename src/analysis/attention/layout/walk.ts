// Follows the axes of a projection's output through the data path to the attention core: from the value the
// projection produces (after its bias) back-to-front to Q, K or V as it enters the score product, and from the core's
// output forward to the output projection. Each op maps the layout exactly (factors.ts) or the walk fails with the
// op and the reason.
import type { Node, Value } from '../../ir/graph';
import type { Dim } from '../../report/types';
import { attrInt, attrInts, QDQ_OPS, type Ctx } from '../match';
import { isConstantOperand } from '../trace';
import * as F from './factors';

type Step<T> = F.Step<T>;
const bad = <T = never>(reason: string): Step<T> => ({ ok: false, reason });

const SAME = new Set(['Identity', 'Cast', 'Dropout', 'Neg', 'Contiguous', ...QDQ_OPS]);
const ELEMENTWISE = new Set(['Add', 'Sub', 'Mul', 'Div']);

/**
 * The layout of a projection's output: its leading axes are the activation's, the last its output features. An
 * activation flattened to [tokens, features] just before the projection (GPT-2's Conv1D, torch.nn's out_proj) keeps
 * the axes it was flattened from, so that the Reshape after the projection can split them again.
 */
export function projectionLayout(ctx: Ctx, out: Value, activation: Value | undefined): Step<F.Layout> {
  const shape = ctx.shapes.shape(out);
  const width = shape?.[shape.length - 1];
  if (!shape || typeof width !== 'number') return bad(`the width of projection output '${out.name}' is unknown`);
  const flat = shape.length === 2 ? flattenedFrom(ctx, activation) : undefined;
  // Token factors of a flattened activation index the tensor before the flattening, which the name says.
  const source = `${activation?.name ?? out.name}${flat ? FLATTENED : ''}`;
  const token = (d: Dim, axis: number): F.Factor[] => (d === 1 ? [] : [{ kind: 'token', source, axis, size: d }]);
  let axes: F.Factor[][] = shape.slice(0, -1).map((d, axis) => token(d, axis));
  if (flat) axes = [flat.slice(0, -1).flatMap((d, axis) => token(d, axis))];
  axes.push([{ kind: 'feature', size: width, stride: 1 }]);
  return { ok: true, value: { axes, offset: 0 } };
}

export const FLATTENED = '#flattened';

/** The shape an activation was flattened from, when a Reshape/Flatten merged its leading axes and kept the last. */
function flattenedFrom(ctx: Ctx, v: Value | undefined): Dim[] | undefined {
  const p = v?.producer;
  if (!p || (p.opType !== 'Reshape' && p.opType !== 'Flatten')) return undefined;
  const before = ctx.shapes.shape(p.input(0));
  const after = ctx.shapes.shape(v);
  if (!before || !after || after.length !== 2 || before.length < 3) return undefined;
  const last = before[before.length - 1];
  return typeof last === 'number' && last === after[1] ? before : undefined;
}

/** The layout of `target`, walking back to `origin` (whose layout is given). */
export function layoutBack(ctx: Ctx, target: Value, origin: Value, originLayout: F.Layout, record?: Map<Value, F.Layout>): Step<F.Layout> {
  const memo = new Map<Value, Step<F.Layout>>();
  const at = (v: Value, depth: number): Step<F.Layout> => {
    if (v === origin) return { ok: true, value: originLayout };
    const known = memo.get(v);
    if (known) return known;
    memo.set(v, bad('a cycle on the data path'));
    const r = depth > 64 ? bad('a data path longer than 64 ops') : stepBack(ctx, v, (u) => at(u, depth + 1));
    memo.set(v, r);
    return r;
  };
  const result = at(target, 0);
  if (record && result.ok) {
    record.set(origin, originLayout);
    for (const [v, r] of memo) if (r.ok) record.set(v, r.value);
  }
  return result;
}

function stepBack(ctx: Ctx, v: Value, at: (u: Value) => Step<F.Layout>): Step<F.Layout> {
  const p = v.producer;
  if (!p) return bad(v.isGraphInput ? `'${v.name}' is a graph input` : `'${v.name}' has no producer`);
  const data = (i: number) => p.input(i);
  const first = (): Step<F.Layout> => {
    const d = data(0);
    return d ? at(d) : bad(`${p.opType} '${p.name}' has no data input`);
  };
  if (p.domain === 'com.microsoft' && p.opType === 'RotaryEmbedding') return first();
  if (p.domain !== '') return bad(`${p.qualifiedOp} '${p.name}' on the data path`);
  if (SAME.has(p.opType)) return first();
  if (ELEMENTWISE.has(p.opType) || p.opType === 'Where') return elementwise(ctx, p, v, at);
  if (p.opType === 'Concat') return concat(ctx, p, v, at);
  const input = first();
  if (!input.ok) return input;
  const l = input.value;
  switch (p.opType) {
    case 'Reshape':
    case 'Flatten': {
      const dims = ctx.shapes.shape(v);
      if (!dims) return bad(`the output shape of ${p.opType} '${p.name}' is unknown`);
      return F.reshape(l, dims, p.opType === 'Reshape' && dims.filter((d) => d === null).length > 1 ? targetRefs(p.input(1), dims.length) : []);
    }
    case 'Transpose':
      return F.transpose(l, attrInts(p, 'perm'));
    case 'Gather':
      return gather(ctx, p, l);
    case 'Slice':
      return slice(ctx, p, l);
    case 'Split':
      return split(ctx, p, v, l);
    case 'Squeeze':
      return F.squeeze(l, axesOf(ctx, p));
    case 'Unsqueeze': {
      const axes = axesOf(ctx, p);
      return axes ? F.unsqueeze(l, axes) : bad(`the axes of Unsqueeze '${p.name}' are not constant`);
    }
    case 'Expand':
      return expand(ctx, p, v, l);
    case 'Tile':
      return tile(ctx, p, l);
    default:
      return bad(`${p.opType} '${p.name}' on the data path`);
  }
}

/** Add/Mul/... with a constant (bias, scale) or two data inputs (rotary: x·cos + rotate(x)·sin). */
function elementwise(ctx: Ctx, p: Node, v: Value, at: (u: Value) => Step<F.Layout>): Step<F.Layout> {
  const idx = p.opType === 'Where' ? [1, 2] : [0, 1];
  const rank = ctx.shapes.shape(v)?.length;
  let reason = `${p.opType} '${p.name}' has no data input`;
  for (const i of idx) {
    const d = p.input(i);
    if (!d || isConstantOperand(ctx, d)) continue;
    const r = at(d);
    if (r.ok) return { ok: true, value: rank ? F.broadcastRank(r.value, rank) : r.value };
    reason = r.reason;
  }
  return bad(reason);
}

function constInts(ctx: Ctx, v: Value | null): number[] | undefined {
  if (!v) return undefined;
  const vals = ctx.shapes.values(v);
  if (!vals || vals.some((x) => typeof x !== 'number')) return undefined;
  return vals as number[];
}

/** Axes from the attribute (opset < 13) or the second input (opset 13+). */
function axesOf(ctx: Ctx, p: Node): number[] | undefined {
  return attrInts(p, 'axes') ?? constInts(ctx, p.input(1));
}

function gather(ctx: Ctx, p: Node, l: F.Layout): Step<F.Layout> {
  const idxV = p.input(1);
  const idx = constInts(ctx, idxV);
  const idxShape = ctx.shapes.shape(idxV);
  if (!idx || idx.length !== 1 || !idxShape) return bad(`Gather '${p.name}' does not take one constant index`);
  const axis = norm(attrInt(p, 'axis') ?? 0, l.axes.length);
  return F.gatherIndex(l, axis, idx[0], idxShape.length === 1);
}

function slice(ctx: Ctx, p: Node, l: F.Layout): Step<F.Layout> {
  const attrForm = attrInts(p, 'starts') !== undefined;
  const starts = attrForm ? attrInts(p, 'starts') : constInts(ctx, p.input(1));
  const ends = attrForm ? attrInts(p, 'ends') : constInts(ctx, p.input(2));
  const axes = (attrForm ? attrInts(p, 'axes') : constInts(ctx, p.input(3))) ?? starts?.map((_, i) => i);
  const steps = attrForm ? undefined : constInts(ctx, p.input(4));
  if (!starts || !ends || !axes) return bad(`the bounds of Slice '${p.name}' are not constant`);
  if (steps && steps.some((s) => s !== 1)) return bad(`Slice '${p.name}' has a step`);
  let out: Step<F.Layout> = { ok: true, value: l };
  axes.forEach((a, i) => {
    if (out.ok) out = F.sliceAxis(out.value, norm(a, l.axes.length), starts[i], ends[i]);
  });
  return out;
}

function split(ctx: Ctx, p: Node, v: Value, l: F.Layout): Step<F.Layout> {
  const axis = norm(attrInt(p, 'axis') ?? 0, l.axes.length);
  const size = F.axisSize(l.axes[axis] ?? []);
  if (typeof size !== 'number') return bad(`Split '${p.name}' cuts a token axis`);
  const sizes = attrInts(p, 'split') ?? constInts(ctx, p.input(1)) ?? even(size, p.outputs.length);
  const k = v.producerIndex;
  if (!sizes || sizes.length !== p.outputs.length) return bad(`the parts of Split '${p.name}' are not constant`);
  const start = sizes.slice(0, k).reduce((a, b) => a + b, 0);
  return F.sliceAxis(l, axis, start, start + sizes[k]);
}

function even(size: number, n: number): number[] | undefined {
  return size % n === 0 ? Array.from({ length: n }, () => size / n) : undefined;
}

function expand(ctx: Ctx, p: Node, v: Value, l: F.Layout): Step<F.Layout> {
  const out = ctx.shapes.shape(v);
  if (!out) return bad(`the output shape of Expand '${p.name}' is unknown`);
  let r: Step<F.Layout> = { ok: true, value: F.broadcastRank(l, out.length) };
  out.forEach((d, i) => {
    if (!r.ok) return;
    const have = F.axisSize(r.value.axes[i]);
    if (have === 1 && typeof d === 'number' && d > 1) r = F.repeatAxis(r.value, i, d, false);
    else if (have === 1 && d !== 1 && typeof d !== 'number') r = bad(`Expand '${p.name}' repeats an axis by an unknown count`);
  });
  return r;
}

function tile(ctx: Ctx, p: Node, l: F.Layout): Step<F.Layout> {
  const reps = constInts(ctx, p.input(1));
  if (!reps || reps.length !== l.axes.length) return bad(`the repeats of Tile '${p.name}' are not constant`);
  let r: Step<F.Layout> = { ok: true, value: l };
  reps.forEach((n, i) => {
    if (r.ok && n > 1) r = F.repeatAxis(r.value, i, n, true);
  });
  return r;
}

/**
 * Concat on the data path: appending new keys to a cache input (the axis stays positions), or putting the halves of
 * a rotated head back together (the axis stays one head's features, reordered within the head).
 */
function concat(ctx: Ctx, p: Node, v: Value, at: (u: Value) => Step<F.Layout>): Step<F.Layout> {
  const rank = ctx.shapes.shape(v)?.length ?? 0;
  const axis = norm(attrInt(p, 'axis') ?? 0, rank);
  const parts = p.inputs.filter((i): i is Value => !!i && !isConstantOperand(ctx, i));
  const results = parts.map((i) => (i.isGraphInput ? bad(`'${i.name}' is a graph input`) : at(i)));
  const layouts = results.flatMap((r) => (r.ok ? [r.value] : []));
  if (layouts.length === 0) return results[0] ?? bad(`Concat '${p.name}' joins constants only`);
  const base = layouts[0];
  // Written to below as an array index: an axis of 2^31 would make a sparse array of that length.
  if (!(Number.isInteger(axis) && axis >= 0 && axis < base.axes.length)) return bad(`Concat '${p.name}' has axis ${attrInt(p, 'axis')} outside its ${base.axes.length} axes`);
  const size: Dim = ctx.shapes.shape(v)?.[axis] ?? null;
  const axes = base.axes.slice();
  const fs = base.axes[axis]?.filter((f) => f.size !== 1) ?? [];
  if (fs.every((f) => f.kind === 'token')) {
    // New keys appended to a cache (a graph input, possibly wrapped): the axis stays positions.
    axes[axis] = [{ kind: 'token', source: `${p.name}:positions`, axis, size }];
    return { ok: true, value: { axes, offset: base.offset } };
  }
  const failed = results.find((r) => !r.ok);
  if (failed) return failed;
  if (fs.length !== 1 || fs[0].kind !== 'feature' || typeof size !== 'number') return bad(`Concat '${p.name}' joins features the walk cannot follow`);
  const offset = Math.min(...layouts.map((x) => x.offset));
  axes[axis] = [{ kind: 'feature', size, stride: fs[0].stride }];
  return { ok: true, value: { axes, offset } };
}

function norm(a: number, rank: number): number {
  return a < 0 ? a + rank : a;
}

/** Forward from the core's output through merge-heads ops to `end` (the output projection's input). */
export function layoutForward(ctx: Ctx, chain: Node[], start: F.Layout, record?: Map<Value, F.Layout>): Step<F.Layout> {
  let l = start;
  for (const n of chain) {
    const out = n.outputs[0];
    let r: Step<F.Layout>;
    if (SAME.has(n.opType)) r = { ok: true, value: l };
    else if (n.opType === 'Transpose') r = F.transpose(l, attrInts(n, 'perm'));
    else if (n.opType === 'Reshape' || n.opType === 'Flatten') {
      const dims = ctx.shapes.shape(out);
      const refs = n.opType === 'Reshape' && dims && dims.filter((d) => d === null).length > 1 ? targetRefs(n.input(1), dims.length) : [];
      r = dims ? F.reshape(l, dims, refs) : bad(`the output shape of ${n.opType} '${n.name}' is unknown`);
    } else if (n.opType === 'Slice') r = slice(ctx, n, l);
    else r = bad(`${n.opType} '${n.name}' between the core and the output projection`);
    if (!r.ok) return r;
    l = r.value;
    record?.set(out, l);
  }
  return { ok: true, value: l };
}

/**
 * For each entry of a Reshape target built by a Concat of one-element parts: the activation axis it copies, when it is
 * `Shape(x)[j]` (through Unsqueeze, Squeeze, Cast and Identity). Exporters build targets so when the shape inference
 * cannot give the dims (torchvision's Swin: `x.reshape(B_, N, 3, heads, C // heads)`).
 */
function targetRefs(target: Value | null, rank: number): (F.TokenRef | undefined)[] {
  const c = target?.producer;
  if (!c || c.opType !== 'Concat' || c.inputs.length !== rank) return [];
  return c.inputs.map((x) => {
    let v = x;
    for (let i = 0; i < 6 && v?.producer && ['Unsqueeze', 'Squeeze', 'Cast', 'Identity'].includes(v.producer.opType); i++) v = v.producer.input(0);
    const g = v?.producer;
    if (!g || g.opType !== 'Gather') return undefined;
    const shape = g.input(0)?.producer;
    const index = g.input(1)?.constant;
    if (!shape || shape.opType !== 'Shape' || shape.attr('start') || !index || index.size !== 1) return undefined;
    const src = shape.input(0);
    const j = Number(index.toNumbers()[0]);
    return src && Number.isInteger(j) && j >= 0 ? { source: src.name, axis: j } : undefined;
  });
}
