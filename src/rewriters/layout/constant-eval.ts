// Reads a constant weight or bias the way the graph computes it from an initializer: through Identity, a 2-D
// Transpose and Slice with constant bounds (torch.nn's F.linear(x, in_proj_weight[:E]) exports the cut as a Slice of
// the packed weight). Anything else is not read: the caller refuses the site with the reason.
import { constantOf, type Node, type Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import { attrInts } from '../../analysis/attention/match';
import { readFloats, weightDtype, type Matrix, type WeightDtype } from '../prune/edit/weights';

export interface ConstArray {
  dims: number[];
  data: Float64Array;
  dtype: WeightDtype;
}

export type Eval = { ok: true; value: ConstArray } | { ok: false; reason: string };

export function evalConstant(v: Value | null, shapes?: ShapeInfo, depth = 0): Eval {
  if (!v) return { ok: false, reason: 'a missing weight' };
  const t = constantOf(v);
  if (t) {
    const dtype = weightDtype(t);
    if (!dtype) return { ok: false, reason: `weight '${t.name}' is ${t.dtype}; only float32 and float16 can be re-laid out` };
    return { ok: true, value: { dims: [...t.dims], data: readFloats(t), dtype } };
  }
  const p = v.producer;
  if (!p || depth > 8) return { ok: false, reason: `'${v.name}' is not a constant the rewrite can read` };
  const inner = evalConstant(p.input(0), shapes, depth + 1);
  if (!inner.ok) return inner;
  if (p.opType === 'Identity' || p.opType === 'Cast') return inner;
  if (p.opType === 'Transpose' && inner.value.dims.length === 2) {
    const m = transpose({ rows: inner.value.dims[0], cols: inner.value.dims[1], data: inner.value.data });
    return { ok: true, value: { dims: [m.rows, m.cols], data: m.data, dtype: inner.value.dtype } };
  }
  if (p.opType === 'Slice') return sliceConst(p, inner.value, shapes);
  return { ok: false, reason: `weight computed by ${p.opType} '${p.name}'` };
}

function ints(v: Value | null, shapes?: ShapeInfo): number[] | undefined {
  // Bounds computed from shapes (torch.nn's in_proj cuts) are known to the shape inference.
  const known = shapes?.values(v);
  if (known && known.every((x) => typeof x === 'number')) return known as number[];
  const t = constantOf(v);
  if (!t) return undefined;
  try {
    return t.toNumbers().map(Number);
  } catch {
    return undefined;
  }
}

/** Slice of a 1-D or 2-D constant, step 1, bounds from attributes (opset < 10) or constant inputs. */
function sliceConst(p: Node, a: ConstArray, shapes?: ShapeInfo): Eval {
  const attrForm = attrInts(p, 'starts') !== undefined;
  const starts = attrForm ? attrInts(p, 'starts') : ints(p.input(1), shapes);
  const ends = attrForm ? attrInts(p, 'ends') : ints(p.input(2), shapes);
  const axes = (attrForm ? attrInts(p, 'axes') : ints(p.input(3), shapes)) ?? starts?.map((_, i) => i);
  const steps = attrForm ? undefined : ints(p.input(4), shapes);
  if (!starts || !ends || !axes || (steps && steps.some((s) => s !== 1)) || a.dims.length > 2) {
    return { ok: false, reason: `Slice '${p.name}' of a weight has bounds the rewrite cannot read` };
  }
  const lo = a.dims.map(() => 0);
  const hi = a.dims.slice();
  axes.forEach((ax, i) => {
    const axis = ax < 0 ? ax + a.dims.length : ax;
    const n = a.dims[axis];
    const clamp = (x: number) => Math.max(0, Math.min(n, x < 0 ? x + n : x));
    lo[axis] = clamp(starts[i]);
    hi[axis] = Math.max(lo[axis], clamp(ends[i]));
  });
  const dims = a.dims.map((_, i) => hi[i] - lo[i]);
  const cols = a.dims.length === 2 ? a.dims[1] : 1;
  const outCols = a.dims.length === 2 ? dims[1] : 1;
  const rows = dims[0];
  const data = new Float64Array(rows * outCols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < outCols; c++) data[r * outCols + c] = a.data[(r + lo[0]) * cols + c + (a.dims.length === 2 ? lo[1] : 0)];
  }
  return { ok: true, value: { dims, data, dtype: a.dtype } };
}

export function asMatrix(a: ConstArray): Matrix {
  return { rows: a.dims[0], cols: a.dims[1], data: a.data };
}

/** The transposed matrix (the layout passes' own: the prune edits stream their weights and no longer build matrices). */
export function transpose(m: Matrix): Matrix {
  const out = new Float64Array(m.data.length);
  for (let r = 0; r < m.rows; r++) for (let c = 0; c < m.cols; c++) out[c * m.rows + r] = m.data[r * m.cols + c];
  return { rows: m.cols, cols: m.rows, data: out };
}
