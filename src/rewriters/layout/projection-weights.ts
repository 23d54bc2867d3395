// A projection as the standard layout needs it: its weight as one row per output feature, its bias, the activation it
// reads and the value it produces (after the bias). Works for MatMul and Gemm whose weight is computed from an
// initializer (a Slice of a packed in_proj weight, a Transpose), which the head editors cannot take as they are.
import type { Graph, Node, Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import { attrFloat, attrInt } from '../../analysis/attention/match';
import type { Matrix, WeightDtype } from '../prune/edit/weights';
import { asMatrix, evalConstant, transpose } from './constant-eval';

export interface ProjectionWeights {
  node: Node;
  featureRows: Matrix;
  bias?: Float64Array;
  dtype: WeightDtype;
  activation: Value;
  output: Value;
}

export type Resolved = { ok: true; value: ProjectionWeights } | { ok: false; reason: string };

export function projectionWeights(graph: Graph, name: string, shapes?: ShapeInfo): Resolved {
  const node = graph.nodeByName(name);
  if (!node || node.domain !== '' || (node.opType !== 'MatMul' && node.opType !== 'Gemm')) return { ok: false, reason: `projection '${name}' is not a MatMul or Gemm` };
  const gemm = node.opType === 'Gemm';
  if (gemm && (attrInt(node, 'transA') === 1 || (attrFloat(node, 'alpha') ?? 1) !== 1 || (attrFloat(node, 'beta') ?? 1) !== 1)) {
    return { ok: false, reason: `Gemm '${name}' transposes its activation or scales` };
  }
  const w = evalConstant(node.input(1), shapes);
  if (!w.ok) return w;
  if (w.value.dims.length !== 2) return { ok: false, reason: `the weight of '${name}' is not a matrix` };
  const activation = node.input(0);
  if (!activation) return { ok: false, reason: `projection '${name}' has no activation` };
  const m = asMatrix(w.value);
  const featureRows = gemm && attrInt(node, 'transB') === 1 ? m : transpose(m);
  let bias: Float64Array | undefined;
  let output = node.outputs[0];
  if (gemm && node.input(2)) {
    const b = evalConstant(node.input(2), shapes);
    if (!b.ok || b.value.data.length !== featureRows.rows) return { ok: false, reason: `the bias of Gemm '${name}' is not a vector of its width` };
    bias = b.value.data;
  } else if (!gemm) {
    const uses = output.uses.filter((u) => u.node.opType !== 'Shape');
    const add = uses.length === 1 && uses[0].node.opType === 'Add' && uses[0].node.domain === '' ? uses[0].node : undefined;
    const b = add ? evalConstant(add.input(1 - uses[0].index), shapes) : undefined;
    if (add && b?.ok && b.value.data.length === featureRows.rows && b.value.dims.length === 1) {
      bias = b.value.data;
      output = add.outputs[0];
    }
  }
  return { ok: true, value: { node, featureRows, ...(bias ? { bias } : {}), dtype: w.value.dtype, activation, output } };
}

/** The rows (features) `rows` of a projection, in that order, as a new [in, rows.length] matrix for MatMul. */
export function pickColumns(p: ProjectionWeights, rows: number[]): { weight: Matrix; bias?: Float64Array } {
  const inF = p.featureRows.cols;
  const data = new Float64Array(inF * rows.length);
  rows.forEach((r, j) => {
    for (let i = 0; i < inF; i++) data[i * rows.length + j] = p.featureRows.data[r * inF + i];
  });
  const bias = p.bias ? Float64Array.from(rows, (r) => p.bias![r]) : undefined;
  return { weight: { rows: inF, cols: rows.length, data }, ...(bias ? { bias } : {}) };
}

/** Input rows `rows` of an output projection, in that order, as a new [rows.length, out] matrix for MatMul. */
export function pickInputRows(p: ProjectionWeights, rows: number[]): Matrix {
  const out = p.featureRows.rows;
  const inF = p.featureRows.cols;
  const data = new Float64Array(rows.length * out);
  rows.forEach((r, i) => {
    for (let o = 0; o < out; o++) data[i * out + o] = p.featureRows.data[o * inF + r];
  });
  return { rows: rows.length, cols: out, data };
}
