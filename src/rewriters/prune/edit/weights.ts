// The small float tensors that head-level rewrites read and write whole (biases, packed biases), as float64 "feature
// rows", and the helpers around them. Weight matrices are never read whole: mix.ts streams them.
import type { GraphBuilder } from '../../../analysis/ir/builder';
import type { Node, Value } from '../../../analysis/ir/graph';
import { DataType } from '../../../analysis/onnx/dtypes';
import type { Tensor } from '../../../analysis/onnx/tensor';
import { floatToHalf, halfToFloat } from '../../../analysis/numeric/float16';

/** Row-major dense matrix in float64 (edits average and sum weights; float64 keeps an identity rewrite exact). */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float64Array;
}

export type WeightDtype = 'float32' | 'float16';

export function weightDtype(t: Tensor): WeightDtype | undefined {
  if (t.dataType === DataType.FLOAT) return 'float32';
  if (t.dataType === DataType.FLOAT16) return 'float16';
  return undefined;
}

/** Every element as float64; float32 and float16 only (quantized weights cannot be sliced per head here). */
export function readFloats(t: Tensor): Float64Array {
  const b = t.bytes();
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = t.size;
  const out = new Float64Array(n);
  if (t.dataType === DataType.FLOAT) for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
  else if (t.dataType === DataType.FLOAT16) for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
  else throw new Error(`tensor '${t.name}' is ${t.dtype}; only float32 and float16 weights can be edited`);
  return out;
}

/** A new initializer holding `data` in the given dtype, under a fresh name derived from `base`. */
export function addWeight(builder: GraphBuilder, base: string, dims: readonly number[], data: Float64Array, dtype: WeightDtype): Value {
  const name = builder.uniqueName(base);
  if (dtype === 'float16') return builder.initializer(name, dims, { dtype: 'float16', data: Uint16Array.from(data, (x) => floatToHalf(x)) });
  return builder.initializer(name, dims, { dtype: 'float32', data: Float32Array.from(data) });
}

/** One new head as a weighted sum of old heads: a kept head is [{head, weight: 1}]; a mean-pooled KV head has several. */
export type HeadMix = { head: number; weight: number }[];

/**
 * New feature rows built from heads of `rows` (rows × cols, one row per feature): old head h is rows
 * [start + h·headDim, start + (h+1)·headDim). Returns heads.length·headDim rows.
 */
export function mixHeadRows(rows: Matrix, start: number, headDim: number, heads: readonly HeadMix[]): Matrix {
  const cols = rows.cols;
  const out = new Float64Array(heads.length * headDim * cols);
  heads.forEach((mix, a) => {
    for (const { head, weight } of mix) {
      for (let k = 0; k < headDim; k++) {
        const src = (start + head * headDim + k) * cols;
        if (src + cols > rows.data.length) throw new Error(`head ${head} lies outside the weight (${rows.rows} features)`);
        const dst = (a * headDim + k) * cols;
        for (let c = 0; c < cols; c++) out[dst + c] += weight * rows.data[src + c];
      }
    }
  });
  return { rows: heads.length * headDim, cols, data: out };
}

/** Points input `index` of `node` at `v`, keeping both values' use lists right (the builder only replaces all uses at once). */
export function setInput(node: Node, index: number, v: Value | null): void {
  const old = node.inputs[index];
  if (old) {
    const i = old.uses.findIndex((u) => u.node === node && u.index === index);
    if (i >= 0) old.uses.splice(i, 1);
  }
  while (node.inputs.length <= index) node.inputs.push(null);
  node.inputs[index] = v;
  if (v) v.uses.push({ node, index });
}
