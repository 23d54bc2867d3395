// Following one axis of a tensor forward through the graph: where does axis k of a graph input end up? Used when the
// shapes carry no symbol that ties an input's axis to the attention scores (fixed sizes, or symbols lost on the way):
// the input axis that becomes the scores' key axis is the sequence, whatever the exporter called it.
//
// Only ops whose axis movement is certain are followed (pointwise and broadcasting ops, Unsqueeze/Squeeze, Transpose,
// Gather, MatMul, Einsum, and Reshape where the dims before and at the axis are provably unchanged). Anything else ends
// the path: a missed path costs a fallback, a wrongly followed one would cost a wrong layout.
import { toNum } from '../onnx/long';
import type { Node, Value } from '../ir/graph';
import type { ShapeInfo } from '../ir/shapes';
import type { Dim } from '../report/types';

/** Ops that keep every axis where it is (elementwise on one tensor, or normalising along the last axis). */
const SAME_AXES = new Set([
  'Cast', 'CastLike', 'Identity', 'Relu', 'Gelu', 'Tanh', 'Sigmoid', 'Neg', 'Sqrt', 'Erf', 'Cos', 'Sin', 'Not', 'Reciprocal',
  'Exp', 'Log', 'Abs', 'FastGelu', 'BiasGelu', 'QuickGelu', 'Clip', 'Softmax', 'LogSoftmax', 'Dropout', 'Silu', 'Softplus',
  'LayerNormalization', 'SimplifiedLayerNormalization', 'SkipLayerNormalization', 'SkipSimplifiedLayerNormalization',
  'RMSNormalization', 'RotaryEmbedding', 'Floor', 'Ceil', 'Round', 'Sign', 'Slice', 'Split', 'Concat', 'Pad', 'Tile',
  'Trilu', 'IsNaN', 'IsInf', 'Elu', 'LeakyRelu', 'HardSigmoid', 'Mish',
]);
/** Ops that broadcast their inputs against each other (numpy rules: ranks align at the end). */
const BROADCAST = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Where', 'And', 'Or', 'Xor', 'Equal', 'Less', 'Greater', 'LessOrEqual',
  'GreaterOrEqual', 'Max', 'Min', 'Mod', 'BitwiseAnd', 'PRelu', 'Expand',
]);

/** Whether (value, axis) is a place the caller looks for; the label it returns is collected. */
export type AxisTarget = (v: Value, axis: number) => string | undefined;

/**
 * Labels of every target that axis `axis` of `start` reaches. `limit` bounds the (value, axis) states visited, so a
 * pathological graph costs a fallback rather than time.
 */
export function followAxis(start: Value, axis: number, shapes: ShapeInfo, target: AxisTarget, limit = 50_000): Set<string> {
  const found = new Set<string>();
  const seen = new Map<Value, Set<number>>();
  const stack: [Value, number][] = [[start, axis]];
  let visited = 0;
  while (stack.length > 0 && visited < limit) {
    const [v, k] = stack.pop()!;
    const axes = seen.get(v) ?? new Set<number>();
    if (axes.has(k)) continue;
    axes.add(k);
    seen.set(v, axes);
    visited++;
    const label = target(v, k);
    if (label !== undefined) found.add(label);
    for (const use of v.uses) {
      for (const [out, k2] of moveAxis(use.node, use.index, k, shapes)) stack.push([out, k2]);
    }
  }
  return found;
}

const rank = (v: Value | null, shapes: ShapeInfo): number | undefined => shapes.shape(v)?.length;

