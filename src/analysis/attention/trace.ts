// Walking from an attention input (Q, K or V as it reaches the score MatMul) back to where it came from: a projection
// (MatMul/Gemm against a weight), a KV-cache graph input, or some other activation. The walk passes through the
// reshapes, transposes, biases, scalings, rotary embeddings, cache concatenations and grouped-query repeats that
// exporters put in between, whatever their order, instead of matching one fixed chain of ops.
import type { Node, Value } from '../ir/graph';
import type { ProjectionInfo } from '../report/types';
import { attrInt, expandedByInput, isConstantLike, QDQ_OPS, scalarOf, WEIGHT_PRODUCTS, type Ctx } from './match';

/** Ops the data path passes through, and which of their inputs carry data. */
const PASS: Record<string, (n: Node) => number[]> = {
  Transpose: () => [0], Reshape: () => [0], Cast: () => [0], Clip: () => [0], Identity: () => [0], Unsqueeze: () => [0], Squeeze: () => [0],
  Expand: () => [0], Tile: () => [0], Slice: () => [0], Split: () => [0], Gather: () => [0], Neg: () => [0], Flatten: () => [0],
  Concat: (n) => n.inputs.map((_, i) => i), Add: () => [0, 1], Sub: () => [0, 1], Mul: () => [0, 1], Div: () => [0, 1],
  Where: () => [1, 2], RotaryEmbedding: () => [0], Contiguous: () => [0], Dropout: () => [0], QuantizeLinear: () => [0], DequantizeLinear: () => [0],
  // Rewritten (block-sparse) sites gather K/V blocks.
  GatherND: () => [0],
};

export interface Trace {
  /** Nodes on paths from the sources to the start value (projections included), unordered. */
  nodes: Set<Node>;
  projection?: ProjectionInfo;
  /** The activation the projection reads (for deciding self vs cross attention). */
  activation?: Value;
  /** The projection's output (after its bias), whose last dim is the projection's width. */
  projectionOut?: Value;
  /** Graph inputs the path reads directly (KV-cache `past_*` inputs, or pre-projected inputs). */
  graphInputs: Value[];
  /** Values on the path that are also graph outputs, or feed one directly (`present_*`). */
  graphOutputs: Value[];
  /** Product of scalar constant Mul/Div factors on the path. */
  scale: number;
  /** A scalar factor on the path whose value could not be computed (the node), when there is one. */
  scaleUnknown?: string;
  rope: boolean;
  /** Concat nodes that append new keys/values to a cache. */
  cacheConcats: Node[];
  /** Boundary activations where the walk stopped without a projection. */
  others: Value[];
  /**
   * Where a fused projection (QKV or KV) is cut into its parts: the Split/Slice node and the output taken, and where
   * that node's input starts in the projection's features (GPT-BigCode cuts Q from KV, then K from V: base 32 for the
   * second cut).
   */
  split?: Cut;
}

interface Cut {
  node: Node;
  output: number;
  base: number;
  /** The cut this one cuts again. */
  outer?: Cut;
}

const MAX_NODES = 200;

