// Saving a model: atomically (temporary files, then renames), never over the model it came from or its external data,
// refusing when the file held fields this schema does not know (they would be lost).
//
// Weights are streamed, never gathered: every tensor goes to one of three places, decided before anything is written.
// - embedded in the .onnx (small models; protobuf caps the file at 2 GiB);
// - referenced where it already is, in a data file inside the output's folder (a rewrite of a 7B model points at the
//   original's data file for every weight it did not change, and never writes to that file);
// - written to the output's own data file: tensors the rewrite computed (already there when the rewrite wrote them to
//   its weight store, which becomes the data file by a rename), embedded tensors moved out, and tensors of data files
//   the output cannot reference (another folder: ONNX locations are relative and may not leave the model's folder),
//   copied in chunks. Peak memory is one chunk, not the model.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { WorkControl } from '../onnx/progress';
import { ModelError } from '../onnx/errors';
import { isInside } from '../onnx/external-data';
import type { Model } from './load';
import { ModelProtoType } from '../onnx/schema';
import type { Tensor, TensorProtoLike } from '../onnx/tensor';
import { WeightStore, writeAll } from '../onnx/weight-store';
import type { NodeProtoLike } from './graph';
import { embedNestedExternal } from './nested-external';
import { graphToProto, nodeToProto } from './to-proto';

export type ExternalDataMode = 'auto' | 'embed' | 'external';

export interface SaveOptions extends WorkControl {
  /**
   * - `auto` (default): tensors that are external stay external; the others are embedded, unless the input keeps its
   *   weights in external data or embedding would pass `embedLimit`: then those of at least `threshold` bytes go to
   *   the data file too.
   * - `embed`: every tensor inside the .onnx (refused above 2 GiB).
   * - `external`: every tensor of at least `threshold` bytes outside the .onnx.
   */
  externalData?: ExternalDataMode;
  /** File name (no folders) of the data file written next to the output; default `<output name>.data`. */
  dataFile?: string;
  /** The smallest tensor moved to the data file, in bytes (default 1024). */
  threshold?: number;
  /** `auto` chooses external data above this many embedded bytes (default 512 MiB, well below protobuf's 2 GiB). */
  embedLimit?: number;
  /**
   * Copy tensors of other data files into the output's data file (a self-contained output) instead of referencing
   * them where they are. Data files outside the output's folder are always copied.
   */
  copyExternal?: boolean;
  /** Where the rewrite wrote the tensors it computed; the save turns it into the data file when it can. */
  store?: WeightStore;
}

export interface WeightPlacement {
  /** What `auto` decided, and why (the other modes say what they were asked). */
  decision: string;
  embedded: { tensors: number; bytes: number };
  /** Tensors written to the output's data file (computed by the rewrite, or embedded ones moved out). */
  written: { tensors: number; bytes: number };
  /** Tensors copied from another data file into the output's data file. */
  copied: { tensors: number; bytes: number };
  /** Data files the output reads in place, relative to the output's folder. */
  referenced: { location: string; tensors: number; bytes: number }[];
}

export interface SaveResult {
  file: string;
  bytes: number;
  dataFile?: string;
  dataBytes?: number;
  weights: WeightPlacement;
}

const PROTO_LIMIT = 2 ** 31 - 1;
export const DEFAULT_EMBED_LIMIT = 512 * 2 ** 20;
/** Tensors are copied in pieces of at most this many bytes. */
const CHUNK = 16 * 2 ** 20;

type Place = 'embed' | 'reference' | 'data';

