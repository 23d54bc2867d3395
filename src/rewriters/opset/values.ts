// What the opset converters read off a node and the constants they write in place of its attributes: attribute values
// read exactly (int64 attributes as bigint, because Slice ends hold INT64_MAX and a Number would turn it into 2^63,
// which overflows int64 when written back), element types of values, and scalars of a float element type.
import type { AttributeProtoLike, Node, Value } from '../../analysis/ir/graph';
import { floatToHalf } from '../../analysis/numeric/float16';
import { DataType } from '../../analysis/onnx/dtypes';
import type { TensorData } from '../../analysis/ir/tensor-data';

/** An int64 attribute value as protobufjs or the GraphBuilder leaves it: number, decimal string, Long or bigint. */
function toBigInt(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(v);
  if (typeof v === 'string') return BigInt(v);
  if (v && typeof v === 'object') return BigInt(String(v)); // Long: its toString() is the exact signed decimal.
  throw new TypeError(`not an integer attribute value: ${String(v)}`);
}

export function attrInts(node: Node, name: string): bigint[] | undefined {
  const a = node.attr(name);
  return a ? (a.ints ?? []).map(toBigInt) : undefined;
}

export function attrInt(node: Node, name: string): bigint | undefined {
  const a = node.attr(name);
  return a ? toBigInt(a.i ?? 0) : undefined;
}

export function attrFloat(node: Node, name: string): number | undefined {
  const a = node.attr(name);
  return a ? a.f ?? 0 : undefined;
}

export function attrString(node: Node, name: string): string | undefined {
  const a = node.attr(name);
  return a ? Buffer.from(a.s ?? new Uint8Array(0)).toString('utf8') : undefined;
}

/** Removes an attribute (it becomes an input, or the newer version no longer has it) and returns it. */
export function takeAttr(node: Node, name: string): AttributeProtoLike | undefined {
  const a = node.attr(name);
  node.attributes.delete(name);
  return a;
}

const FLOAT_TYPES: ReadonlySet<number> = new Set([DataType.FLOAT, DataType.FLOAT16, DataType.DOUBLE, DataType.BFLOAT16]);

/** Ops whose output element type is set by an attribute rather than by their inputs. */
const TYPE_ATTR: Readonly<Record<string, string>> = { Cast: 'to', EyeLike: 'dtype', RandomNormalLike: 'dtype', RandomUniformLike: 'dtype' };

/**
 * The float element type (ONNX number) of a value whose operator only takes float types (Clip before 11, Pad before
 * 11): declared (graph input/output, value_info), a constant's, or else the first float type among its producer's
 * inputs. That last step is right for every op whose float output follows its float inputs, which is every op that
 * does not name its output type in an attribute (those are read from the attribute). Undefined when it cannot be told.
 */
export function floatTypeOf(v: Value | null, memo = new Map<Value, number | undefined>(), depth = 0): number | undefined {
  if (!v || depth > 200) return undefined;
  if (memo.has(v)) return memo.get(v);
  memo.set(v, undefined); // a cycle through a subgraph reference must not recurse forever
  const found = lookup(v, memo, depth);
  memo.set(v, found);
  return found;
}

function lookup(v: Value, memo: Map<Value, number | undefined>, depth: number): number | undefined {
  const declared = v.info?.type?.tensorType?.elemType;
  if (typeof declared === 'number' && declared > 0) return FLOAT_TYPES.has(declared) ? declared : undefined;
  const c = v.constant;
  if (c) return FLOAT_TYPES.has(c.dataType) ? c.dataType : undefined;
  const p = v.producer;
  if (!p) return undefined;
  if (p.domain === '' && p.opType === 'ConstantOfShape') {
    const t = (p.attr('value')?.t as { dataType?: number } | undefined)?.dataType ?? DataType.FLOAT;
    return FLOAT_TYPES.has(t) ? t : undefined;
  }
  const typeAttr = p.domain === '' ? TYPE_ATTR[p.opType] : undefined;
  if (typeAttr) {
    const to = p.attr(typeAttr);
    if (to) {
      const t = Number(toBigInt(to.i ?? 0));
      return FLOAT_TYPES.has(t) ? t : undefined;
    }
  }
  for (const input of p.inputs) {
    const t = floatTypeOf(input, memo, depth + 1);
    if (t !== undefined) return t;
  }
  return undefined;
}

/**
 * A scalar of a float element type holding `x`, a float attribute value (so `x` is a float32): exact for float32 and
 * float64, rounded to nearest-even for float16 (what casting the attribute to the input's type does).
 */
export function floatScalar(dataType: number, x: number): TensorData | undefined {
  switch (dataType) {
    case DataType.FLOAT: return { dtype: 'float32', data: [x] };
    case DataType.DOUBLE: return { dtype: 'float64', data: [Math.fround(x)] };
    case DataType.FLOAT16: return { dtype: 'float16', data: Uint16Array.of(halfBits(x)) };
    default: return undefined;
  }
}

/** IEEE half-precision bits of a float32 value, rounded to nearest, ties to even; overflow gives ±infinity. */
export const halfBits = floatToHalf;

