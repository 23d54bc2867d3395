// Whether a value's elements are integers (int or bool types) or floats, as far as the graph says. Shape propagation
// (shapes.ts) carries small values; their arithmetic depends on it: Div truncates on integers, and a Cast to an
// integer type truncates. Without it 1.0 / 8.0, both integral, would read as 0 and a scale of 1/√64 as 0.
import { toNum } from '../onnx/long';
import { DataType, isIntegerType } from '../onnx/dtypes';
import type { Node, Value } from './graph';

/** True for integer or boolean elements, false for floats, undefined when the graph does not say. */
export type IntegerKind = boolean | undefined;

/** What a Cast or CastLike converts to, as far as its values change (booleans and other integers apart). */
export type CastTarget = 'bool' | 'integer' | 'float' | undefined;

/** Ops whose output is always an integer or boolean tensor, whatever their inputs. */
const ALWAYS_INTEGER = new Set([
  'Shape', 'Size', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not', 'IsNaN',
  'IsInf', 'NonZero', 'ArgMax', 'ArgMin',
]);
/** Ops defined on float tensors only (their output is float). */
const FLOAT_ONLY = new Set(['Sqrt', 'Reciprocal', 'Exp', 'Log', 'Erf', 'Tanh', 'Sigmoid', 'Softmax', 'LogSoftmax', 'Cos', 'Sin', 'Floor', 'Ceil', 'Round']);
/** Ops whose output has the element type of their data input (input 0; the others are indices, sizes or axes). */
const LIKE_FIRST = new Set([
  'Identity', 'Gather', 'Slice', 'Squeeze', 'Unsqueeze', 'Reshape', 'Expand', 'Tile', 'Transpose', 'Flatten', 'Split',
  'Neg', 'Abs', 'Sign', 'Pow', 'Clip', 'CumSum', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd',
]);
/** Ops whose inputs all share one element type, the output's: any input the graph types decides. */
const LIKE_ANY = new Set(['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Mod', 'Concat', 'Range']);

/** The element kind of a node's outputs, from its op, its attributes and its inputs' kinds. */
export function integerOutput(n: Node, kindOf: (v: Value | null) => IntegerKind): IntegerKind {
  if (n.domain !== '' && n.domain !== 'ai.onnx') return undefined;
  const op = n.opType;
  if (op === 'Constant') {
    const t = n.constantTensor();
    return t ? isIntegerType(t.dataType) : undefined;
  }
  if (ALWAYS_INTEGER.has(op)) return true;
  if (FLOAT_ONLY.has(op)) return false;
  if (op === 'Cast') {
    const to = castTarget(n, kindOf);
    return to === undefined ? undefined : to !== 'float';
  }
  if (op === 'CastLike') return kindOf(n.input(1));
  if (op === 'ConstantOfShape') {
    const t = n.attr('value')?.t as { dataType?: number } | undefined;
    return t?.dataType ? isIntegerType(t.dataType) : false; // float32 zeros by default
  }
  if (op === 'Where') return kindOf(n.input(1)) ?? kindOf(n.input(2));
  if (LIKE_FIRST.has(op)) return kindOf(n.input(0));
  if (LIKE_ANY.has(op)) return n.inputs.map(kindOf).find((k) => k !== undefined);
  return undefined;
}

/**
 * What a Cast converts to. CastLike takes the type of its second input: exact when that is a constant, else only
 * integer-or-float is known, which leaves integers and booleans apart.
 */
export function castTarget(n: Node, kindOf: (v: Value | null) => IntegerKind): CastTarget {
  if (n.opType === 'CastLike') {
    const like = n.input(1);
    const c = like?.constant;
    return c ? targetOf(c.dataType) : kindOf(like) === false ? 'float' : undefined;
  }
  const to = n.attr('to')?.i;
  return to === undefined || to === null ? undefined : targetOf(toNum(to as never));
}

function targetOf(t: number): CastTarget {
  return t === DataType.BOOL ? 'bool' : isIntegerType(t) ? 'integer' : 'float';
}