export function saveModel(model: Model, outFile: string, options: SaveOptions = {}): SaveResult {
  const out = path.resolve(outFile);
  const { outDir, dataName, dataPath, protectedFiles } = checkTarget(model, out, options.dataFile);
  const mode = options.externalData ?? 'auto';
  const threshold = options.threshold ?? 1024;
  const store = options.store;
  const realOutDir = real(outDir);
  const insideOut = new Map<string, boolean>();
  // Decided per data file, not from the model's folder: models built in memory have no folder, and their external
  // weights (a 7B benchmark's sparse file) must be referenced, not copied.
  const referencable = (file: string): boolean => {
    let inside = insideOut.get(file);
    if (inside === undefined) insideOut.set(file, (inside = isInside(realOutDir, real(file))));
    return inside;
  };
  const fromStore = (t: Tensor) => store?.owns(t.external) ?? false;
  const foreign = (t: Tensor) => t.isExternal && !fromStore(t);

  // 1. Where every tensor goes, before anything is written.
  const tensors = [...model.graph.initializers.values()];
  const place = new Map<Tensor, Place>();
  let decision: string;
  let movable = 0;
  for (const t of tensors) if (!foreign(t)) movable += t.byteLength;
  let moveOut: boolean;
  if (mode === 'embed') {
    decision = 'embed: every weight inside the .onnx';
    moveOut = false;
  } else if (mode === 'external') {
    decision = `external: every weight of at least ${threshold} bytes in external data`;
    moveOut = true;
  } else if (tensors.some(foreign)) {
    decision = 'auto: the input keeps its weights in external data, so new and changed weights go to external data too';
    moveOut = true;
  } else if (movable > (options.embedLimit ?? DEFAULT_EMBED_LIMIT)) {
    decision = `auto: ${movable} bytes of weights would pass the ${options.embedLimit ?? DEFAULT_EMBED_LIMIT}-byte limit for embedding, so they go to external data`;
    moveOut = true;
  } else {
    decision = `auto: ${movable} bytes of weights are embedded in the .onnx`;
    moveOut = false;
  }
  for (const t of tensors) {
    if (mode === 'embed') place.set(t, 'embed');
    // A temporary store file that is not this save's own (a caller kept it) is about to be deleted: copy from it.
    else if (foreign(t)) place.set(t, !options.copyExternal && !t.external!.temporary && referencable(t.external!.file) ? 'reference' : 'data');
    else place.set(t, moveOut && t.byteLength >= threshold ? 'data' : 'embed');
  }
  let embeddedBytes = 0;
  for (const t of tensors) if (place.get(t) === 'embed') embeddedBytes += t.byteLength;
  if (embeddedBytes > PROTO_LIMIT) {
    throw new ModelError('too-large', out, `embedding ${embeddedBytes} bytes of weights exceeds protobuf's 2 GiB limit; save with external data`);
  }
  const toData = tensors.filter((t) => place.get(t) === 'data');
  if (toData.length > 0 && protectedFiles.has(real(dataPath))) {
    throw new ModelError('write-refused', out, `refusing to overwrite the input's external data file '${dataName}'`);
  }

  // Read before anything is written: a nested reference that cannot be read fails the save with no output left behind.
  const nested = model.file ? nestedNodes(model) : undefined;

  // 2. The data file. The rewrite's store becomes it when every tensor in the store is still wanted there (nothing to
  // copy then); otherwise the wanted tensors are copied out of it into a fresh file, leaving the dead ones behind.
  const placement: WeightPlacement = {
    decision,
    embedded: { tensors: 0, bytes: 0 },
    written: { tensors: 0, bytes: 0 },
    copied: { tensors: 0, bytes: 0 },
    referenced: [],
  };
  const located = new Map<Tensor, { offset: number; length: number }>();
  let dataBytes = 0;
  if (toData.length > 0) {
    const wanted = new Set(toData.filter(fromStore).map((t) => t.external!));
    const adopt = store !== undefined && store.bytes > 0 && store.tensors.every((r) => wanted.has(r));
    const target = adopt ? store : new WeightStore(outDir, dataName);
    try {
      const total = toData.reduce((a, t) => a + (adopt && fromStore(t) ? 0 : t.byteLength), 0);
      let done = 0;
      let buffer: Uint8Array | undefined;
      for (const t of toData) {
        options.checkpoint?.();
        const count = foreign(t) ? placement.copied : placement.written;
        count.tensors++;
        count.bytes += t.byteLength;
        if (adopt && fromStore(t)) {
          located.set(t, { offset: t.external!.offset, length: t.external!.length });
          continue;
        }
        const ref = target.add(t.byteLength, (write) => {
          for (let at = 0; at < t.byteLength; at += CHUNK) {
            options.checkpoint?.();
            const n = Math.min(CHUNK, t.byteLength - at);
            buffer ??= new Uint8Array(Math.min(CHUNK, total));
            const piece = buffer.subarray(0, n);
            t.readInto(at, piece);
            write(at, piece);
            done += n;
            options.onProgress?.({ phase: 'save', done, total, message: `writing ${path.basename(dataPath)}` });
          }
        });
        located.set(t, { offset: ref.offset, length: ref.length });
      }
      options.checkpoint?.();
      dataBytes = target.bytes;
      target.commit(dataPath);
    } catch (e) {
      if (target !== store) target.dispose();
      throw e;
    }
  }

  // 3. The .onnx, written last, so a reader never finds a model whose data file is not complete yet.
  const referenced = new Map<string, { location: string; tensors: number; bytes: number }>();
  const tensorProto = (t: Tensor): TensorProtoLike => {
    const p = place.get(t);
    if (p === 'data') return externalProto(t, dataName, located.get(t)!.offset, located.get(t)!.length);
    if (p === 'reference') {
      const location = path.relative(realOutDir, real(t.external!.file)).split(path.sep).join('/');
      const entry = referenced.get(location) ?? { location, tensors: 0, bytes: 0 };
      entry.tensors++;
      entry.bytes += t.external!.length;
      referenced.set(location, entry);
      return externalProto(t, location, t.external!.offset, t.external!.length);
    }
    placement.embedded.tensors++;
    placement.embedded.bytes += t.byteLength;
    return t.isExternal ? embeddedProto(t) : t.proto;
  };
  const graph = graphToProto(model.graph, tensorProto);
  const proto = { ...model.proto, graph: nested ? { ...graph, node: nested.graph } : graph, ...(nested?.functions ? { functions: nested.functions } : {}) };
  placement.referenced = [...referenced.values()];
  const outside = toData.filter((t) => foreign(t) && !t.external!.temporary && !referencable(t.external!.file));
  if (outside.length > 0 && !options.copyExternal) {
    const bytes = outside.reduce((a, t) => a + t.byteLength, 0);
    placement.decision += `; ${bytes} bytes of unchanged weights were copied because their data file is not in the output's folder (write the output next to it to reference them instead)`;
  }
  const bytes = ModelProtoType.encode(proto as never).finish();
  try {
    writeAtomically(out, (fd) => {
      writeAll(fd, bytes, 0);
      return bytes.length;
    });
  } catch (e) {
    if (toData.length > 0) fs.rmSync(dataPath, { force: true });
    throw e;
  }
  return { file: out, bytes: bytes.length, ...(toData.length ? { dataFile: dataPath, dataBytes } : {}), weights: placement };
}

