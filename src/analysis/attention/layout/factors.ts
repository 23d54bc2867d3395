// Axis algebra for binding attention dimensions. A tensor on the way from a projection to the attention core is
// described axis by axis, each axis as a product of factors (major to minor):
//   - `feature`: a run of the projection's output features (weight columns), `size` entries `stride` columns apart;
//   - `token`: one axis of the activation the projection reads (batch, positions...), taken whole, or a part of it
//     (`stride` set) when a Reshape cuts that axis, as windowed attention cuts positions into [windows, window size];
//   - `repeat`: a broadcast copy (Expand or Tile of a size-1 axis): the same features again, stride 0;
//   - `head` / `dv`: on the output side, a query head of the site and a position within V's head size.
// Reshape, Transpose, Gather, Slice, Split, Squeeze, Unsqueeze, Expand and Tile map these descriptions exactly; an
// op whose effect cannot be stated this way makes the walk fail with a reason, never guess.
import type { Dim } from '../../report/types';

export type Factor =
  | { kind: 'feature'; size: number; stride: number }
  | { kind: 'token'; source: string; axis: number; size: Dim; stride?: number }
  | { kind: 'repeat'; size: number }
  | { kind: 'head'; size: number; stride: number }
  | { kind: 'dv'; size: number };

export interface Layout {
  axes: Factor[][];
  /** Column offset added by Gather/Slice/Split cuts of the feature axis. */
  offset: number;
}

export type Step<T> = { ok: true; value: T } | { ok: false; reason: string };
const good = <T>(value: T): Step<T> => ({ ok: true, value });
const bad = <T = never>(reason: string): Step<T> => ({ ok: false, reason });

export function axisSize(axis: Factor[]): Dim {
  let n = 1;
  for (const f of axis) {
    if (typeof f.size !== 'number') return axis.length === 1 ? f.size : null;
    n *= f.size;
  }
  return n;
}

/** Drops factors of size 1: they carry no index and may sit anywhere. */
function meaningful(fs: Factor[]): Factor[] {
  return fs.filter((f) => f.size !== 1);
}

/** Splits a numeric factor into an outer part of `outer` entries and the inner rest. */
function splitFactor(f: Factor, outer: number): [Factor, Factor] | undefined {
  if (typeof f.size !== 'number' || f.size % outer !== 0) return undefined;
  const inner = f.size / outer;
  switch (f.kind) {
    case 'feature':
    case 'head':
      return [{ ...f, size: outer, stride: f.stride * inner }, { ...f, size: inner }];
    case 'repeat':
      return [{ kind: 'repeat', size: outer }, { kind: 'repeat', size: inner }];
    case 'token':
      return splitToken(f, inner);
    default:
      return undefined; // V's head size is never cut
  }
}

type Token = Extract<Factor, { kind: 'token' }>;

/**
 * A token axis cut into an outer and an inner part of `inner` positions (windows and positions within a window).
 * The outer part's size may be unknown (a symbolic sequence cut into windows of a known size): null.
 */
function splitToken(f: Token, inner: number): [Factor, Factor] | undefined {
  const stride = f.stride ?? 1;
  const outer: Dim = typeof f.size === 'number' ? f.size / inner : null;
  if (typeof f.size === 'number' && f.size % inner !== 0) return undefined;
  return [{ ...f, size: outer, stride: stride * inner }, { ...f, size: inner, stride }];
}

/**
 * Parts of one token axis that follow each other from `queue[at]` on down to stride 1 (the innermost part) and so
 * make up the whole axis again (an axis cut into windows merged back after attention).
 */
function wholeTokenRun(fs: Factor[], at: number): number {
  const f = fs[at];
  if (!f || f.kind !== 'token' || f.stride === undefined) return 0;
  let n = 1;
  let prev: Token = f;
  while (prev.stride !== 1) {
    const g = fs[at + n];
    if (!g || g.kind !== 'token' || g.source !== f.source || g.axis !== f.axis || typeof g.size !== 'number' || g.stride === undefined) return 0;
    if (g.stride * g.size !== prev.stride) return 0;
    prev = g;
    n++;
  }
  return n;
}

/** The whole axis those parts came from (its size as the graph states it). */
function wholeToken(parts: Factor[], size: Dim): Factor {
  const { source, axis } = parts[0] as Token;
  return { kind: 'token', source, axis, size };
}

/** A whole axis of an activation, named by the value and the axis. */
export interface TokenRef {
  source: string;
  axis: number;
}

function takeRef(queue: Factor[], ref: TokenRef): Factor[] | undefined {
  const f = queue[0];
  return f && f.kind === 'token' && f.source === ref.source && f.axis === ref.axis && f.stride === undefined ? [queue.shift()!] : undefined;
}

