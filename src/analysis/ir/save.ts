// Saving a model: atomically (temporary file, then rename), never over the model it came from or its external data,
// refusing when the file held fields this schema does not know (they would be lost). External data is referenced in
// place when the output sits next to it, and copied into a new data file otherwise (or embedded, on request).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelError } from '../onnx/errors';
import { isInside } from '../onnx/external-data';
import type { Model } from './load';
import { ModelProtoType } from '../onnx/schema';
import type { Tensor, TensorProtoLike } from '../onnx/tensor';
import type { NodeProtoLike } from './graph';
import { embedNestedExternal } from './nested-external';
import { graphToProto, nodeToProto } from './to-proto';

export interface SaveOptions {
  /**
   * - `auto` (default): embedded tensors stay embedded; external ones stay referenced when the output is in the same
   *   folder as their file, and are copied into `dataFile` otherwise.
   * - `embed`: every tensor inside the .onnx (refused above 2 GiB).
   * - `external`: every tensor of at least `threshold` bytes goes to `dataFile`.
   */
  externalData?: 'auto' | 'embed' | 'external';
  /** File name (no folders) of the data file written next to the output; default `<output name>.data`. */
  dataFile?: string;
  /** With `external`: the smallest tensor moved out, in bytes (default 1024). */
  threshold?: number;
}

export interface SaveResult {
  file: string;
  bytes: number;
  dataFile?: string;
  dataBytes?: number;
}

const PROTO_LIMIT = 2 ** 31 - 1;
const ALIGN = 64;

export function saveModel(model: Model, outFile: string, options: SaveOptions = {}): SaveResult {
  const out = path.resolve(outFile);
  if (model.unknownFields.length > 0) {
    const list = model.unknownFields.slice(0, 5).map((u) => `${u.path} field #${u.fieldNumber}`).join(', ');
    throw new ModelError('unknown-fields', model.file || out, `refusing to save: the model has fields this version does not understand and would drop (${list})`);
  }
  const outDir = path.dirname(out);
  if (!fs.existsSync(outDir) || !fs.statSync(outDir).isDirectory()) throw new ModelError('write-refused', out, 'the output folder does not exist');
  const protected_ = new Set([model.file, ...model.externalFiles].filter(Boolean).map(real));
  if (protected_.has(real(out))) throw new ModelError('write-refused', out, 'refusing to overwrite the input model or its external data; choose another output path');

  const mode = options.externalData ?? 'auto';
  const dataName = options.dataFile ?? `${path.basename(out)}.data`;
  if (dataName !== path.basename(dataName) || dataName === '.' || dataName === '..' || dataName.includes('\0')) {
    throw new ModelError('write-refused', out, `data file name '${dataName}' must be a plain file name in the output folder`);
  }
  const dataPath = path.join(outDir, dataName);
  // A reference can stay as it is when its data file lies inside the output folder (then a relative location without
  // '..' reaches it). Decided per file, not from the model's own folder: models built in memory have no folder, and
  // their external weights (a 7B benchmark's sparse file) must be referenced, not copied.
  const realOutDir = real(outDir);
  const insideOut = new Map<string, boolean>();
  const dataInsideOut = (file: string): boolean => {
    let inside = insideOut.get(file);
    if (inside === undefined) insideOut.set(file, (inside = isInside(realOutDir, real(file))));
    return inside;
  };

  // Decide where every tensor goes before writing anything.
  const toData: Tensor[] = [];
  const threshold = options.threshold ?? 1024;
  let embeddedBytes = 0;
  const keepsReference = (t: Tensor) => mode === 'auto' && t.isExternal && dataInsideOut(t.external!.file);
  for (const t of model.graph.initializers.values()) {
    if (keepsReference(t)) continue;
    const moveOut = mode === 'external' ? t.byteLength >= threshold : mode === 'auto' && t.isExternal;
    if (moveOut) toData.push(t);
    else embeddedBytes += t.byteLength;
  }
  if (embeddedBytes > PROTO_LIMIT) {
    throw new ModelError('too-large', out, `embedding ${embeddedBytes} bytes of weights exceeds protobuf's 2 GiB limit; save with external data`);
  }
  if (toData.length > 0 && protected_.has(real(dataPath))) {
    throw new ModelError('write-refused', out, `refusing to overwrite the input's external data file '${dataName}'`);
  }

  // Read before anything is written: a nested reference that cannot be read fails the save with no output left behind.
  const nested = model.file ? nestedNodes(model) : undefined;

  const placed = new Map<Tensor, { offset: number; length: number }>();
  let dataBytes = 0;
  if (toData.length > 0) dataBytes = writeAtomically(dataPath, (fd) => {
    let pos = 0;
    for (const t of toData) {
      const bytes = t.bytes();
      pos = Math.ceil(pos / ALIGN) * ALIGN;
      writeAll(fd, bytes, pos);
      placed.set(t, { offset: pos, length: bytes.length });
      pos += bytes.length;
    }
    return pos;
  });

  const tensorProto = (t: Tensor): TensorProtoLike => {
    const where = placed.get(t);
    if (where) return externalProto(t, dataName, where.offset, where.length);
    if (keepsReference(t)) {
      const rel = path.relative(realOutDir, real(t.external!.file)).split(path.sep).join('/');
      return externalProto(t, rel, t.external!.offset, t.external!.length);
    }
    if (t.isExternal) return embeddedProto(t);
    return t.proto;
  };
  const graph = graphToProto(model.graph, tensorProto);
  const proto = { ...model.proto, graph: nested ? { ...graph, node: nested.graph } : graph, ...(nested?.functions ? { functions: nested.functions } : {}) };
  const bytes = ModelProtoType.encode(proto as never).finish();
  writeAtomically(out, (fd) => {
    writeAll(fd, bytes, 0);
    return bytes.length;
  });
  return { file: out, bytes: bytes.length, ...(toData.length ? { dataFile: dataPath, dataBytes } : {}) };
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

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, position + done);
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
