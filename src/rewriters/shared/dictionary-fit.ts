// The dictionary fit (dictionary.ts) computed in two streaming passes over the L matrices of one kind, so that a 7B
// model's 32 layers of 4096×4096 weights (2 GB per kind in float32, twice that in float64) are never in memory at once:
// 1. the L×L Gram matrix G = M·Mᵀ of the stacked, flattened matrices, accumulated chunk by chunk;
// 2. its eigenvectors U and values σ² (svd.ts), then the atoms D(a) = σₐ·vₐ with vₐ = Σₗ U(l,a)/σₐ · M(l), again
//    chunk by chunk, each chunk handed out as soon as it is computed.
// Coefficients are c(l,a) = U(l,a). The numbers are those of svdWide on the whole matrix, up to the order in which the
// Gram sums are added. The inner loops run as WebAssembly SIMD where available (wasm-kernels.ts: several times faster
// than the JavaScript loops below, which remain for runtimes without it); the atoms come out the same either way. A pass
// reads every chunk into the same buffers (the kernels' memory), so it allocates nothing per chunk.
import { symmetricEigen } from './svd';
import { ensureMemory, wasmKernels, type WasmKernels } from './wasm-kernels';

/** One flattened matrix of float32 or float16 weights, read in pieces: `into.length` values from `offset` on. */
export interface FitSource {
  length: number;
  read(offset: number, into: Float32Array): void;
}

export interface DictionaryFit {
  rank: number;
  /** L × rank, row-major. */
  coefficients: Float64Array;
  /** For each atom, the multiplier of each matrix (L values); zero where σ is negligible. */
  weights: Float64Array[];
  sigma: Float64Array;
}

export interface FitOptions {
  /** Chunks start at multiples of this (whole rows, for sources that read rows). */
  align?: number;
  checkpoint?: () => void;
  /** Use the JavaScript loops even where WebAssembly SIMD exists (tests compare the two). */
  noWasm?: boolean;
}

/** Values read at a time, over all L matrices: 8 M float32 values are 32 MB per step of a pass. */
const CHUNK_VALUES = 8 * 2 ** 20;

/** Pass 1 and the eigen-decomposition: coefficients and the atoms' multipliers. */
export function fitDictionary(sources: readonly FitSource[], rank: number, options: FitOptions = {}): DictionaryFit {
  const L = sources.length;
  const n = sources[0].length;
  if (sources.some((s) => s.length !== n)) throw new Error('the matrices of one dictionary must have the same size');
  const gram = new Float64Array(L * L);
  const chunks = new Chunks(sources, options);
  for (let at = 0; at < n; at += chunks.step) {
    options.checkpoint?.();
    const len = Math.min(chunks.step, n - at);
    const rows = chunks.read(at, len);
    if (chunks.kernels && len >= 2) addGramWasm(chunks, rows, len, gram);
    else addGram(rows, len, gram);
  }
  const { values, vectors } = symmetricEigen(gram, L);
  const sigma = Float64Array.from(values, (x) => Math.sqrt(Math.max(0, x)));
  const tiny = (sigma[0] || 0) * 1e-13;
  const coefficients = new Float64Array(L * rank);
  const weights: Float64Array[] = [];
  for (let a = 0; a < rank; a++) {
    for (let l = 0; l < L; l++) coefficients[l * rank + a] = vectors[l * L + a];
    const w = new Float64Array(L);
    if (sigma[a] > tiny) for (let l = 0; l < L; l++) w[l] = vectors[l * L + a] / sigma[a];
    weights.push(w);
  }
  return { rank, coefficients, weights, sigma };
}

/**
 * Pass 2: the atoms, chunk by chunk. `emit(a, offset, values)` receives values [offset, offset + values.length) of
 * atom a; `values` is reused afterwards, so it must be consumed (encoded, written) before `emit` returns.
 */
export function computeAtoms(
  sources: readonly FitSource[], fit: DictionaryFit, emit: (atom: number, offset: number, values: Float64Array) => void, options: FitOptions = {},
): void {
  const n = sources[0].length;
  const chunks = new Chunks(sources, options);
  for (let at = 0; at < n; at += chunks.step) {
    options.checkpoint?.();
    const len = Math.min(chunks.step, n - at);
    const rows = chunks.read(at, len);
    if (chunks.kernels && len >= 2) {
      atomsWasm(chunks, rows, len, fit, (a, values) => emit(a, at, values));
      continue;
    }
    for (let a = 0; a < fit.rank; a++) emit(a, at, atomValues(rows, 0, len, fit.weights[a], fit.sigma[a]));
  }
}

/**
 * The buffers of a pass: with the kernels, the rows lie one after another at the start of their memory (stride = the
 * chunk's length), followed by the kernels' inputs and outputs; without, one array per matrix.
 */
class Chunks {
  readonly step: number;
  readonly kernels: WasmKernels | null;
  private readonly own: Float32Array[] = [];

  constructor(private readonly sources: readonly FitSource[], options: FitOptions) {
    const align = options.align ?? 1;
    const L = sources.length;
    this.step = Math.max(align, Math.floor(CHUNK_VALUES / Math.max(1, L) / align) * align);
    this.kernels = options.noWasm ? null : wasmKernels();
    if (this.kernels) ensureMemory(this.kernels, this.layout(this.step).end);
    else for (let l = 0; l < L; l++) this.own.push(new Float32Array(Math.min(this.step, sources[0].length)));
  }

