// A projection of an attention site, resolved in the working graph: the node applying the weight, the weight as that
// node sees it, its bias, and the value it produces. The analysis names the weight's initializer; a rewrite needs the
// exact node input to replace, because exporters put Identity (deduplicated initializers) or Transpose in between.
import type { GraphBuilder } from '../../../analysis/ir/builder';
import { constantOf, type Graph, type Node, type Value } from '../../../analysis/ir/graph';
import type { ProjectionInfo } from '../../../analysis/report/types';
import { mixWeight, type AxisBlock, type NodeWeight } from './mix';
import { recordSelection, runs, selectedEntries } from './shared-selections';
import { biasView, constantGather, entriesWithin, type BiasView } from './gathered';
import { addWeight, readFloats, setInput, weightDtype, type WeightDtype } from './weights';

export interface ResolvedProjection {
  info: ProjectionInfo;
  node: Node;
  /** Input of `node` that carries the weight. */
  weightInput: number;
  /**
   * The weight as the node applies it. Nothing of it is read here: edits stream it piece by piece (mix.ts), so
   * resolving the projections of a 70B model's site costs no weight memory.
   */
  weight: NodeWeight;
  /** Output features (what head slicing of Q, K, V works on) and input features (what it cuts of O). */
  features: number;
  inputs: number;
  /** True when the node applies the weight as [out, in] (Gemm transB): rows are output features. */
  outIn: boolean;
  dtype: WeightDtype;
  bias?: { node: Node; input: number; data: Float64Array; view: BiasView };
  /** The projection's result, after its bias. */
  output: Value;
  /** The activation it projects. */
  activation: Value;
}

export class ProjectionError extends Error {}

/** Resolves MatMul / Gemm projections and com.microsoft.Attention's packed weight. */
export function resolveProjection(graph: Graph, info: ProjectionInfo): ResolvedProjection {
  const node = graph.nodeByName(info.node);
  if (!node) throw new ProjectionError(`projection node '${info.node}' is not in the graph`);
  const packedOp = node.opType === 'Attention' && node.domain === 'com.microsoft';
  const isMatMul = node.opType === 'MatMul' && node.domain === '';
  const isGemm = node.opType === 'Gemm' && node.domain === '';
  if (!packedOp && !isMatMul && !isGemm) throw new ProjectionError(`projection '${node.name}' is ${node.qualifiedOp}; only MatMul, Gemm and packed Attention weights can be edited`);
  if (isGemm && Number(node.attr('transA')?.i ?? 0) === 1) throw new ProjectionError(`Gemm '${node.name}' transposes its activation`);
  const weightInput = 1;
  const { weight, dtype } = nodeWeight(node.input(weightInput), node.name);
  const outIn = isGemm && Number(node.attr('transB')?.i ?? 0) === 1;
  const features = outIn ? weight.rows : weight.cols;
  const inputs = outIn ? weight.cols : weight.rows;
  const activation = node.input(0);
  if (!activation) throw new ProjectionError(`projection '${node.name}' has no activation input`);
  let bias: ResolvedProjection['bias'];
  let output = node.outputs[0];
  if (isGemm || packedOp) {
    const b = node.input(2);
    if (b) {
      const view = biasOf(b, features, node.name);
      bias = { node, input: 2, data: view.data, view };
    }
  } else {
    // A bias Add right after the MatMul (Shape readers of the product do not count as uses of the data).
    const uses = output.uses.filter((u) => u.node.opType !== 'Shape');
    const add = uses.length === 1 && uses[0].node.opType === 'Add' && uses[0].node.domain === '' ? uses[0].node : undefined;
    if (add) {
      const other = add.input(1 - uses[0].index);
      const view = biasView(other);
      if (view && view.data.length === features && weightDtype(view.tensor)) {
        bias = { node: add, input: 1 - uses[0].index, data: view.data, view };
        output = add.outputs[0];
      }
    }
  }
  return { info, node, weightInput, weight, features, inputs, outIn, dtype, ...(bias ? { bias } : {}), output, activation };
}

function nodeWeight(v: Value | null, where: string): { weight: NodeWeight; dtype: WeightDtype } {
  const gathered = gatheredWeight(v, where);
  if (gathered) return gathered;
  let t = constantOf(v);
  let transposed = false;
  if (!t && v?.producer?.opType === 'Transpose') {
    // A weight stored [out, in] and transposed in the graph (a constant-foldable Transpose).
    const perm = v.producer.attr('perm')?.ints?.map(Number);
    if (!perm || (perm[0] === 1 && perm[1] === 0)) {
      t = constantOf(v.producer.input(0));
      transposed = true;
    }
  }
  if (!t) throw new ProjectionError(`the weight of '${where}' is not a constant the rewrite can read`);
  const dtype = weightDtype(t);
  if (!dtype) throw new ProjectionError(`the weight of '${where}' is ${t.dtype}; only float32 and float16 weights can be edited`);
  if (t.dims.length !== 2) throw new ProjectionError(`the weight of '${where}' has shape [${t.dims.join(', ')}], not a matrix`);
  const [a, b] = t.dims;
  return { weight: { tensor: t, transposed, rows: transposed ? b : a, cols: transposed ? a : b }, dtype };
}