export function traceBack(ctx: Ctx, start: Value): Trace {
  const t: Trace = { nodes: new Set(), graphInputs: [], graphOutputs: [], scale: 1, rope: false, cacheConcats: [], others: [] };
  const onPath = new Map<Value, boolean>();
  let budget = MAX_NODES;

  const visit = (v: Value): boolean => {
    const known = onPath.get(v);
    if (known !== undefined) return known;
    onPath.set(v, false); // guards against revisiting while in progress
    let result = false;
    const p = v.producer;
    if (v.isGraphInput && !v.initializer) {
      t.graphInputs.push(v);
      result = true;
    } else if (p && budget-- > 0) {
      const proj = projectionOf(ctx, p, v);
      if (proj) {
        t.nodes.add(p);
        if (proj.biasNode) t.nodes.add(proj.biasNode);
        if (!t.projection) {
          t.projection = proj.info;
          t.activation = proj.activation;
          t.projectionOut = v;
        }
        result = true;
      } else if (PASS[p.opType] && p.domain === '' || (p.opType === 'RotaryEmbedding' && p.domain === 'com.microsoft')) {
        const dataIdx = PASS[p.opType](p);
        for (const i of dataIdx) {
          const inp = p.input(i);
          if (!inp || isConstantOperand(ctx, inp)) continue;
          if (visit(inp)) result = true;
        }
        if (result) {
          t.nodes.add(p);
          if (p.opType === 'RotaryEmbedding') t.rope = true;
          // A Split/Slice straight after a projection cuts a fused QKV (or KV) weight; elsewhere (RoPE halves) it does not.
          // A Split of such a part along its features cuts it again (the walk returns through the first cut first).
          if (p.opType === 'Split' || p.opType === 'Slice') t.split = cutOf(ctx, t.split, p, v.producerIndex) ?? t.split;
          if (p.opType === 'Concat' && p.inputs.some((i) => i?.isGraphInput)) t.cacheConcats.push(p);
          if ((p.opType === 'Mul' || p.opType === 'Div') && p.inputs.some((i) => i && isConstantOperand(ctx, i))) {
            const factor = p.inputs.find((i) => i && isConstantOperand(ctx, i)) ?? null;
            const c = scalarOf(ctx, factor);
            if (c !== undefined && c !== 0) t.scale *= p.opType === 'Mul' ? c : 1 / c;
            // A one-element factor computed from shapes this analysis cannot evaluate (Swin's head_dim ** -0.5 from
            // the runtime shape): the scale is then unknown, never silently 1.
            else if (c === undefined && ctx.shapes.shape(factor)?.every((d) => d === 1)) t.scaleUnknown ??= `${p.opType} '${p.name}'`;
          }
        }
      } else {
        t.others.push(v);
      }
    }
    onPath.set(v, result);
    if (result && (v.isGraphOutput || v.uses.some((u) => u.node.outputs.some((o) => o.isGraphOutput) && ['Identity', 'Cast', 'Transpose'].includes(u.node.opType)))) {
      t.graphOutputs.push(v.isGraphOutput ? v : v.uses.map((u) => u.node.outputs.find((o) => o.isGraphOutput)).find(Boolean)!);
    }
    return result;
  };
  visit(start);
  // A second cut whose other parts come back into the same path is no cut of the projection (rotate_half's halves).
  while (t.split?.outer && t.split.node.outputs.some((o, i) => i !== t.split!.output && onPath.get(o))) t.split = t.split.outer;
  t.rope ||= hasRotateHalf(t.nodes);
  // A walk that reached no projection and no input counted no factor on its way (Keras' EinsumDense projections, which
  // it does not read, then `q * d ** -0.5`): the factors are read along the one data path back from the start, and a
  // fork there leaves the scale unknown rather than 1.
  if (!t.projection && t.graphInputs.length === 0) Object.assign(t, spineScale(ctx, start));
  return t;
}

/** The product of the scalar factors back from `v` while the data path is one chain of pass-through ops. */
function spineScale(ctx: Ctx, v: Value): Pick<Trace, 'scale' | 'scaleUnknown'> {
  let scale = 1;
  for (let cur: Value | null = v, i = 0; cur?.producer && i < 64; i++) {
    const p: Node = cur.producer;
    if (!PASS[p.opType] || p.domain !== '') break;
    const data = PASS[p.opType](p).map((j) => p.input(j)).filter((x): x is Value => !!x && !isConstantOperand(ctx, x));
    if (data.length !== 1) return { scale, scaleUnknown: `${p.opType} '${p.name}' (the path from Q or K forks before any projection)` };
    if (p.opType === 'Mul' || p.opType === 'Div') {
      const factor = p.inputs.find((x) => x && x !== data[0]) ?? null;
      const c = scalarOf(ctx, factor);
      if (c === undefined || c === 0) return { scale, scaleUnknown: `${p.opType} '${p.name}'` };
      scale *= p.opType === 'Mul' ? c : 1 / c;
    }
    cur = data[0];
  }
  return { scale };
}

