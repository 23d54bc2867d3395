// Running models in onnxruntime-node from tests, directly (the product runs it in a worker process; tests only need
// outputs to compare). One thread keeps results reproducible and leaves the second core to the other test file.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';

export type Feeds = Record<string, ort.Tensor>;

export async function runModel(file: string, feeds: Feeds): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

export function int64Tensor(values: readonly number[], dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims);
}

export function float32Tensor(values: readonly number[] | Float32Array, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('float32', Float32Array.from(values), dims);
}

/** The tensor's bytes, for bit-for-bit comparison (NaN payloads and -0 included). */
export function tensorBytes(t: ort.Tensor): Uint8Array {
  const data = t.data as ArrayBufferView;
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export function floats(t: ort.Tensor): Float32Array {
  return t.data as Float32Array;
}

/** A fresh folder under the OS temp dir, and a function that removes it. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `al-${prefix}-`));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

const ORT_TYPES: Record<string, (buf: ArrayBuffer) => ort.Tensor['data']> = {
  float32: (b) => new Float32Array(b),
  int64: (b) => new BigInt64Array(b),
  int32: (b) => new Int32Array(b),
  bool: (b) => new Uint8Array(b),
  float16: (b) => new Uint16Array(b),
};

/** Feeds from a fixture manifest's inputs: raw little-endian files next to the manifest. */
export function manifestFeeds(dir: string, inputs: readonly { name: string; dtype: string; shape: number[]; file: string }[]): Feeds {
  const feeds: Feeds = {};
  for (const i of inputs) {
    const make = ORT_TYPES[i.dtype];
    if (!make) throw new Error(`no test support for input dtype ${i.dtype}`);
    // Copied into a fresh ArrayBuffer: typed-array views need an offset that is a multiple of the element size.
    const raw = new Uint8Array(fs.readFileSync(path.join(dir, i.file))).buffer;
    feeds[i.name] = new ort.Tensor(i.dtype as 'float32', make(raw) as Float32Array, i.shape);
  }
  return feeds;
}
