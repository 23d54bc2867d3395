// External data: tensors whose bytes live in a side file (`data_location: EXTERNAL`, with `location`, `offset`,
// `length`). References are validated when the model loads (the file exists, stays inside the model's folder, and the
// range fits), but bytes are read only when someone asks for them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelError } from './errors';

export interface ExternalRef {
  /** `location` as written in the model (relative to the model's folder). */
  location: string;
  /** Absolute path after validation. */
  file: string;
  offset: number;
  /** Byte length; when the model omits it, the rest of the file from `offset`. */
  length: number;
  /** In a weight store's temporary file (weight-store.ts): a save must copy it, never point at it. */
  temporary?: boolean;
}

interface KeyValue { key?: string | null; value?: string | null }

/** Validates one tensor's external reference against the model's folder. `sizes` caches file sizes across tensors. */
export function resolveExternalRef(
  modelFile: string,
  tensorName: string,
  entries: KeyValue[],
  sizes: Map<string, number>,
  /** The bytes the tensor's dims and element type call for, when known: the reference must give exactly that many. */
  expectedBytes?: number,
): ExternalRef {
  const kv = new Map(entries.map((e) => [e.key ?? '', e.value ?? '']));
  const location = kv.get('location');
  if (!location) throw new ModelError('not-onnx', modelFile, `tensor '${tensorName}' is marked external but has no location`);
  const baseDir = path.dirname(path.resolve(modelFile));
  const file = safeJoin(modelFile, baseDir, location, tensorName);
  let size = sizes.get(file);
  if (size === undefined) {
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      throw new ModelError('external-missing', modelFile, `external data file '${location}' for tensor '${tensorName}' does not exist (looked for ${file})`);
    }
    if (!st.isFile()) throw new ModelError('external-missing', modelFile, `external data '${location}' for tensor '${tensorName}' is not a regular file`);
    // Symlinks could point outside the folder even when the name does not: compare real paths too.
    const real = fs.realpathSync(file);
    const realBase = fs.realpathSync(baseDir);
    if (!isInside(realBase, real)) {
      throw new ModelError('external-escape', modelFile, `external data '${location}' for tensor '${tensorName}' resolves outside the model's folder`);
    }
    size = st.size;
    sizes.set(file, size);
  }
  const offset = byteCount(modelFile, tensorName, 'offset', kv.get('offset')) ?? 0;
  const given = byteCount(modelFile, tensorName, 'length', kv.get('length'));
  if (given !== undefined && expectedBytes !== undefined && given !== expectedBytes) {
    throw new ModelError('bad-tensor', modelFile, `tensor '${tensorName}' needs ${expectedBytes} bytes but its external data reference gives length ${given}`);
  }
  // Without a length the tensor's own size decides (onnxruntime does the same); the rest of the file otherwise.
  const length = given ?? expectedBytes ?? size - offset;
  if (!Number.isSafeInteger(offset + length) || length < 0 || offset + length > size) {
    throw new ModelError(
      'external-range',
      modelFile,
      `tensor '${tensorName}' reads bytes ${offset}..${offset + length} of '${location}', which has only ${size} bytes`,
    );
  }
  return { location, file, offset, length };
}

/** `offset` and `length` are decimal byte counts; anything else ('-1', '1e3', 'abc', 2^64) is refused by name. */
function byteCount(modelFile: string, tensorName: string, key: string, text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  const n = /^[0-9]{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) throw new ModelError('external-range', modelFile, `tensor '${tensorName}' has an invalid external data ${key} '${text}'`);
  return n;
}

function safeJoin(modelFile: string, baseDir: string, location: string, tensorName: string): string {
  const bad = () => new ModelError('external-escape', modelFile, `external data path '${location}' for tensor '${tensorName}' escapes the model's folder; refused`);
  if (path.isAbsolute(location) || path.win32.isAbsolute(location) || location.includes('\0')) throw bad();
  const parts = location.split(/[\\/]+/);
  if (parts.includes('..')) throw bad();
  const joined = path.resolve(baseDir, location);
  if (!isInside(baseDir, joined)) throw bad();
  return joined;
}

export function isInside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/**
 * Reads one external tensor's bytes. The reference was checked at load time, but bytes are read later (a save, a
 * constant lookup), when the file may have been moved, deleted or shortened: that is a ModelError naming the data
 * file, not a bare ENOENT.
 */
export function readExternal(ref: ExternalRef): Uint8Array {
  return readExternalRange(ref, 0, ref.length);
}

/**
 * Bytes [start, start + length) of one external tensor (relative to the tensor, not the file). Streaming saves and
 * weight edits read large tensors piece by piece through this, so no whole tensor has to be in memory.
 */
export function readExternalRange(ref: ExternalRef, start: number, length: number): Uint8Array {
  const out = Buffer.allocUnsafe(length);
  readExternalInto(ref, start, out);
  return out;
}

/**
 * Fills `target` with the tensor's bytes from `start` on. Streaming loops read into one buffer they reuse: fresh
 * megabyte buffers per piece make V8 collect garbage over and over, and each collection walks the whole graph of a
 * 7B model (that was a fifth of a dictionary fit's time).
 */
export function readExternalInto(ref: ExternalRef, start: number, target: Uint8Array): void {
  const length = target.length;
  if (start < 0 || start + length > ref.length) {
    throw new RangeError(`bytes ${start}..${start + length} are outside the tensor's ${ref.length} bytes`);
  }
  let fd: number;
  try {
    fd = fs.openSync(ref.file, 'r');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new ModelError('external-missing', ref.file, `cannot open external data file (${why}); it was moved or deleted after the model was loaded`);
  }
  try {
    let done = 0;
    while (done < length) {
      const n = fs.readSync(fd, target, done, length - done, ref.offset + start + done);
      if (n === 0) throw new ModelError('external-range', ref.file, `external data file ends before byte ${ref.offset + start + length}; it was shortened after the model was loaded`);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}