/** Checks the output path before anything is computed or written (the pipeline calls it before a long rewrite). */
export function checkTarget(model: Pick<Model, 'file' | 'externalFiles' | 'unknownFields'>, out: string, dataFile?: string, writesData = false): {
  outDir: string;
  dataName: string;
  dataPath: string;
  protectedFiles: Set<string>;
} {
  if (model.unknownFields.length > 0) {
    const list = model.unknownFields.slice(0, 5).map((u) => `${u.path} field #${u.fieldNumber}`).join(', ');
    throw new ModelError('unknown-fields', model.file || out, `refusing to save: the model has fields this version does not understand and would drop (${list})`);
  }
  const outDir = path.dirname(out);
  if (!fs.existsSync(outDir) || !fs.statSync(outDir).isDirectory()) throw new ModelError('write-refused', out, 'the output folder does not exist');
  const protectedFiles = new Set([model.file, ...model.externalFiles].filter(Boolean).map(real));
  if (protectedFiles.has(real(out))) throw new ModelError('write-refused', out, 'refusing to overwrite the input model or its external data; choose another output path');
  const dataName = dataFile ?? `${path.basename(out)}.data`;
  if (dataName !== path.basename(dataName) || dataName === '.' || dataName === '..' || dataName.includes('\0')) {
    throw new ModelError('write-refused', out, `data file name '${dataName}' must be a plain file name in the output folder`);
  }
  const dataPath = path.join(outDir, dataName);
  // A data file named on purpose must not be the input's; the default name only matters once something is written.
  if ((dataFile !== undefined || writesData) && protectedFiles.has(real(dataPath))) {
    throw new ModelError('write-refused', out, `refusing to overwrite the input's external data file '${dataName}'`);
  }
  return { outDir, dataName, dataPath, protectedFiles };
}

/** The graph's nodes (as saved) and the model's functions with their nested external tensors embedded. */
function nestedNodes(model: Model): { graph: NodeProtoLike[]; functions?: unknown[] } {
  const graph = embedNestedExternal(model.graph.nodes.map(nodeToProto), model.file);
  const functions = model.proto.functions as { node?: NodeProtoLike[] }[] | null | undefined;
  if (!functions?.length) return { graph };
  return { graph, functions: functions.map((f) => ({ ...f, node: embedNestedExternal(f.node ?? [], model.file) })) };
}

function externalProto(t: Tensor, location: string, offset: number, length: number): TensorProtoLike {
  return {
    ...stripData(t.proto),
    dataLocation: 1,
    externalData: [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(length) },
    ],
  };
}

function embeddedProto(t: Tensor): TensorProtoLike {
  return { ...stripData(t.proto), dataLocation: 0, externalData: [], rawData: t.bytes() };
}

function stripData(p: TensorProtoLike): TensorProtoLike {
  return { ...p, rawData: undefined, floatData: [], int32Data: [], int64Data: [], doubleData: [], uint64Data: [], externalData: [] };
}

function real(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    // Not there yet: resolve the folder, which must exist.
    try {
      return path.join(fs.realpathSync(path.dirname(p)), path.basename(p));
    } catch {
      return path.resolve(p);
    }
  }
}

/** Writes through a temporary file in the same folder and renames it into place, so readers never see half a file. */
function writeAtomically(file: string, write: (fd: number) => number): number {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  const fd = fs.openSync(tmp, 'wx');
  try {
    const n = write(fd);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
    return n;
  } catch (e) {
    try { fs.closeSync(fd); } catch { /* already closed */ }
    try { fs.unlinkSync(tmp); } catch { /* never created */ }
    throw e;
  }
}