/** A weight that an earlier prune made a Gather of constant indices from a weight that layers share. */
function gatheredWeight(v: Value | null, where: string): { weight: NodeWeight; dtype: WeightDtype } | undefined {
  const g = constantGather(v);
  if (!g) return undefined;
  if (constantGather(g.source)) throw new ProjectionError(`the weight of '${where}' is gathered twice`);
  const { weight, dtype } = nodeWeight(g.source, where);
  const along = g.axis === 0 ? weight.rows : weight.cols;
  const entries = entriesWithin(g.indices, along);
  if (!entries || (g.axis !== 0 && g.axis !== 1)) throw new ProjectionError(`the weight of '${where}' is a Gather whose indices lie outside the weight`);
  const select = { axis: g.axis as 0 | 1, entries, rows: weight.rows, cols: weight.cols };
  const dims = g.axis === 0 ? { rows: entries.length, cols: weight.cols } : { rows: weight.rows, cols: entries.length };
  return { weight: { tensor: weight.tensor, transposed: weight.transposed, ...dims, select }, dtype };
}

function biasOf(v: Value, features: number, where: string): BiasView {
  const view = biasView(v);
  if (!view || view.data.length !== features) throw new ProjectionError(`the bias of '${where}' is not a constant of ${features} values`);
  if (!weightDtype(view.tensor)) throw new ProjectionError(`the bias of '${where}' is ${view.tensor.dtype}; only float32 and float16 biases can be edited`);
  return view;
}

/** Replaces the projection's weight by one whose output features are built from blocks of the old ones. */
export function writeFeatures(builder: GraphBuilder, p: ResolvedProjection, blocks: readonly AxisBlock[], base: string): void {
  writeAxis(builder, p, p.outIn ? 0 : 1, blocks, base);
}

/** The same for the input features (head slicing of the output projection cuts its input features). */
export function writeInputs(builder: GraphBuilder, p: ResolvedProjection, blocks: readonly AxisBlock[], base: string): void {
  writeAxis(builder, p, p.outIn ? 1 : 0, blocks, base);
}

/**
 * A selection of entries is remembered, so that layers sharing the weight can share what they keep
 * (shared-selections.ts). A weight that is already a Gather of a shared one is a selection of that one.
 */
function writeAxis(builder: GraphBuilder, p: ResolvedProjection, axis: 0 | 1, blocks: readonly AxisBlock[], base: string): void {
  const read = p.node.input(p.weightInput);
  const w = mixWeight(builder, builder.uniqueName(`${base}_weight`), p.weight, axis, blocks, p.dtype);
  setInput(p.node, p.weightInput, w);
  const picked = selectedEntries(blocks);
  const sel = p.weight.select;
  if (!read || !picked || (sel && sel.axis !== axis)) return;
  const whole: NodeWeight = sel ? { tensor: p.weight.tensor, transposed: p.weight.transposed, rows: sel.rows, cols: sel.cols } : p.weight;
  recordSelection(builder, {
    value: w,
    origin: sel ? read.producer!.input(0)! : read,
    tensor: p.weight.tensor,
    view: p.weight.transposed ? 'T' : '',
    axis,
    entries: sel ? picked.map((e) => sel.entries[e]) : picked,
    length: axis === 0 ? whole.rows : whole.cols,
    store: (name, kept) => mixWeight(builder, name, whole, axis, runs(kept), p.dtype),
  });
}

/**
 * Replaces the projection's bias by `data`; `entries` says which old entries data holds when it is a pure selection
 * of them (so that layers sharing the bias can share what they keep).
 */
export function writeBias(builder: GraphBuilder, p: ResolvedProjection, data: Float64Array, base: string, entries?: number[]): void {
  if (!p.bias) return;
  const b = addWeight(builder, `${base}_bias`, [data.length], data, p.dtype);
  setInput(p.bias.node, p.bias.input, b);
  if (!entries) return;
  const { source, tensor, entries: through } = p.bias.view;
  const all = through ? readFloats(tensor) : p.bias.data;
  const dtype = p.dtype;
  recordSelection(builder, {
    value: b,
    origin: source,
    tensor,
    view: 'bias',
    axis: 0,
    entries: through ? entries.map((e) => through[e]) : entries,
    length: all.length,
    store: (name, kept) => addWeight(builder, name, [kept.length], Float64Array.from(kept, (e) => all[e]), dtype),
  });
}
