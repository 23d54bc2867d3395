// Turning JavaScript arrays into TensorProto objects, for models and constants built in memory.
//
// Every tensor is written as little-endian `raw_data` (what exporters write, and the one form onnxruntime reads for
// every element type). float16 and bfloat16 have no JavaScript array type: callers pass the 16-bit patterns in a
// Uint16Array, which is also why the element type is always stated and never guessed from the array.
import * as os from 'node:os';
import { DataType } from '../onnx/dtypes';
import type { TensorProtoLike } from '../onnx/tensor';

export type TensorData =
  | { dtype: 'float32'; data: Float32Array | readonly number[] }
  | { dtype: 'float64'; data: Float64Array | readonly number[] }
  /** IEEE 754 half-precision bit patterns. */
  | { dtype: 'float16'; data: Uint16Array }
  /** bfloat16 bit patterns (the upper half of a float32). */
  | { dtype: 'bfloat16'; data: Uint16Array }
  | { dtype: 'int64'; data: BigInt64Array | readonly (number | bigint)[] }
  | { dtype: 'int32'; data: Int32Array | readonly number[] }
  | { dtype: 'int8'; data: Int8Array | readonly number[] }
  | { dtype: 'uint8'; data: Uint8Array | readonly number[] }
  | { dtype: 'bool'; data: Uint8Array | readonly boolean[] };

export type ElemType = TensorData['dtype'];

export const ELEM_TYPE: Record<ElemType, number> = {
  float32: DataType.FLOAT,
  float64: DataType.DOUBLE,
  float16: DataType.FLOAT16,
  bfloat16: DataType.BFLOAT16,
  int64: DataType.INT64,
  int32: DataType.INT32,
  int8: DataType.INT8,
  uint8: DataType.UINT8,
  bool: DataType.BOOL,
};

// Typed arrays use the host's byte order and raw_data is little-endian; every platform Node ships for is
// little-endian, but a silent byte swap would corrupt weights, so say so instead.
if (os.endianness() !== 'LE') throw new Error('attention-lens builds tensors only on little-endian hosts');

/** Little-endian bytes of `data` (always a copy, so later changes to the caller's array do not reach the model). */
export function tensorBytes(t: TensorData): Uint8Array {
  const copy = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
  switch (t.dtype) {
    case 'float32': return copy(t.data instanceof Float32Array ? t.data : Float32Array.from(t.data));
    case 'float64': return copy(t.data instanceof Float64Array ? t.data : Float64Array.from(t.data));
    case 'float16': case 'bfloat16': return copy(t.data);
    case 'int64': return copy(t.data instanceof BigInt64Array ? t.data : BigInt64Array.from(t.data, toBigInt));
    case 'int32': return copy(t.data instanceof Int32Array ? t.data : Int32Array.from(t.data));
    case 'int8': return copy(t.data instanceof Int8Array ? t.data : Int8Array.from(t.data));
    case 'uint8': return copy(t.data instanceof Uint8Array ? t.data : Uint8Array.from(t.data));
    case 'bool': return Uint8Array.from(t.data as ArrayLike<number | boolean>, (v) => (v ? 1 : 0));
  }
}

function toBigInt(v: number | bigint): bigint {
  if (typeof v === 'bigint') return v;
  if (!Number.isSafeInteger(v)) throw new RangeError(`int64 value ${v} is not a safe integer; pass a bigint`);
  return BigInt(v);
}

export function elementCount(t: TensorData): number {
  return t.data.length;
}

/** A TensorProto with the data as raw bytes; checks that the element count matches the shape. */
export function tensorProto(name: string, dims: readonly number[], t: TensorData): TensorProtoLike {
  const expected = dims.reduce((a, b) => a * b, 1);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new RangeError(`tensor '${name}': bad dims [${dims.join(', ')}]`);
  if (elementCount(t) !== expected) {
    throw new RangeError(`tensor '${name}': ${elementCount(t)} ${t.dtype} values for shape [${dims.join(', ')}] (needs ${expected})`);
  }
  return { name, dims: [...dims], dataType: ELEM_TYPE[t.dtype], rawData: tensorBytes(t) };
}

/** Shorthands for the common cases. */
export const f32 = (data: Float32Array | readonly number[]): TensorData => ({ dtype: 'float32', data });
export const i64 = (data: BigInt64Array | readonly (number | bigint)[]): TensorData => ({ dtype: 'int64', data });
export const f16bits = (data: Uint16Array): TensorData => ({ dtype: 'float16', data });
export const bool = (data: readonly boolean[]): TensorData => ({ dtype: 'bool', data });
