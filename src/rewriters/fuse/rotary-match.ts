// The rotary embedding as Llama-style exports write it, read back so that `fuse` can hand it to com.microsoft
// RotaryEmbedding instead:  out = x·cos + rotate_half(x)·sin,  rotate_half(x) = Concat(−x[..., D/2:], x[..., :D/2])
// on the last axis of the head-split [B, H, S, D] tensor. RotaryEmbedding (interleaved 0) computes
//   out[i] = x[i]·c[i mod D/2] − x[i + D/2]·s[i mod D/2]  (i < D/2),   x[i]·c[i mod D/2] + x[i − D/2]·s[i mod D/2]  (i ≥ D/2)
// from half-width tables c and s, which is the exported formula exactly when cos and sin repeat their first half in
// their second, and when every head of a token reads the same row (cos and sin broadcast over the heads axis). Both
// are proven from the graph here; a rotary that looks right but cannot be proven is reported with the reason.
import { attrInt, attrInts } from '../../analysis/attention/match';
import type { Node, Value } from '../../analysis/ir/graph';
import { numList, sliceIndex } from '../../analysis/ir/shape-math';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import type { Tensor } from '../../analysis/onnx/tensor';
import { H } from './operands';

export interface RotaryMatch {
  /** The Add that writes the rotated tensor. */
  add: Node;
  /** The tensor rotated, in the layout of the Add's output. */
  x: Value;
  /** The full-width tables the exported Muls read ([.., S, D], broadcast over the heads). */
  cos: Value;
  sin: Value;
}

/**
 * The rotary that writes `out`, for a tensor whose axes hold the canonical `axes` (operands.ts) and whose head size is
 * `headDim`. null: `out` is not written by x·cos + rotate_half(x)·sin. A string: it is, but the rewrite to
 * RotaryEmbedding cannot be proven exact, for that reason.
 */
export function matchRotary(shapes: ShapeInfo, out: Value, axes: number[], headDim: number): RotaryMatch | string | null {
  const add = out.producer;
  if (!add || add.opType !== 'Add' || add.domain !== '') return null;
  const muls = add.inputs.map((i) => i?.producer);
  if (muls.length !== 2 || !muls.every((m) => m && m.opType === 'Mul' && m.domain === '')) return null;
  for (const [plain, rotated] of [[muls[0]!, muls[1]!], [muls[1]!, muls[0]!]]) {
    for (let r = 0; r < 2; r++) {
      const half = rotateHalfOf(shapes, rotated.input(r));
      if (!half) continue;
      if (typeof half === 'string') return half;
      const xi = plain.inputs.indexOf(half.x);
      if (xi < 0) continue;
      const cos = plain.input(1 - xi);
      const sin = rotated.input(1 - r);
      if (!cos || !sin) return null;
      const why = provenExact(shapes, { add, x: half.x, cos, sin }, axes, headDim);
      return why ?? { add, x: half.x, cos, sin };
    }
  }
  return null;
}

/** Why the match cannot become RotaryEmbedding (null: it can). */
function provenExact(shapes: ShapeInfo, m: RotaryMatch, axes: number[], headDim: number): string | null {
  if (axes.length !== 4 || axes[3] !== 3) return 'it does not rotate the head-size axis of a [batch, heads, positions, head size] tensor';
  const xShape = shapes.shape(m.x);
  if (xShape?.length !== 4 || xShape[3] !== headDim || headDim % 2 !== 0) return `the rotated tensor's head size is not known to be ${headDim} (and even)`;
  for (const [what, table] of [['cos', m.cos], ['sin', m.sin]] as const) {
    const shape = shapes.shape(table);
    if (!shape || shape.length > 4) return `the ${what} table '${table.name}' has ${shape ? `rank ${shape.length}` : 'an unknown shape'}`;
    if (shape.at(-1) !== headDim) return `the ${what} table '${table.name}' is not ${headDim} wide on its last axis`;
    // Right-aligned broadcasting: the table's axis facing the heads axis must be 1 (or absent), so every head of a
    // token reads the same row.
    const facing = axes.indexOf(H) - (4 - shape.length);
    if (facing >= 0 && shape[facing] !== 1) return `the ${what} table '${table.name}' is not proven to be 1 on the heads axis (it is ${String(shape[facing])})`;
    const halves = halvesEqual(shapes, table, headDim);
    if (halves !== true) return `the two halves of the ${what} table '${table.name}' are not proven equal: ${halves}`;
  }
  return null;
}

