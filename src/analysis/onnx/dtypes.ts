// ONNX element types: numbers as in TensorProto.DataType, names as onnxruntime spells them.
import { onnx } from 'onnx-proto';

// onnx-proto knows the types up to BFLOAT16 (onnx 1.10); the later ones are added here by their onnx.proto numbers.
const DT = onnx.TensorProto.DataType;

interface DTypeInfo { name: string; bits: number }

const TABLE: Record<number, DTypeInfo> = {
  [DT.FLOAT]: { name: 'float32', bits: 32 },
  [DT.UINT8]: { name: 'uint8', bits: 8 },
  [DT.INT8]: { name: 'int8', bits: 8 },
  [DT.UINT16]: { name: 'uint16', bits: 16 },
  [DT.INT16]: { name: 'int16', bits: 16 },
  [DT.INT32]: { name: 'int32', bits: 32 },
  [DT.INT64]: { name: 'int64', bits: 64 },
  [DT.STRING]: { name: 'string', bits: 0 },
  [DT.BOOL]: { name: 'bool', bits: 8 },
  [DT.FLOAT16]: { name: 'float16', bits: 16 },
  [DT.DOUBLE]: { name: 'float64', bits: 64 },
  [DT.UINT32]: { name: 'uint32', bits: 32 },
  [DT.UINT64]: { name: 'uint64', bits: 64 },
  [DT.COMPLEX64]: { name: 'complex64', bits: 64 },
  [DT.COMPLEX128]: { name: 'complex128', bits: 128 },
  [DT.BFLOAT16]: { name: 'bfloat16', bits: 16 },
  17: { name: 'float8e4m3fn', bits: 8 },
  18: { name: 'float8e4m3fnuz', bits: 8 },
  19: { name: 'float8e5m2', bits: 8 },
  20: { name: 'float8e5m2fnuz', bits: 8 },
  21: { name: 'uint4', bits: 4 },
  22: { name: 'int4', bits: 4 },
  23: { name: 'float4e2m1', bits: 4 },
  24: { name: 'float8e8m0', bits: 8 },
  25: { name: 'uint2', bits: 2 },
  26: { name: 'int2', bits: 2 },
};

export const DataType = {
  FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11, BFLOAT16: 16,
} as const;

export function dtypeName(t: number): string {
  return TABLE[t]?.name ?? `type${t}`;
}

export function dtypeFromName(name: string): number | undefined {
  for (const [k, v] of Object.entries(TABLE)) if (v.name === name) return Number(k);
  return undefined;
}

/** Bytes for `count` elements (sub-byte types pack, rounded up); undefined for strings and unknown types. */
export function byteSize(t: number, count: number): number | undefined {
  const info = TABLE[t];
  if (!info || info.bits === 0) return undefined;
  return Math.ceil((count * info.bits) / 8);
}

/** Integer and boolean element types: arithmetic on them truncates (Div) where floats do not. */
export function isIntegerType(t: number): boolean {
  const name = TABLE[t]?.name;
  return name !== undefined && (name === 'bool' || /^u?int\d+$/.test(name));
}
