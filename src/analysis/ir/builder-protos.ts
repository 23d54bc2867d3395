// The protobuf shapes the builder writes: attribute values tagged with their ONNX type, declared shapes of graph inputs
// and outputs. Kept apart from builder.ts so that the graph-editing logic there reads without the encoding details.
import type { AttributeProtoLike, ValueInfoProtoLike } from './graph';
import { ELEM_TYPE, tensorProto, type ElemType, type TensorData } from './tensor-data';

/** A dimension of a declared shape: a size, a symbol (e.g. "batch"), or null for unknown. */
export type Dim = number | string | null;

/** An attribute value, tagged with its ONNX attribute type (a bare number could be an int or a float). */
export type Attr =
  | { type: 'int'; value: number | bigint }
  | { type: 'ints'; value: readonly (number | bigint)[] }
  | { type: 'float'; value: number }
  | { type: 'floats'; value: readonly number[] }
  | { type: 'string'; value: string | Uint8Array }
  | { type: 'strings'; value: readonly (string | Uint8Array)[] }
  | { type: 'tensor'; value: { dims: readonly number[]; data: TensorData } };

export const attr = {
  int: (value: number | bigint): Attr => ({ type: 'int', value }),
  ints: (value: readonly (number | bigint)[]): Attr => ({ type: 'ints', value }),
  float: (value: number): Attr => ({ type: 'float', value }),
  floats: (value: readonly number[]): Attr => ({ type: 'floats', value }),
  string: (value: string | Uint8Array): Attr => ({ type: 'string', value }),
  strings: (value: readonly (string | Uint8Array)[]): Attr => ({ type: 'strings', value }),
  tensor: (dims: readonly number[], data: TensorData): Attr => ({ type: 'tensor', value: { dims, data } }),
};

export function valueInfo(name: string, dtype: ElemType | number, shape: readonly Dim[] | undefined): ValueInfoProtoLike {
  const elemType = typeof dtype === 'number' ? dtype : ELEM_TYPE[dtype];
  const tensorType = shape === undefined
    ? { elemType }
    : { elemType, shape: { dim: shape.map((d) => (d === null ? {} : typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } };
  return { name, type: { tensorType } };
}

/** int64 values go to protobufjs as numbers when safe, as decimal strings otherwise (it parses those with Long). */
function int64(v: number | bigint): number | string {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (!Number.isSafeInteger(v)) throw new RangeError(`integer attribute value ${v} is not a safe integer; pass a bigint`);
  return v;
}

const utf8 = (s: string | Uint8Array) => (typeof s === 'string' ? new Uint8Array(Buffer.from(s, 'utf8')) : s);

// AttributeProto.AttributeType numbers.
const FLOAT = 1, INT = 2, STRING = 3, TENSOR = 4, FLOATS = 6, INTS = 7, STRINGS = 8;

export function attributeProto(name: string, a: Attr): AttributeProtoLike {
  switch (a.type) {
    case 'int': return { name, type: INT, i: int64(a.value) };
    case 'ints': return { name, type: INTS, ints: a.value.map(int64) };
    case 'float': return { name, type: FLOAT, f: a.value };
    case 'floats': return { name, type: FLOATS, floats: [...a.value] };
    case 'string': return { name, type: STRING, s: utf8(a.value) };
    case 'strings': return { name, type: STRINGS, strings: a.value.map(utf8) };
    case 'tensor': return { name, type: TENSOR, t: tensorProto('', a.value.dims, a.value.data) };
  }
}