/**
 * rotate_half(x) = Concat(Neg(x[..., D/2:]), x[..., :D/2]) on the last axis, the halves cut by Slice or by a Split
 * into two. Returns x; null when `v` is not such a Concat; a string when it is one but the cut is not provably at D/2.
 */
function rotateHalfOf(shapes: ShapeInfo, v: Value | null): { x: Value } | string | null {
  const cat = v?.producer;
  if (!cat || cat.opType !== 'Concat' || cat.domain !== '' || cat.inputs.length !== 2) return null;
  const neg = cat.input(0)?.producer;
  const lo = cat.input(1);
  if (!neg || neg.opType !== 'Neg' || neg.domain !== '' || !lo) return null;
  const hi = neg.input(0);
  const shape = shapes.shape(v);
  const rank = shape?.length;
  const d = shape?.at(-1);
  if (!rank || typeof d !== 'number') return 'rotate_half: the rotated tensor\'s last axis is of unknown size';
  if (normalize(attrInt(cat, 'axis') ?? 0, rank) !== rank - 1) return null;
  const a = halfOf(shapes, hi, rank, d);
  const b = halfOf(shapes, lo, rank, d);
  if (!a || !b) return null;
  if (typeof a === 'string' || typeof b === 'string') return `rotate_half: ${typeof a === 'string' ? a : b}`;
  if (a.x !== b.x) return null;
  if (a.from !== d / 2 || a.to !== d || b.from !== 0 || b.to !== d / 2) return `rotate_half: the halves are [${a.from}, ${a.to}) and [${b.from}, ${b.to}) of ${d}, not the upper and lower half`;
  return { x: a.x };
}

/**
 * A cut of x on its last axis, [from, to), from a Slice with step 1 or one output of a Split in two. undefined: not a
 * Slice or Split; a string: one whose cut is not known.
 */
function halfOf(shapes: ShapeInfo, v: Value | null, rank: number, d: number): { x: Value; from: number; to: number } | string | undefined {
  const p = v?.producer;
  const x = p?.input(0);
  if (!p || !x || p.domain !== '') return undefined;
  if (p.opType === 'Split') {
    if (p.outputs.length !== 2 || normalize(attrInt(p, 'axis') ?? 0, rank) !== rank - 1) return `Split '${p.name}' does not cut the last axis in two`;
    // The output sizes as inferred from the split sizes (input or attribute) or the equal default.
    const sizes = p.outputs.map((o) => shapes.shape(o)?.at(-1));
    if (sizes[0] !== d / 2 || sizes[1] !== d / 2) return `Split '${p.name}' is not known to cut ${d} into ${d / 2} + ${d / 2}`;
    return v!.producerIndex === 0 ? { x, from: 0, to: d / 2 } : { x, from: d / 2, to: d };
  }
  if (p.opType !== 'Slice') return undefined;
  const sp = sliceParams(shapes, p);
  if (!sp || sp.starts.length !== 1 || sp.ends.length !== 1 || sp.axes.length !== 1) return `the bounds of Slice '${p.name}' are not known constants on one axis`;
  const { starts, ends, axes, steps } = sp;
  if (normalize(axes[0], rank) !== rank - 1 || steps.length !== 1 || steps[0] !== 1) return `Slice '${p.name}' does not cut the last axis with step 1`;
  return { x, from: sliceIndex(starts[0], d, 1), to: sliceIndex(ends[0], d, 1) };
}

/**
 * Whether every row of `v` along its last axis (width d) repeats its first half in its second. Walks back through
 * what keeps that property: elementwise ops of one tensor (Cos, Sin, Cast, a constant scalar factor such as
 * attention_scaling), and ops that move whole rows (Unsqueeze, Reshape, Expand, ... keeping the last axis d wide),
 * down to a Concat of one tensor with itself on the last axis, or a constant whose data shows it.
 */
