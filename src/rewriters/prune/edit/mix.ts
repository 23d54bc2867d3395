// Rebuilding one axis of a 2-D weight from blocks of the old one, streamed: the new tensor is computed a few megabytes
// at a time from pieces of the old one and handed to the builder piece by piece, so a head edit of a 7B or 70B model
// holds one chunk, never a whole (let alone a float64) copy of the weight. Pruning keeps blocks (a byte copy in the
// weight's own type); GQA averages them (float64 sums, rounded once to the weight's type, in the order the old
// in-memory code used, so results are the same).
import type { GraphBuilder } from '../../../analysis/ir/builder';
import type { Value } from '../../../analysis/ir/graph';
import { DataType } from '../../../analysis/onnx/dtypes';
import type { Tensor } from '../../../analysis/onnx/tensor';
import { floatToHalf, halfToFloat } from '../../../analysis/numeric/float16';
import type { HeadMix, WeightDtype } from './weights';

/** `size` consecutive entries of the new axis; entry k is Σ weight · (old entry at + k). */
export interface AxisBlock {
  size: number;
  from: readonly { at: number; weight: number }[];
}

/** A 2-D weight as its node applies it: the stored tensor, or its transpose when a Transpose node sits in between. */
export interface NodeWeight {
  tensor: Tensor;
  transposed: boolean;
  rows: number;
  cols: number;
  /**
   * Entries taken along one axis by a Gather of constant indices (a weight that layers share, pruned differently per
   * layer: shared-selections.ts); rows and cols above are the selection's, these the whole view's.
   */
  select?: { axis: 0 | 1; entries: readonly number[]; rows: number; cols: number };
}

/** Pieces of about this many bytes are read and written at a time. */
const CHUNK = 8 * 2 ** 20;

/** Blocks for new heads made of old heads of `headDim` entries starting at `start`. */
export function headBlocks(start: number, headDim: number, heads: readonly HeadMix[]): AxisBlock[] {
  return heads.map((mix) => ({ size: headDim, from: mix.map(({ head, weight }) => ({ at: start + head * headDim, weight })) }));
}

/** Entries [start, end) kept as they are. */
export function rangeBlock(start: number, end: number): AxisBlock {
  return { size: end - start, from: [{ at: start, weight: 1 }] };
}

export function blocksLength(blocks: readonly AxisBlock[]): number {
  return blocks.reduce((a, b) => a + b.size, 0);
}

/** True when the blocks reproduce an axis of `length` entries unchanged: the old tensor can stay as it is. */
export function isWholeAxis(blocks: readonly AxisBlock[], length: number): boolean {
  let pos = 0;
  for (const b of merge(blocks)) {
    if (!isCopy(b) || b.from[0].at !== pos) return false;
    pos += b.size;
  }
  return pos === length;
}

/**
 * A new initializer: `w` (in its node's layout) with `axis` rebuilt from `blocks`, written in the node's layout and
 * the weight's own element type.
 */
