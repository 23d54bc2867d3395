// Which values of a graph are float32, and which nodes `--precision fp16` keeps in float32.
//
// Kept in float32 (their float inputs cast up, their results cast down where float16 code reads them):
// - the reductions that overflow or lose their sum in float16: Softmax, LogSoftmax, and the normalisations, fused
//   (LayerNormalization, SimplifiedLayerNormalization, Skip…, RMSNormalization) or written out (ReduceMean, Pow, Sqrt,
//   Reciprocal: x² overflows float16 beyond |x| = 256);
// - what the graph computes from integers: a Cast from an integer type to float32 (positions for rotary embeddings:
//   float16 holds integers exactly only up to 2048; attention masks), and everything downstream of such nodes whose
//   float inputs are all kept nodes or constants (the rotary cos/sin tables, the mask arithmetic, a norm's ε add).
// Everything else (projections, products with the activations) becomes float16.
import type { Node, Value } from '../../analysis/ir/graph';
import { DataType } from '../../analysis/onnx/dtypes';

const KEEP_OPS = new Set([
  'Softmax', 'LogSoftmax', 'ReduceMean', 'ReduceSumSquare', 'ReduceL2', 'Pow', 'Sqrt', 'Reciprocal',
  'LayerNormalization', 'SimplifiedLayerNormalization', 'SkipLayerNormalization', 'SkipSimplifiedLayerNormalization', 'RMSNormalization',
]);
/** Ops whose outputs are never float whatever their inputs. */
const NON_FLOAT_OUT = new Set([
  'Shape', 'Size', 'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf',
  'ArgMax', 'ArgMin', 'NonZero',
]);
/** Integer and bool element types (TensorProto numbers: uint8 2, int8 3, uint16 4, int16 5, int32 6, int64 7, bool 9, uint32 12, uint64 13). */
const INT_TYPES = new Set<number>([2, 3, 4, 5, 6, 7, 9, 12, 13]);

const intAttr = (n: Node, name: string): number | undefined => {
  const a = n.attr(name);
  return a?.i === undefined || a.i === null ? undefined : Number(String(a.i));
};

/** Element type of a value as far as float32-ness goes: 'f32', 'other' (int, bool, float16, double) or unknown. */
export class FloatTypes {
  private readonly memo = new Map<Value, boolean>();

  isF32(v: Value | null): boolean {
    if (!v) return false;
    const known = this.memo.get(v);
    if (known !== undefined) return known;
    this.memo.set(v, false); // cycles (subgraph references) end here
    const r = this.lookup(v);
    this.memo.set(v, r);
    return r;
  }

  private lookup(v: Value): boolean {
    const declared = v.info?.type?.tensorType?.elemType;
    if (typeof declared === 'number' && declared > 0) return declared === DataType.FLOAT;
    const c = v.constant;
    if (c) return c.dataType === DataType.FLOAT;
    const p = v.producer;
    if (!p) return false;
    if (p.domain === '' && NON_FLOAT_OUT.has(p.opType)) return false;
    if (p.opType === 'Cast') return intAttr(p, 'to') === DataType.FLOAT;
    if (p.opType === 'ConstantOfShape') return ((p.attr('value')?.t as { dataType?: number } | undefined)?.dataType ?? DataType.FLOAT) === DataType.FLOAT;
    if ((p.opType === 'TopK' || p.opType === 'Dropout') && v.producerIndex === 1) return false;
    if (p.opType === 'Where') return this.isF32(p.input(1)) || this.isF32(p.input(2));
    return p.inputs.some((i) => this.isF32(i));
  }
}

/** Whether a value comes from a constant (an initializer, a Constant node, a ConstantOfShape fill). */
export function isConstantLike(v: Value): boolean {
  if (v.isGraphInput) return false;
  return v.constant !== undefined || (v.producer?.opType === 'ConstantOfShape' && v.producer.domain === '');
}

/** Element-wise ops that continue a normalisation's float32 arithmetic (its ε add, the square root's reciprocal). */
const NORM_STEPS = new Set(['Add', 'Sub', 'Mul', 'Div', 'Sqrt', 'Reciprocal', 'Neg', 'Cast', 'Identity']);

/** The nodes kept in float32, given the graph's nodes in topological order. */
export function float32Nodes(nodes: readonly Node[], types: FloatTypes): Set<Node> {
  const kept = new Set<Node>();
  // Nodes computed from integers only (and constants): grown through any op.
  const integral = new Set<Node>();
  for (const n of nodes) {
    if (n.opType === 'Constant' || n.opType === 'ConstantOfShape' || (n.domain === '' && NON_FLOAT_OUT.has(n.opType))) continue;
    const castFromIntegers = n.opType === 'Cast' && intAttr(n, 'to') === DataType.FLOAT && !types.isF32(n.input(0)) && INT_TYPES.has(sourceType(n.input(0)) ?? DataType.INT64);
    const floats = n.inputs.filter((i): i is Value => i !== null && types.isF32(i));
    if (floats.length === 0 && !castFromIntegers) continue;
    const fromKept = (set: Set<Node>) => floats.some((i) => i.producer !== null && set.has(i.producer))
      && floats.every((i) => isConstantLike(i) || (i.producer !== null && set.has(i.producer)));
    if (castFromIntegers || fromKept(integral)) {
      integral.add(n);
      kept.add(n);
    } else if (KEEP_OPS.has(n.opType) || (NORM_STEPS.has(n.opType) && fromKept(kept))) {
      kept.add(n);
    }
  }
  return kept;
}

/** The declared or constant element type of a value, when the graph says it (undefined otherwise). */
function sourceType(v: Value | null): number | undefined {
  if (!v) return undefined;
  const declared = v.info?.type?.tensorType?.elemType;
  if (typeof declared === 'number' && declared > 0) return declared;
  return v.constant?.dataType;
}