function halvesEqual(shapes: ShapeInfo, v: Value, d: number, depth = 0): true | string {
  const c = v.constant;
  if (c) return constantHalvesEqual(c, d) ? true : `the constant '${v.name}' differs between its halves`;
  const p = v.producer;
  if (!p) return `'${v.name}' is a graph input`;
  if (depth > 24) return `'${v.name}' is too far from where the table is built`;
  const here = `${p.opType} '${p.name}'`;
  if (p.domain !== '') return `${here} is not a standard operator`;
  const rank = shapes.shape(v)?.length ?? 0;
  const inner = p.input(0);
  if (p.opType === 'Concat') {
    const both = p.inputs.length === 2 && p.inputs[0] === p.inputs[1];
    return both && rank > 0 && normalize(attrInt(p, 'axis') ?? 0, rank) === rank - 1 ? true : `${here} does not join one tensor with itself on the last axis`;
  }
  if (UNARY.has(p.opType) && inner) return halvesEqual(shapes, inner, d, depth + 1);
  if (SCALAR_BINARY.has(p.opType)) {
    const [a, b] = p.inputs;
    const scalar = (x: Value | null) => !!x && x.constant?.size === 1;
    const other = scalar(b) ? a : scalar(a) ? b : null;
    return other ? halvesEqual(shapes, other, d, depth + 1) : `${here} combines it with a tensor, not a constant scalar`;
  }
  if (ROW_MOVES.has(p.opType) && inner) {
    const why = movesRows(shapes, p, d);
    return why ?? halvesEqual(shapes, inner, d, depth + 1);
  }
  return `${here} is not known to keep the halves equal`;
}

const UNARY = new Set(['Cos', 'Sin', 'Cast', 'Identity', 'Neg']);
const SCALAR_BINARY = new Set(['Mul', 'Div', 'Add', 'Sub']);
const ROW_MOVES = new Set(['Unsqueeze', 'Squeeze', 'Reshape', 'Expand', 'Flatten', 'Transpose', 'Gather', 'Slice']);

/**
 * Why `p` may not move whole rows of width d (null: its output's rows are its input's rows). Input and output both
 * d wide on the last axis suffices for the reshaping ops (row-major order keeps each run of d elements together);
 * Transpose must keep the last axis last, Gather and Slice must not index it.
 */
function movesRows(shapes: ShapeInfo, p: Node, d: number): string | null {
  const here = `${p.opType} '${p.name}'`;
  const inShape = shapes.shape(p.input(0));
  const outShape = shapes.shape(p.outputs[0]);
  if (inShape?.at(-1) !== d || outShape?.at(-1) !== d) return `${here}: its input or output is not known to be ${d} wide on the last axis`;
  const rank = inShape.length;
  if (p.opType === 'Transpose') {
    const perm = attrInts(p, 'perm');
    return perm && perm.at(-1) === rank - 1 ? null : `${here} moves the last axis`;
  }
  if (p.opType === 'Gather') return normalize(attrInt(p, 'axis') ?? 0, rank) !== rank - 1 ? null : `${here} indexes the last axis`;
  if (p.opType === 'Slice') {
    const axes = sliceParams(shapes, p)?.axes;
    return axes && axes.every((a) => normalize(a, rank) !== rank - 1) ? null : `${here} may cut the last axis`;
  }
  return null;
}

/**
 * A Slice's starts, ends, axes and steps (inputs from opset 10, attributes before), defaults filled in; undefined when
 * one that is given is not a known constant.
 */
function sliceParams(shapes: ShapeInfo, p: Node): { starts: number[]; ends: number[]; axes: number[]; steps: number[] } | undefined {
  const attrs = p.inputs.length === 1;
  const read = (i: number, name: string): number[] | null | undefined => {
    if (attrs) return attrInts(p, name) ?? null;
    const v = p.input(i);
    return v ? numList(shapes.values(v)) : null; // null: absent; undefined: given but not known
  };
  const [starts, ends, axes, steps] = [read(1, 'starts'), read(2, 'ends'), read(3, 'axes'), read(4, 'steps')];
  if (!starts || !ends || axes === undefined || steps === undefined) return undefined;
  return { starts, ends, axes: axes ?? starts.map((_, i) => i), steps: steps ?? starts.map(() => 1) };
}

function constantHalvesEqual(t: Tensor, d: number): boolean {
  if (t.dims.at(-1) !== d || t.size > 1 << 24) return false;
  let data: number[];
  try {
    data = t.toNumbers();
  } catch {
    return false;
  }
  const h = d / 2;
  for (let row = 0; row < data.length; row += d) {
    for (let i = 0; i < h; i++) if (!Object.is(data[row + i], data[row + i + h])) return false;
  }
  return true;
}

function normalize(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}