  /** Byte addresses after the rows of a chunk of `len` values: Gram block, atom weights, σ, atom outputs. */
  layout(len: number): { gram: number; w: number; sig: number; out: number; end: number } {
    const L = this.sources.length;
    const gram = Math.ceil((L * len * 4) / 16) * 16;
    const w = gram + 64;
    const sig = w + L * 64;
    const out = sig + 64;
    return { gram, w, sig, out, end: out + 4 * len * 8 };
  }

  read(at: number, len: number): Float32Array[] {
    return this.sources.map((s, l) => {
      const into = this.kernels ? new Float32Array(this.kernels.memory.buffer, l * len * 4, len) : this.own[l].subarray(0, len);
      s.read(at, into);
      return into;
    });
  }
}

/** Values [from, to) of one atom: σ · Σₗ w(l)·row_l, summed in order of l (as the SIMD kernel sums each element). */
function atomValues(rows: readonly Float32Array[], from: number, to: number, w: Float64Array, sigma: number): Float64Array {
  const vt = new Float64Array(to - from);
  rows.forEach((row, l) => {
    const c = w[l];
    for (let k = from; k < to; k++) vt[k - from] += c * row[k];
  });
  for (let k = 0; k < vt.length; k++) vt[k] *= sigma;
  return vt;
}

function addGramWasm(chunks: Chunks, rows: readonly Float32Array[], len: number, gram: Float64Array): void {
  const k = chunks.kernels!;
  const L = rows.length;
  const even = len - (len % 2);
  const out = chunks.layout(len).gram;
  const block = new Float64Array(k.memory.buffer, out, 8);
  const row = (i: number) => Math.min(i, L - 1) * len * 4;
  for (let i = 0; i < L; i += 2) {
    for (let j = Math.floor(i / 4) * 4; j < L; j += 4) {
      k.gram24(row(i), row(i + 1), row(j), row(j + 1), row(j + 2), row(j + 3), even * 4, out);
      for (let p = 0; p < 2 && i + p < L; p++) {
        for (let q = 0; q < 4 && j + q < L; q++) {
          if (j + q < i + p) continue; // the lower half comes from the mirror
          let s = block[p * 4 + q];
          if (even < len) s += rows[i + p][len - 1] * rows[j + q][len - 1];
          gram[(i + p) * L + j + q] += s;
          if (j + q !== i + p) gram[(j + q) * L + i + p] += s;
        }
      }
    }
  }
}

function atomsWasm(chunks: Chunks, rows: readonly Float32Array[], len: number, fit: DictionaryFit, emit: (atom: number, values: Float64Array) => void): void {
  const k = chunks.kernels!;
  const L = rows.length;
  const even = len - (len % 2);
  const { w, sig, out } = chunks.layout(len);
  const mem = new Float64Array(k.memory.buffer);
  for (let a0 = 0; a0 < fit.rank; a0 += 4) {
    for (let p = 0; p < 4; p++) {
      const a = a0 + p;
      for (let l = 0; l < L; l++) mem.fill(a < fit.rank ? fit.weights[a][l] : 0, (w + (l * 4 + p) * 16) / 8, (w + (l * 4 + p) * 16) / 8 + 2);
      mem.fill(a < fit.rank ? fit.sigma[a] : 0, (sig + p * 16) / 8, (sig + p * 16) / 8 + 2);
    }
    k.atoms4(0, len * 4, L, w, even * 4, out, len * 8, sig);
    for (let p = 0; p < 4 && a0 + p < fit.rank; p++) {
      const values = new Float64Array(k.memory.buffer, out + p * len * 8, len);
      if (even < len) values[len - 1] = atomValues(rows, len - 1, len, fit.weights[a0 + p], fit.sigma[a0 + p])[0];
      emit(a0 + p, values);
    }
  }
}

/**
 * gram += rows·rowsᵀ over `len` values per row. Blocks of 4×4 products share their loads (four times fewer reads
 * than dot products one by one); rows past L are left out by clamping, and the block's mirror fills the lower half.
 */
export function addGram(rows: readonly Float32Array[], len: number, gram: Float64Array): void {
  const L = rows.length;
  for (let i = 0; i < L; i += 4) {
    for (let j = i; j < L; j += 4) {
      const a0 = rows[i], a1 = rows[Math.min(i + 1, L - 1)], a2 = rows[Math.min(i + 2, L - 1)], a3 = rows[Math.min(i + 3, L - 1)];
      const b0 = rows[j], b1 = rows[Math.min(j + 1, L - 1)], b2 = rows[Math.min(j + 2, L - 1)], b3 = rows[Math.min(j + 3, L - 1)];
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      let s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
      for (let k = 0; k < len; k++) {
        const x0 = a0[k], x1 = a1[k], x2 = a2[k], x3 = a3[k];
        const y0 = b0[k], y1 = b1[k], y2 = b2[k], y3 = b3[k];
        s00 += x0 * y0; s01 += x0 * y1; s02 += x0 * y2; s03 += x0 * y3;
        s10 += x1 * y0; s11 += x1 * y1; s12 += x1 * y2; s13 += x1 * y3;
        s20 += x2 * y0; s21 += x2 * y1; s22 += x2 * y2; s23 += x2 * y3;
        s30 += x3 * y0; s31 += x3 * y1; s32 += x3 * y2; s33 += x3 * y3;
      }
      const block = [s00, s01, s02, s03, s10, s11, s12, s13, s20, s21, s22, s23, s30, s31, s32, s33];
      for (let p = 0; p < 4 && i + p < L; p++) {
        for (let q = 0; q < 4 && j + q < L; q++) {
          if (j + q < i + p) continue; // the lower half comes from the mirror
          const s = block[p * 4 + q];
          gram[(i + p) * L + j + q] += s;
          if (j + q !== i + p) gram[(j + q) * L + i + p] += s;
        }
      }
    }
  }
}