export function mixWeight(builder: GraphBuilder, name: string, w: NodeWeight, axis: 0 | 1, blocks: readonly AxisBlock[], dtype: WeightDtype): Value {
  const parts = merge(blocks);
  const length = blocksLength(parts);
  const along = axis === 0 ? w.rows : w.cols;
  for (const b of parts) {
    for (const f of b.from) if (f.at < 0 || f.at + b.size > along) throw new RangeError(`entries ${f.at}..${f.at + b.size} lie outside the weight's ${along}`);
  }
  const es = dtype === 'float16' ? 2 : 4;
  const copyOnly = parts.every(isCopy);
  const read = rowReader(w, es);
  const dims = axis === 0 ? [length, w.cols] : [w.rows, length];
  const step = Math.max(1, Math.floor(CHUNK / (w.cols * es)));
  // One source and one result buffer for the whole tensor (see readExternalInto on why not one per piece).
  const src = new Uint8Array(Math.min(step, axis === 0 ? length : w.rows) * w.cols * es);
  const dst = axis === 1 ? new Uint8Array(Math.min(step, w.rows) * length * es) : new Uint8Array(0);
  const sums = copyOnly ? new Float64Array(0) : new Float64Array(Math.min(step, axis === 0 ? length : w.rows) * (axis === 0 ? w.cols : length));
  const encodeSums = encoder(dtype);
  return builder.computedInitializer(name, dtype === 'float16' ? DataType.FLOAT16 : DataType.FLOAT, dims, (write) => {
    if (axis === 1) {
      // Every new row comes from the same old row: stream rows.
      for (let r0 = 0; r0 < w.rows; r0 += step) {
        builder.checkpoint();
        const n = Math.min(step, w.rows - r0);
        const rows = read(r0, n, src);
        const out = dst.subarray(0, n * length * es);
        if (copyOnly) {
          for (let i = 0; i < n; i++) {
            let pos = 0;
            for (const b of parts) {
              const from = (i * w.cols + b.from[0].at) * es;
              out.set(rows.subarray(from, from + b.size * es), (i * length + pos) * es);
              pos += b.size;
            }
          }
        } else {
          const values = decodeF32(rows, dtype);
          const mixed = sums.subarray(0, n * length);
          mixed.fill(0);
          for (let i = 0; i < n; i++) {
            let pos = 0;
            for (const b of parts) {
              // Each entry gets its terms in the order of b.from, as a scalar sum would add them.
              const to = i * length + pos;
              for (const f of b.from) {
                const from = i * w.cols + f.at;
                const weight = f.weight;
                for (let k = 0; k < b.size; k++) mixed[to + k] += weight * values[from + k];
              }
              pos += b.size;
            }
          }
          out.set(encodeSums(mixed));
        }
        write(r0 * length * es, out);
      }
      return;
    }
    // Axis 0: new rows are sums of old rows; stream each block's rows.
    let row = 0;
    for (const b of parts) {
      for (let k0 = 0; k0 < b.size; k0 += step) {
        builder.checkpoint();
        const n = Math.min(step, b.size - k0);
        if (isCopy(b)) {
          write((row + k0) * w.cols * es, read(b.from[0].at + k0, n, src));
          continue;
        }
        const acc = sums.subarray(0, n * w.cols).fill(0);
        for (const f of b.from) {
          const values = decodeF32(read(f.at + k0, n, src), dtype);
          for (let j = 0; j < acc.length; j++) acc[j] += f.weight * values[j];
        }
        write((row + k0) * w.cols * es, encodeSums(acc));
      }
      row += b.size;
    }
  });
}

/**
 * Raw little-endian bytes of rows [r0, r0 + n) of the weight in its node's layout, read into `into` (which must hold
 * them) and returned as the part of it they fill.
 */
export function rowReader(w: NodeWeight, es: number): (r0: number, n: number, into: Uint8Array) => Uint8Array {
  if (w.select) return selectionReader(w, w.select, es);
  const rowBytes = w.cols * es;
  if (!w.transposed) {
    return (r0, n, into) => {
      const piece = into.subarray(0, n * rowBytes);
      w.tensor.readInto(r0 * rowBytes, piece);
      return piece;
    };
  }
  // Stored [cols, rows]: a node row is a stored column, scattered over the whole tensor. Such weights (a Transpose
  // in front of a MatMul) are rare; they are transposed once in memory, element by element in their own type.
  let whole: Uint8Array | undefined;
  return (r0, n) => {
    if (!whole) {
      const stored = w.tensor.readRange(0, w.rows * w.cols * es);
      whole = new Uint8Array(stored.length);
      for (let r = 0; r < w.cols; r++) {
        for (let c = 0; c < w.rows; c++) whole.set(stored.subarray((r * w.rows + c) * es, (r * w.rows + c + 1) * es), (c * w.cols + r) * es);
      }
    }
    return whole.subarray(r0 * rowBytes, (r0 + n) * rowBytes);
  };
}