/** RoPE written out: x*cos + rotate_half(x)*sin, where rotate_half is Slice/Split, Neg and Concat. */
function hasRotateHalf(nodes: Set<Node>): boolean {
  let neg = false;
  let concat = false;
  for (const n of nodes) {
    if (n.opType === 'Neg') neg = true;
    if (n.opType === 'Concat') concat = true;
  }
  return neg && concat;
}

/**
 * The value is a projection's whole output, possibly reshaped (GPT-2's Conv1D flattens around its Gemm): its last dim
 * is the projection's full width. RoPE's half-slices of a head do not qualify.
 */
function comesFromProjection(ctx: Ctx, v: Value | null): boolean {
  const shape = ctx.shapes.shape(v);
  const width = shape?.[shape.length - 1];
  // A fused projection is cut before the heads are split out ([batch, seq, features]); RoPE cuts [.., heads, seq, dim].
  if (shape && shape.length > 3) return false;
  for (let i = 0; i < 3 && v?.producer; i++) {
    const proj = projectionOf(ctx, v.producer);
    if (proj) {
      const w = ctx.graph.values.get(proj.info.weight)?.initializer?.dims;
      const out = w && w.length === 2 ? (proj.info.layout === 'out_in' ? w[0] : w[1]) : undefined;
      return out !== undefined && out === width;
    }
    if (v.producer.opType !== 'Reshape' && v.producer.opType !== 'Transpose') return false;
    v = v.producer.input(0);
  }
  return false;
}

interface Projection {
  info: ProjectionInfo;
  activation: Value;
  biasNode?: Node;
}

/** A MatMul/Gemm applying a weight: one operand computed from constants only (possibly transposed or dequantized). */
export function projectionOf(ctx: Ctx, p: Node, out?: Value): Projection | undefined {
  let mm = p;
  let biasNode: Node | undefined;
  let bias: string | undefined;
  // A bias Add right after the MatMul belongs to the projection.
  if (p.opType === 'Add' && p.domain === '') {
    const [a, b] = p.inputs;
    const constSide = a && isConstantLike(ctx, a) ? a : b && isConstantLike(ctx, b) ? b : undefined;
    const other = constSide === a ? b : a;
    const prod = other?.producer;
    if (!constSide || !prod || !isWeightMatMul(ctx, prod)) return undefined;
    mm = prod;
    biasNode = p;
    bias = constName(constSide);
  }
  if (!isWeightMatMul(ctx, mm)) return undefined;
  const wIdx = mm.input(1) && isConstantLike(ctx, mm.input(1)) ? 1 : 0;
  const w = mm.input(wIdx)!;
  const act = mm.input(1 - wIdx)!;
  const transB = mm.opType === 'Gemm' && attrInt(mm, 'transB') === 1;
  if (mm.opType === 'Gemm' && mm.input(2)) bias = constName(mm.input(2)!);
  void out;
  return {
    info: { weight: constName(w), ...(bias ? { bias } : {}), layout: transB ? 'out_in' : 'in_out', node: mm.name, ...(biasNode ? { biasNode: biasNode.name } : {}) },
    activation: act,
    biasNode,
  };
}

/** A constant operand on the walk (a factor, a weight, a shape), as opposed to learned queries it follows as data. */
export function isConstantOperand(ctx: Ctx, v: Value): boolean {
  return isConstantLike(ctx, v) && !expandedByInput(v) && !projectsLearnedData(ctx, v);
}

/**
 * A constant-like value that is a projection of data sized by the inputs (learned queries expanded to the batch, then
 * projected): the walk follows it like any activation, since it is Q, not a weight.
 */
export function projectsLearnedData(ctx: Ctx, v: Value): boolean {
  let cur: Value | null = v;
  for (let i = 0; i < 8 && cur?.producer; i++) {
    const p: Node = cur.producer;
    if (projectionOf(ctx, p)) return expandedByInput(cur);
    if (!PASS[p.opType] || p.domain !== '') return false;
    cur = p.input(PASS[p.opType](p)[0] ?? 0);
  }
  return false;
}