/** Where axis `k` of input `index` of `n` goes among `n`'s outputs (none when it is reduced, merged or unknown). */
function moveAxis(n: Node, index: number, k: number, shapes: ShapeInfo): [Value, number][] {
  if (n.domain !== '' && n.domain !== 'ai.onnx' && n.domain !== 'com.microsoft') return [];
  const op = n.opType;
  const out = n.outputs[0];
  if (!out) return [];
  if (op === 'Shape' || op === 'Size') return [];
  if (SAME_AXES.has(op)) {
    // Only the data input of Slice/Split/Pad/Tile moves data (their other inputs are sizes); Concat and the skip
    // input of SkipLayerNormalization are data too.
    if (index !== 0 && op !== 'Concat' && !(op.startsWith('Skip') && index === 1)) return [];
    return n.outputs.filter((o) => o.name !== '' && rank(o, shapes) === rank(n.input(index), shapes)).map((o) => [o, k]);
  }
  if (BROADCAST.has(op)) {
    if (op === 'Expand' && index !== 0) return [];
    const r = rank(n.input(index), shapes);
    const R = rank(out, shapes);
    return r !== undefined && R !== undefined && R >= r ? [[out, k + R - r]] : [];
  }
  switch (op) {
    case 'Unsqueeze': {
      if (index !== 0) return [];
      const r = rank(n.input(0), shapes);
      const axes = intsOf(n, 'axes') ?? numbers(shapes.values(n.input(1)));
      if (r === undefined || !axes) return [];
      const R = r + axes.length;
      const inserted = new Set(axes.map((a) => (a < 0 ? a + R : a)));
      const kept = Array.from({ length: R }, (_, i) => i).filter((i) => !inserted.has(i));
      return kept[k] === undefined ? [] : [[out, kept[k]]];
    }
    case 'Squeeze': {
      if (index !== 0) return [];
      const shape = shapes.shape(n.input(0));
      if (!shape) return [];
      const listed = intsOf(n, 'axes') ?? numbers(shapes.values(n.input(1)));
      const axes = listed ? listed.map((a) => (a < 0 ? a + shape.length : a)) : shape.flatMap((d, i) => (d === 1 ? [i] : []));
      return axes.includes(k) ? [] : [[out, k - axes.filter((a) => a < k).length]];
    }
    case 'Transpose': {
      const r = rank(n.input(0), shapes);
      if (r === undefined) return [];
      const perm = intsOf(n, 'perm') ?? Array.from({ length: r }, (_, i) => r - 1 - i);
      const k2 = perm.indexOf(k);
      return k2 < 0 ? [] : [[out, k2]];
    }
    case 'Gather': {
      const r = rank(n.input(0), shapes);
      const ri = rank(n.input(1), shapes);
      if (r === undefined || ri === undefined) return [];
      const a0 = intAttr(n, 'axis', 0);
      const a = a0 < 0 ? a0 + r : a0;
      // Indices (token ids into an embedding table) put their axes where the gathered axis was.
      if (index === 1) return [[out, a + k]];
      if (k === a) return [];
      return [[out, k < a ? k : k + ri - 1]];
    }
    case 'MatMul':
    case 'FusedMatMul':
      return matmulAxis(n, index, k, shapes);
    case 'Einsum':
      return einsumAxis(n, index, k);
    case 'Reshape':
      return index === 0 ? reshapeAxis(shapes.shape(n.input(0)), shapes.shape(out), k).map((k2) => [out, k2] as [Value, number]) : [];
    default:
      return [];
  }
}

function matmulAxis(n: Node, index: number, k: number, shapes: ShapeInfo): [Value, number][] {
  if (index > 1) return [];
  const out = n.outputs[0];
  const r = rank(n.input(index), shapes);
  const R = rank(out, shapes);
  if (r === undefined || R === undefined || r < 2 || R < 2) return [];
  // FusedMatMul may transpose either operand's last two axes before multiplying.
  const transposed = n.opType === 'FusedMatMul' && intAttr(n, index === 0 ? 'transA' : 'transB', 0) === 1;
  let kk = k;
  if (transposed && k >= r - 2) kk = k === r - 1 ? r - 2 : r - 1;
  if (index === 0) {
    if (kk === r - 1) return []; // contracted
    return [[out, kk === r - 2 ? R - 2 : kk + R - r]];
  }
  if (kk === r - 2) return []; // contracted
  return [[out, kk === r - 1 ? R - 1 : kk + R - r]];
}

function einsumAxis(n: Node, index: number, k: number): [Value, number][] {
  const eq = n.attr('equation')?.s;
  if (!eq) return [];
  const text = new TextDecoder().decode(eq).replace(/\s+/g, '');
  const [lhs, rhs] = text.split('->');
  if (rhs === undefined || text.includes('...')) return [];
  const letter = lhs.split(',')[index]?.[k];
  const k2 = letter === undefined ? -1 : rhs.indexOf(letter);
  return k2 < 0 ? [] : [[n.outputs[0], k2]];
}

/**
 * Axis k survives a Reshape when the dims before it multiply to the same product on both sides and it keeps its size:
 * [S, B, 128] -> [S, B·4, 32] keeps S at 0. Symbols count as factors; an unknown dim on the way proves nothing.
 */
export function reshapeAxis(input: Dim[] | undefined, output: Dim[] | undefined, k: number): number[] {
  if (!input || !output || k >= input.length) return [];
  const dim = input[k];
  if (dim === null || dim === 1) return [];
  const before = factors(input.slice(0, k));
  if (!before) return [];
  for (let k2 = 0; k2 < output.length; k2++) {
    const prefix = factors(output.slice(0, k2));
    if (!prefix) return [];
    if (sameFactors(prefix, before) && output[k2] === dim) return [k2];
  }
  return [];
}

interface Factors { num: number; syms: string[] }

function factors(dims: Dim[]): Factors | undefined {
  let num = 1;
  const syms: string[] = [];
  for (const d of dims) {
    if (d === null) return undefined;
    if (typeof d === 'number') num *= d;
    else syms.push(d);
  }
  return { num, syms: syms.sort() };
}

function sameFactors(a: Factors, b: Factors): boolean {
  return a.num === b.num && a.syms.length === b.syms.length && a.syms.every((s, i) => s === b.syms[i]);
}

function intsOf(n: Node, name: string): number[] | undefined {
  const a = n.attr(name);
  return a?.ints ? a.ints.map((x) => toNum(x as never)) : undefined;
}

function intAttr(n: Node, name: string, dflt: number): number {
  const a = n.attr(name);
  return a && a.i !== undefined && a.i !== null ? toNum(a.i as never) : dflt;
}

function numbers(v: Dim[] | undefined): number[] | undefined {
  return v && v.every((d) => typeof d === 'number') ? (v as number[]) : undefined;
}