/** Takes factors from the front of `queue` whose sizes multiply to `dim`. */
function takeFront(queue: Factor[], dim: Dim): Factor[] | undefined {
  if (dim === 1) return [];
  if (typeof dim === 'string') {
    const f = queue[0];
    if (f && f.kind === 'token' && f.size === dim) return [queue.shift()!];
    const run = wholeTokenRun(queue, 0);
    return run ? [wholeToken(queue.splice(0, run), dim)] : undefined;
  }
  if (dim === null) return undefined;
  const out: Factor[] = [];
  let have = 1;
  while (have < dim) {
    const f = queue[0];
    if (!f || typeof f.size !== 'number') return undefined;
    if (have * f.size <= dim && dim % (have * f.size) === 0) {
      out.push(queue.shift()!);
      have *= f.size;
    } else {
      const parts = splitFactor(f, dim / have);
      if (!parts) return undefined;
      queue[0] = parts[1];
      out.push(parts[0]);
      have = dim;
    }
  }
  return out;
}

/** The same from the back (minor end), for the dims after an unknown one. */
function takeBack(queue: Factor[], dim: Dim): Factor[] | undefined {
  if (dim === 1) return [];
  if (typeof dim === 'string') {
    const f = queue[queue.length - 1];
    if (f && f.kind === 'token' && f.size === dim) return [queue.pop()!];
    for (let at = queue.length - 2; at >= 0; at--) {
      if (wholeTokenRun(queue, at) === queue.length - at) return [wholeToken(queue.splice(at), dim)];
    }
    return undefined;
  }
  if (dim === null) return undefined;
  const out: Factor[] = [];
  let have = 1;
  while (have < dim) {
    const f = queue[queue.length - 1];
    // A symbolic positions axis cut into windows of a known size: the inner part is split off, the rest stays.
    if (f && f.kind === 'token' && typeof f.size !== 'number' && dim % have === 0) {
      const parts = splitToken(f, dim / have);
      if (!parts) return undefined;
      queue[queue.length - 1] = parts[0];
      out.unshift(parts[1]);
      return out;
    }
    if (!f || typeof f.size !== 'number') return undefined;
    if (have * f.size <= dim && dim % (have * f.size) === 0) {
      out.unshift(queue.pop()!);
      have *= f.size;
    } else {
      const need = dim / have;
      if (f.size % need !== 0) return undefined;
      const parts = splitFactor(f, f.size / need);
      if (!parts) return undefined;
      queue[queue.length - 1] = parts[0];
      out.unshift(parts[1]);
      have = dim;
    }
  }
  return out;
}

/**
 * Reshape to `dims` (the output shape as inferred: numbers, symbols, at most one unknown). Dims are matched from
 * the front up to the unknown one and from the back after it; the unknown dim takes what is left.
 */
export function reshape(l: Layout, dims: Dim[], given: (TokenRef | undefined)[] = []): Step<Layout> {
  const queue = meaningful(l.axes.flat());
  // Only references to a token axis the tensor holds whole count (one to the features is just another unknown).
  const refs = given.map((r) => (r && queue.some((f) => f.kind === 'token' && f.source === r.source && f.axis === r.axis && f.stride === undefined) ? r : undefined));
  // An unknown dim that the graph copies from an activation's axis (Shape → Gather → Concat) is that axis.
  const isUnknown = (d: Dim, i: number) => d === null && !refs[i];
  const unknown = dims.findIndex(isUnknown);
  if (unknown >= 0 && dims.some((d, i) => i > unknown && isUnknown(d, i))) return bad('a Reshape with two unknown dims');
  const head = unknown < 0 ? dims : dims.slice(0, unknown);
  const axes: Factor[][] = [];
  for (const [i, d] of head.entries()) {
    const ref = refs[i];
    const t = ref ? takeRef(queue, ref) : takeFront(queue, d);
    if (!t) return bad(`a Reshape to ${fmt(dims)} that does not regroup whole axes`);
    axes.push(t);
  }
  if (unknown >= 0) {
    const tail: Factor[][] = [];
    for (const d of dims.slice(unknown + 1).reverse()) {
      const t = takeBack(queue, d);
      if (!t) return bad(`a Reshape to ${fmt(dims)} that does not regroup whole axes`);
      tail.unshift(t);
    }
    axes.push(queue.splice(0));
    axes.push(...tail);
  }
  if (queue.some((f) => f.size !== 1)) return bad(`a Reshape to ${fmt(dims)} that drops entries`);
  return good({ axes, offset: l.offset });
}

