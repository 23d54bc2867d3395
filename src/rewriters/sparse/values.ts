// Facts about values that the shape propagation does not keep: element types (to match masks to the scores and to a
// fused operator's mask input) and whether a side input of an element-wise op is a scalar (so that it broadcasts over
// any layout of the scores, blocked ones included).
import type { Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import { DataType, dtypeName } from '../../analysis/onnx/dtypes';
import { floatTypeOf as deepFloatType } from '../opset/values';
import type { FloatType } from './ops';

const BOOL_OPS = new Set(['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf']);
const SAME_AS_FIRST = new Set([
  'Expand', 'Reshape', 'Unsqueeze', 'Squeeze', 'Transpose', 'Slice', 'Gather', 'Identity', 'Tile', 'Concat', 'Flatten',
  'Add', 'Sub', 'Mul', 'Div', 'Neg', 'Abs', 'Min', 'Max', 'Softmax', 'Tanh', 'Sigmoid', 'Pad', 'GatherElements',
]);

/** onnxruntime-style element type name of a value ('float32', 'bool', ...), when it can be told from the graph. */
export function elemTypeOf(v: Value | null, depth = 12): string | undefined {
  if (!v || depth < 0) return undefined;
  const declared = v.info?.type?.tensorType?.elemType;
  if (declared) return dtypeName(declared);
  const c = v.constant;
  if (c) return c.dtype;
  const p = v.producer;
  if (!p) return undefined;
  if (p.opType === 'Cast') {
    const to = p.attr('to')?.i;
    return to === undefined || to === null ? undefined : dtypeName(Number(String(to)));
  }
  if (p.opType === 'CastLike') return elemTypeOf(p.input(1), depth - 1);
  if (BOOL_OPS.has(p.opType)) return 'bool';
  if (p.opType === 'Shape' || p.opType === 'Size' || p.opType === 'Range' && elemTypeOf(p.input(0), depth - 1) === 'int64') return 'int64';
  if (p.opType === 'Where') return elemTypeOf(p.input(1), depth - 1) ?? elemTypeOf(p.input(2), depth - 1);
  if (p.opType === 'ConstantOfShape') {
    const t = p.attr('value')?.t as { dataType?: number } | undefined;
    return dtypeName(t?.dataType ?? 1);
  }
  if (SAME_AS_FIRST.has(p.opType)) return elemTypeOf(p.input(0), depth - 1);
  if (p.opType === 'MatMul' || p.opType === 'Gemm') return elemTypeOf(p.input(0), depth - 1);
  return undefined;
}

/** The float type of a site's scores: that of Q as it enters the product (float32 when it cannot be told). */
export function floatTypeOf(q: Value | undefined | null): FloatType {
  // A float value's type follows its producer's float inputs back to a weight or a declared type: a model converted
  // to float16 has its LayerNorms and GELUs on the way, which the shallow reading above does not pass.
  const t = elemTypeOf(q ?? null) ?? dtypeName(deepFloatType(q ?? null) ?? DataType.FLOAT);
  return t === 'float16' ? 'float16' : 'float32';
}

/** A value with one element (a constant, or a shape known to be all ones): it broadcasts over any layout. */
export function isScalarLike(shapes: ShapeInfo, v: Value): boolean {
  const c = v.constant;
  if (c) return c.size === 1;
  const s = shapes.shape(v);
  return s !== undefined && s.every((d) => d === 1);
}
