// Host-side tensors: plain typed arrays with a dtype and dims, independent of onnxruntime so that the client, the CLI
// and the tests can build and inspect them without loading the native runtime. They cross the process boundary as
// they are, because the worker is forked with `serialization: 'advanced'` (structured clone keeps typed arrays).
import { floatToHalf, halfToFloat } from '../analysis/numeric/float16';

export type Dtype =
  | 'float32'
  | 'float16'
  | 'float64'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool';

export type TensorArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

export interface HostTensor {
  dtype: Dtype;
  dims: number[];
  /** float16 is carried as its raw bits in a Uint16Array; bool as 0/1 in a Uint8Array (onnxruntime's own conventions). */
  data: TensorArray;
}

const DTYPES: readonly Dtype[] = [
  'float32', 'float16', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool',
];

export function isDtype(s: string): s is Dtype {
  return (DTYPES as readonly string[]).includes(s);
}

export function bytesPerElement(dtype: Dtype): number {
  switch (dtype) {
    case 'float64': case 'int64': case 'uint64': return 8;
    case 'float32': case 'int32': case 'uint32': return 4;
    case 'float16': case 'int16': case 'uint16': return 2;
    case 'int8': case 'uint8': case 'bool': return 1;
  }
}

export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function allocate(dtype: Dtype, n: number): TensorArray {
  switch (dtype) {
    case 'float32': return new Float32Array(n);
    case 'float64': return new Float64Array(n);
    case 'float16': case 'uint16': return new Uint16Array(n);
    case 'int8': return new Int8Array(n);
    case 'uint8': case 'bool': return new Uint8Array(n);
    case 'int16': return new Int16Array(n);
    case 'int32': return new Int32Array(n);
    case 'uint32': return new Uint32Array(n);
    case 'int64': return new BigInt64Array(n);
    case 'uint64': return new BigUint64Array(n);
  }
}

/** Reinterprets little-endian bytes as a typed array of `dtype` (copying, so the result is aligned and owns its memory). */
export function fromBytes(dtype: Dtype, bytes: Uint8Array, dims: number[], what: string): HostTensor {
  const n = elementCount(dims);
  const expected = n * bytesPerElement(dtype);
  if (bytes.byteLength !== expected) {
    throw new Error(`${what}: ${bytes.byteLength} bytes, but ${dtype} ${JSON.stringify(dims)} needs ${expected}`);
  }
  const data = allocate(dtype, n);
  new Uint8Array(data.buffer, data.byteOffset, data.byteLength).set(bytes);
  return { dtype, dims, data };
}

export function isFloat(dtype: Dtype): boolean {
  return dtype === 'float32' || dtype === 'float16' || dtype === 'float64';
}

/** Every element as a float64 (int64 beyond 2^53 loses precision, which no measurement here depends on). */
export function toFloat64(t: HostTensor): Float64Array {
  const n = t.data.length;
  const out = new Float64Array(n);
  const d = t.data;
  if (t.dtype === 'float16') {
    for (let i = 0; i < n; i++) out[i] = halfToFloat((d as Uint16Array)[i]);
  } else if (d instanceof BigInt64Array || d instanceof BigUint64Array) {
    for (let i = 0; i < n; i++) out[i] = Number(d[i]);
  } else {
    for (let i = 0; i < n; i++) out[i] = (d as Float32Array)[i];
  }
  return out;
}

/** Builds a tensor of `dtype` from numbers (ints are truncated toward zero; bool is v !== 0). */
export function fromNumbers(dtype: Dtype, dims: number[], values: ArrayLike<number>, what: string): HostTensor {
  const n = elementCount(dims);
  if (values.length !== n) throw new Error(`${what}: ${values.length} values, but shape ${JSON.stringify(dims)} holds ${n}`);
  const data = allocate(dtype, n);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < n; i++) data[i] = BigInt(Math.trunc(values[i]));
  } else if (dtype === 'float16') {
    for (let i = 0; i < n; i++) data[i] = floatToHalf(values[i]);
  } else if (dtype === 'bool') {
    for (let i = 0; i < n; i++) data[i] = values[i] !== 0 ? 1 : 0;
  } else {
    for (let i = 0; i < n; i++) data[i] = values[i];
  }
  return { dtype, dims, data };
}

export function describeTensor(t: HostTensor): string {
  return `${t.dtype}[${t.dims.join(',')}]`;
}