export function transpose(l: Layout, perm: number[] | undefined): Step<Layout> {
  const p = perm ?? l.axes.map((_, i) => l.axes.length - 1 - i);
  if (p.length !== l.axes.length) return bad('a Transpose whose perm does not match the rank');
  return good({ axes: p.map((i) => l.axes[i]), offset: l.offset });
}

/** Gather of one index along an axis: the index must fall on the axis's major factor. */
export function gatherIndex(l: Layout, axis: number, index: number, keepAxis: boolean): Step<Layout> {
  const a = l.axes[axis];
  const fs = a ? meaningful(a) : undefined;
  if (!fs) return bad('a Gather on a missing axis');
  const size = axisSize(a);
  if (typeof size !== 'number') return bad('a Gather on a token axis');
  const idx = index < 0 ? index + size : index;
  if (fs.length === 0) return good(dropOrKeep(l, axis, [], l.offset, keepAxis));
  if (fs.length !== 1) return bad('a Gather on an axis of several factors');
  const f = fs[0];
  if (f.kind === 'repeat') return good(dropOrKeep(l, axis, [], l.offset, keepAxis));
  if (f.kind !== 'feature') return bad(`a Gather on a ${f.kind} axis`);
  return good(dropOrKeep(l, axis, [], l.offset + idx * f.stride, keepAxis));
}

function dropOrKeep(l: Layout, axis: number, rest: Factor[], offset: number, keep: boolean): Layout {
  const axes = l.axes.slice();
  if (keep) axes[axis] = rest;
  else axes.splice(axis, 1);
  return { axes, offset };
}

/** Slice [start, end) with step 1 along an axis holding one feature factor (or a whole-axis no-op slice). */
export function sliceAxis(l: Layout, axis: number, start: number, end: number): Step<Layout> {
  const a = l.axes[axis];
  if (!a) return bad('a Slice on a missing axis');
  const size = axisSize(a);
  if (typeof size !== 'number') {
    if (start === 0 && end >= 2 ** 31 - 1) return good(l);
    return bad('a Slice of a token axis');
  }
  const s = clamp(start < 0 ? start + size : start, size);
  const e = clamp(end < 0 ? end + size : end, size);
  if (s === 0 && e === size) return good(l);
  const fs = meaningful(a);
  if (fs.length !== 1 || fs[0].kind !== 'feature') return bad('a Slice of an axis that is not one run of features');
  const f = fs[0];
  const axes = l.axes.slice();
  axes[axis] = [{ kind: 'feature', size: Math.max(0, e - s), stride: f.stride }];
  return good({ axes, offset: l.offset + s * f.stride });
}

function clamp(x: number, size: number): number {
  return Math.max(0, Math.min(size, x));
}

export function unsqueeze(l: Layout, axes: number[]): Step<Layout> {
  const rank = l.axes.length + axes.length;
  const norm = axes.map((a) => (a < 0 ? a + rank : a)).sort((a, b) => a - b);
  const out = l.axes.slice();
  for (const a of norm) {
    if (a < 0 || a > out.length) return bad('an Unsqueeze axis out of range');
    out.splice(a, 0, []);
  }
  return good({ axes: out, offset: l.offset });
}

export function squeeze(l: Layout, axes: number[] | undefined): Step<Layout> {
  const rank = l.axes.length;
  const drop = new Set((axes ?? l.axes.flatMap((a, i) => (axisSize(a) === 1 ? [i] : []))).map((a) => (a < 0 ? a + rank : a)));
  for (const a of drop) if (axisSize(l.axes[a] ?? [{ kind: 'repeat', size: 2 }]) !== 1) return bad('a Squeeze of an axis that is not 1');
  return good({ axes: l.axes.filter((_, i) => !drop.has(i)), offset: l.offset });
}

/**
 * Expand or Tile: an axis of size 1 that becomes n is a repeat; `major` says whether the repeat goes before the
 * existing factors (Tile: copies follow each other) or after them (Expand of an inserted axis is handled by the
 * caller's reshape).
 */
export function repeatAxis(l: Layout, axis: number, times: number, major: boolean): Step<Layout> {
  if (times === 1) return good(l);
  const a = l.axes[axis];
  if (!a) return bad('a repeat of a missing axis');
  const axes = l.axes.slice();
  const r: Factor = { kind: 'repeat', size: times };
  axes[axis] = major ? [r, ...a] : [...a, r];
  return good({ axes, offset: l.offset });
}

/** Right-aligns a broadcast to `rank` axes. */
export function broadcastRank(l: Layout, rank: number): Layout {
  const pad: Factor[][] = Array.from({ length: Math.max(0, rank - l.axes.length) }, () => []);
  return { axes: [...pad, ...l.axes], offset: l.offset };
}

function fmt(dims: Dim[]): string {
  return `[${dims.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}