function isWeightMatMul(ctx: Ctx, n: Node): boolean {
  if (n.domain !== '' && n.domain !== 'com.microsoft') return false;
  if (!WEIGHT_PRODUCTS.has(n.opType)) return false;
  const [a, b] = n.inputs;
  if (!a || !b) return false;
  if (isConstantLike(ctx, b) !== isConstantLike(ctx, a)) return true;
  // Both computed without the data's values: a weight applied to learned queries expanded to the batch.
  return isConstantLike(ctx, b) && expandedByInput(b) !== expandedByInput(a);
}

/** Ops that pass a weight on whole (a Gather or Slice takes part of it: the weight is then the part, by its name). */
const WHOLE_WEIGHT_OPS = new Set(['Transpose', 'Cast', 'DequantizeLinear', 'Identity']);

/** The initializer behind a constant-like value (through Transpose/Cast/DequantizeLinear), else the value's name. */
function constName(v: Value): string {
  let cur: Value | null = v;
  for (let i = 0; i < 4 && cur; i++) {
    if (cur.initializer) return cur.name;
    const p: Node | null = cur.producer;
    cur = p && WHOLE_WEIGHT_OPS.has(p.opType) ? p.input(0) : null;
  }
  return v.name;
}

/** The cut a Split/Slice makes of a fused projection's features, given the cut already read on the way there. */
function cutOf(ctx: Ctx, prev: Cut | undefined, p: Node, output: number): Cut | undefined {
  if (!prev) return comesFromProjection(ctx, p.input(0)) ? { node: p, output, base: 0 } : undefined;
  const inner = p.input(0);
  if (p.opType !== 'Split' || inner !== prev.node.outputs[prev.output]) return undefined;
  const rank = ctx.shapes.shape(inner)?.length;
  const axis = attrInt(p, 'axis') ?? 0;
  if (rank === undefined || rank > 3 || (axis !== -1 && axis !== rank - 1)) return undefined;
  return { node: p, output, base: prev.base + cutStart(ctx, prev.node, prev.output), outer: prev };
}

/** Where output `index` of a Split starts along the cut axis (its outputs' last dims before it). */
function cutStart(ctx: Ctx, split: Node, index: number): number {
  return split.outputs.slice(0, index).reduce((a, o) => {
    const s = ctx.shapes.shape(o);
    const x = s?.[s.length - 1];
    return a + (typeof x === 'number' ? x : 0);
  }, 0);
}

/** Output features of the projection that feeds a trace, after any fused-QKV split. */
export function projectionWidth(ctx: Ctx, t: Trace): number | undefined {
  const last = (v: Value | undefined) => {
    const d = ctx.shapes.shape(v);
    const x = d?.[d.length - 1];
    return typeof x === 'number' && x > 0 ? x : undefined;
  };
  if (t.split) return last(t.split.node.outputs[t.split.output]);
  if (!t.projection) return undefined;
  // The output's shape works for weights computed at run time too (dictionary rewrites, dequantized weights).
  const fromShape = last(t.projectionOut);
  if (fromShape) return fromShape;
  const w = ctx.graph.values.get(t.projection.weight)?.initializer;
  if (!w || w.dims.length !== 2) return undefined;
  return t.projection.layout === 'out_in' ? w.dims[0] : w.dims[1];
}

/** The trace's projection, with the slice of a fused QKV (or KV) weight it takes when a Split cuts it. */
export function projectionWithSlice(ctx: Ctx, t: Trace): ProjectionInfo | undefined {
  const p = t.projection;
  if (!p || !t.split || t.split.node.opType !== 'Split') return p;
  const width = projectionWidth(ctx, t) ?? 0;
  const start = t.split.base + cutStart(ctx, t.split.node, t.split.output);
  const parts = t.split.base > 0 || t.split.node.outputs.length === 3 ? 'qkv' : 'kv';
  return { ...p, fused: parts, sliceStart: start, sliceEnd: start + width };
}

