// NumPy `.npy` files (format versions 1-3): enough to read the arrays users save with `np.save` and to write ours.
// Only little-endian or byte-order-free dtypes in C order are accepted; anything else is refused with the reason.
import { type Dtype, type HostTensor, bytesPerElement, fromBytes } from '../tensor';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const DESCR_TO_DTYPE: Record<string, Dtype> = {
  f4: 'float32', f2: 'float16', f8: 'float64',
  i1: 'int8', u1: 'uint8', i2: 'int16', u2: 'uint16', i4: 'int32', u4: 'uint32', i8: 'int64', u8: 'uint64',
  b1: 'bool',
};

export function parseNpy(bytes: Uint8Array, what: string): HostTensor {
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) throw new Error(`${what}: not a .npy file (bad magic)`);
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    headerLen = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new Error(`${what}: unsupported .npy version ${major}`);
  }
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, headerStart + headerLen));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new Error(`${what}: malformed .npy header ${JSON.stringify(header.trim())}`);
  }
  if (fortran === 'True') throw new Error(`${what}: Fortran-ordered arrays are not supported; save with np.ascontiguousarray`);
  const order = descr[0];
  if (order === '>') throw new Error(`${what}: big-endian dtype ${descr}; save as little-endian`);
  const dtype = DESCR_TO_DTYPE[descr.replace(/^[<|=]/, '')];
  if (!dtype) throw new Error(`${what}: unsupported dtype ${descr}`);
  const dims = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => Number.parseInt(s, 10));
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`${what}: bad shape (${shapeText})`);
  const dataStart = headerStart + headerLen;
  const n = dims.reduce((a, b) => a * b, 1);
  return fromBytes(dtype, bytes.subarray(dataStart, dataStart + n * bytesPerElement(dtype)), dims, what);
}

const DTYPE_TO_DESCR: Record<Dtype, string> = {
  float32: '<f4', float16: '<f2', float64: '<f8', int8: '|i1', uint8: '|u1', int16: '<i2', uint16: '<u2',
  int32: '<i4', uint32: '<u4', int64: '<i8', uint64: '<u8', bool: '|b1',
};

export function writeNpy(t: HostTensor): Uint8Array {
  const shape = t.dims.length === 1 ? `(${t.dims[0]},)` : `(${t.dims.join(', ')})`;
  let header = `{'descr': '${DTYPE_TO_DESCR[t.dtype]}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Total header (magic + version + length + text + newline) is padded to a multiple of 64, as numpy does.
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const out = new Uint8Array(10 + header.length + t.data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), 10 + header.length);
  return out;
}
