// A tensor of the model (initializer or Constant value). Holds the decoded TensorProto, reads its bytes only on
// demand, and converts small tensors to numbers for shape reasoning.
import { byteSize, DataType, dtypeName } from './dtypes';
import { readExternal, readExternalInto, readExternalRange, type ExternalRef } from './external-data';
import { toNum, type IntLike } from './long';
import { bf16ToFloat, halfToFloat } from '../numeric/float16';

/** The subset of TensorProto fields we touch; the rest travels untouched inside `proto`. */
export interface TensorProtoLike {
  name?: string | null;
  dims?: IntLike[] | null;
  dataType?: number | null;
  rawData?: Uint8Array | null;
  floatData?: number[] | null;
  int32Data?: number[] | null;
  int64Data?: IntLike[] | null;
  doubleData?: number[] | null;
  uint64Data?: IntLike[] | null;
  stringData?: Uint8Array[] | null;
  dataLocation?: number | null;
  externalData?: { key?: string | null; value?: string | null }[] | null;
  [k: string]: unknown;
}

export class Tensor {
  readonly dims: number[];
  readonly dataType: number;
  private cached?: Uint8Array;

  constructor(
    readonly proto: TensorProtoLike,
    readonly external?: ExternalRef,
  ) {
    this.dims = (proto.dims ?? []).map(toNum);
    this.dataType = proto.dataType ?? 0;
  }

  get name(): string {
    return proto_name(this.proto);
  }

  get dtype(): string {
    return dtypeName(this.dataType);
  }

  get size(): number {
    return this.dims.reduce((a, b) => a * b, 1);
  }

  /** Bytes the tensor occupies, computed from its shape (no read). */
  get byteLength(): number {
    return byteSize(this.dataType, this.size) ?? 0;
  }

  get isExternal(): boolean {
    return this.external !== undefined;
  }

  /**
   * Little-endian raw bytes, read from the external file on use. Only small external tensors are kept after the read
   * (shape constants the analysis asks for again and again): a 7B model's weights must not pile up in memory because
   * a save or an edit looked at each of them once.
   */
  bytes(): Uint8Array {
    if (this.cached) return this.cached;
    if (this.external) {
      const b = readExternal(this.external);
      if (b.length <= CACHE_LIMIT) this.cached = b;
      return b;
    }
    const p = this.proto;
    if (p.rawData && p.rawData.length > 0) return p.rawData;
    this.cached = typedFieldsToBytes(p, this.dataType, this.size);
    return this.cached;
  }

  /**
   * Bytes [start, start + length) of the data without keeping them: external tensors read just that range from disk.
   * Streaming saves and weight edits go through this.
   */
  readRange(start: number, length: number): Uint8Array {
    if (this.external && !this.cached) return readExternalRange(this.external, start, length);
    const b = this.bytes();
    if (start < 0 || length < 0 || start + length > b.length) {
      throw new RangeError(`tensor '${this.name}': bytes ${start}..${start + length} are outside its ${b.length} bytes`);
    }
    return b.subarray(start, start + length);
  }

  /** Fills `target` with the data's bytes from `start` on (streaming loops reuse one buffer this way). */
  readInto(start: number, target: Uint8Array): void {
    if (this.external && !this.cached) return readExternalInto(this.external, start, target);
    target.set(this.readRange(start, target.length));
  }

  /** Values as float64 numbers; intended for small tensors (constants, shapes, scales). */
  toNumbers(): number[] {
    const b = this.bytes();
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const n = this.size;
    const out = new Array<number>(n);
    switch (this.dataType) {
      case DataType.FLOAT: for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true); break;
      case DataType.DOUBLE: for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true); break;
      case DataType.INT64: for (let i = 0; i < n; i++) out[i] = clampInt64(view.getBigInt64(i * 8, true)); break;
      case 13: for (let i = 0; i < n; i++) out[i] = Number(view.getBigUint64(i * 8, true)); break;
      case DataType.INT32: for (let i = 0; i < n; i++) out[i] = view.getInt32(i * 4, true); break;
      case 12: for (let i = 0; i < n; i++) out[i] = view.getUint32(i * 4, true); break;
      case DataType.INT8: for (let i = 0; i < n; i++) out[i] = view.getInt8(i); break;
      case DataType.UINT8: case DataType.BOOL: for (let i = 0; i < n; i++) out[i] = view.getUint8(i); break;
      case 5: for (let i = 0; i < n; i++) out[i] = view.getInt16(i * 2, true); break;
      case 4: for (let i = 0; i < n; i++) out[i] = view.getUint16(i * 2, true); break;
      case DataType.FLOAT16: for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(i * 2, true)); break;
      case DataType.BFLOAT16: for (let i = 0; i < n; i++) out[i] = bf16ToFloat(view.getUint16(i * 2, true)); break;
      default: throw new Error(`cannot read values of ${this.dtype} tensor '${this.name}'`);
    }
    return out;
  }
}

/** External tensors up to this size stay in memory once read. */
const CACHE_LIMIT = 1 << 20;

function proto_name(p: TensorProtoLike): string {
  return p.name ?? '';
}

/** INT64_MAX/MIN appear as "to the end" sentinels (Slice); keep them as the largest safe integers. */
function clampInt64(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) return Number.MAX_SAFE_INTEGER;
  if (v < BigInt(Number.MIN_SAFE_INTEGER)) return Number.MIN_SAFE_INTEGER;
  return Number(v);
}

function typedFieldsToBytes(p: TensorProtoLike, t: number, n: number): Uint8Array {
  const len = byteSize(t, n);
  if (len === undefined) return new Uint8Array(0);
  const out = new Uint8Array(len);
  const view = new DataView(out.buffer);
  const ints = p.int32Data ?? [];
  switch (t) {
    case DataType.FLOAT: (p.floatData ?? []).forEach((v, i) => view.setFloat32(i * 4, v, true)); break;
    case DataType.DOUBLE: (p.doubleData ?? []).forEach((v, i) => view.setFloat64(i * 8, v, true)); break;
    case DataType.INT64: (p.int64Data ?? []).forEach((v, i) => view.setBigInt64(i * 8, BigInt(String(v)), true)); break;
    case 12: case 13: (p.uint64Data ?? []).forEach((v, i) => (t === 13 ? view.setBigUint64(i * 8, BigInt(String(v)), true) : view.setUint32(i * 4, toNum(v), true))); break;
    case DataType.INT32: ints.forEach((v, i) => view.setInt32(i * 4, v, true)); break;
    case DataType.INT8: case DataType.UINT8: case DataType.BOOL: ints.forEach((v, i) => view.setUint8(i, v & 0xff)); break;
    case 4: case 5: case DataType.FLOAT16: case DataType.BFLOAT16: ints.forEach((v, i) => view.setUint16(i * 2, v & 0xffff, true)); break;
    default: ints.forEach((v, i) => { if (i < len) view.setUint8(i, v & 0xff); });
  }
  return out;
}