/** Ops that compute each position from the same position only (elementwise, or over the features' last axis). */
const PER_POSITION = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Sqrt', 'Reciprocal', 'Cast', 'Neg', 'Erf', 'Tanh', 'Sigmoid', 'Identity', 'MatMul', 'Gemm', 'ReduceMean', 'LayerNormalization', 'SimplifiedLayerNormalization', 'RMSNormalization', 'Split', 'Slice']);
/** Of those, the ones that name an axis: it must be the features' (the last). */
const AXIS_OPS = new Set(['ReduceMean', 'LayerNormalization', 'SimplifiedLayerNormalization', 'RMSNormalization', 'Split']);

/**
 * Whether `v` is computed from `root` position by position: low-rank keys and values (DeepSeek's multi-head latent
 * attention projects the hidden states to a latent, normalises it, and projects K and V from that) are still the
 * queries' sequence. A convolution, reshape or transpose on the way (PVT's and CvT's reduced keys) is not followed.
 */
function perPosition(v: Value, root: Value, depth = 16): boolean {
  const seen = new Set<Value>();
  const stack: [Value, number][] = [[v, 0]];
  while (stack.length) {
    const [x, d] = stack.pop()!;
    if (x === root) return true;
    const p = x.producer;
    if (seen.has(x) || !p || d >= depth || p.domain !== '' && p.domain !== 'com.microsoft' || !PER_POSITION.has(p.opType)) continue;
    seen.add(x);
    if (AXIS_OPS.has(p.opType) && !onLastAxis(p)) continue;
    if (p.opType === 'Slice' && !slicesLastAxis(p)) continue;
    for (const i of p.opType === 'Slice' ? [p.input(0)] : p.inputs) if (i && !i.initializer && !i.constant) stack.push([i, d + 1]);
  }
  return false;
}

function onLastAxis(n: Node): boolean {
  const axes = n.attr('axes')?.ints?.map(Number);
  if (axes) return axes.length === 1 && axes[0] === -1;
  const axis = n.attr('axis')?.i;
  // The normalizations' axis defaults to the last; Split's to the first.
  if (axis === undefined || axis === null) return n.opType.endsWith('Normalization');
  return Number(axis) === -1;
}

/** A Slice whose only axis is the last, given as a constant −1. */
function slicesLastAxis(n: Node): boolean {
  const axes = n.input(3)?.constant;
  return !!axes && axes.size === 1 && axes.toNumbers()[0] === -1;
}

/** The value a chain of quantize-dequantize pairs rounds (each projection may have a pair of its own). */
function beforeQdq(v: Value): Value {
  let cur = v;
  const quantizes = (p: Node) => QDQ_OPS.has(p.opType) || (p.opType === 'DynamicQuantizeLinear' && cur.producerIndex === 0);
  for (let i = 0; i < 8 && cur.producer && quantizes(cur.producer) && cur.producer.input(0); i++) cur = cur.producer.input(0)!;
  return cur;
}

/**
 * Self-attention when Q and K are projected from the same activation (seen through quantize-dequantize pairs); the one
 * rule for written-out and fused sites alike (without K, as with Q/K/V packed in a fused operator's query, it is
 * self-attention).
 */
export function attentionKind(q: Trace, k?: Trace): 'self' | 'cross' {
  if (!k) return 'self';
  if (q.activation && k.activation) {
    const [qa, ka] = [beforeQdq(q.activation), beforeQdq(k.activation)];
    return qa === ka || perPosition(ka, qa) ? 'self' : 'cross';
  }
  if (q.split && k.split && q.split.node === k.split.node) return 'self';
  // K only from graph inputs (a precomputed encoder cache) while Q is projected here: cross-attention.
  if (q.activation && !k.activation && k.graphInputs.length > 0 && k.cacheConcats.length === 0) return 'cross';
  return 'self';
}