/** Rows of a Gather'd view, read through the whole view's reader: row by row, or whole rows cut to the kept columns. */
function selectionReader(w: NodeWeight, sel: NonNullable<NodeWeight['select']>, es: number): (r0: number, n: number, into: Uint8Array) => Uint8Array {
  const base = rowReader({ tensor: w.tensor, transposed: w.transposed, rows: sel.rows, cols: sel.cols }, es);
  let scratch = new Uint8Array(0);
  const grow = (bytes: number) => (scratch.length >= bytes ? scratch : (scratch = new Uint8Array(bytes)));
  if (sel.axis === 0) {
    return (r0, n, into) => {
      const rowBytes = w.cols * es;
      for (let i = 0; i < n; i++) into.set(base(sel.entries[r0 + i], 1, grow(rowBytes)), i * rowBytes);
      return into.subarray(0, n * rowBytes);
    };
  }
  return (r0, n, into) => {
    const rows = base(r0, n, grow(n * sel.cols * es));
    for (let i = 0; i < n; i++) {
      sel.entries.forEach((e, j) => into.set(rows.subarray((i * sel.cols + e) * es, (i * sel.cols + e + 1) * es), (i * w.cols + j) * es));
    }
    return into.subarray(0, n * w.cols * es);
  };
}

/** The values as float32 (exact for both weight types): a view where the bytes are aligned, else a copy. */
export function decodeF32(bytes: Uint8Array, dtype: WeightDtype): Float32Array {
  if (dtype === 'float16') {
    const table = halfTable();
    const halves = bytes.byteOffset % 2 === 0 ? new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2) : new Uint16Array(bytes.slice().buffer);
    const out = new Float32Array(halves.length);
    for (let i = 0; i < halves.length; i++) out[i] = table[halves[i]];
    return out;
  }
  // Reads come in fresh buffers, so this is nearly always a view: no copy, several times faster than a DataView.
  return bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4) : new Float32Array(bytes.slice().buffer);
}

let halves: Float32Array | undefined;

/** Every float16 bit pattern as float32 (256 KB), so decoding a half is one lookup. */
function halfTable(): Float32Array {
  if (!halves) {
    halves = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halves[h] = halfToFloat(h);
  }
  return halves;
}

/**
 * An encoder that reuses one buffer (grown when needed): the bytes it returns are valid until its next call, which
 * is all a streaming writer needs and spares the garbage collector a fresh buffer per piece.
 */
export function encoder(dtype: WeightDtype): (values: Float64Array) => Uint8Array {
  let buffer = new ArrayBuffer(0);
  return (values) => {
    const bytes = values.length * (dtype === 'float16' ? 2 : 4);
    if (buffer.byteLength < bytes) buffer = new ArrayBuffer(bytes);
    if (dtype === 'float16') {
      const out = new Uint16Array(buffer, 0, values.length);
      for (let i = 0; i < values.length; i++) out[i] = floatToHalf(values[i]);
    } else {
      new Float32Array(buffer, 0, values.length).set(values);
    }
    return new Uint8Array(buffer, 0, bytes);
  };
}

function isCopy(b: AxisBlock): boolean {
  return b.from.length === 1 && b.from[0].weight === 1;
}

/** Joins neighbouring copies of neighbouring old entries into one block (fewer, larger copies). */
function merge(blocks: readonly AxisBlock[]): AxisBlock[] {
  const out: AxisBlock[] = [];
  for (const b of blocks) {
    if (b.size === 0) continue;
    const last = out[out.length - 1];
    if (last && isCopy(last) && isCopy(b) && last.from[0].at + last.size === b.from[0].at) {
      out[out.length - 1] = { size: last.size + b.size, from: last.from };
    } else {
      out.push(b);
    }
  }
  return out;
}
