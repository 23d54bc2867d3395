// Loading a model file: decode, validate, resolve external data (lazily), build the graph.
// It lives with the IR, not in onnx/, because it builds the graph: onnx/ is the bytes-level I/O the IR stands on and
// imports nothing from it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelError } from '../onnx/errors';
import { resolveExternalRef, type ExternalRef } from '../onnx/external-data';
import { toNum } from '../onnx/long';
import { MAX_IR_VERSION, MIN_IR_VERSION, ModelProtoType } from '../onnx/schema';
import { Tensor, type TensorProtoLike } from '../onnx/tensor';
import { findUnknownFields, MAX_DEPTH, NestingTooDeep, type UnknownField } from '../onnx/unknown-fields';
import { checkNestedBodies } from '../onnx/nested-bodies';
import { checkAttributes, checkNodeArity, checkOpsets, checkTensorData } from '../onnx/validate';
import { graphFromProto } from './from-proto';
import type { Graph } from './graph';

export interface ModelProtoLike {
  irVersion?: unknown;
  opsetImport?: { domain?: string | null; version?: unknown }[] | null;
  producerName?: string | null;
  producerVersion?: string | null;
  graph?: Record<string, unknown> | null;
  functions?: unknown[] | null;
  [k: string]: unknown;
}

export interface Model {
  /** Absolute path of the file it was loaded from ('' for a model built in memory). */
  file: string;
  fileBytes: number;
  /** The decoded ModelProto; its `graph` is rebuilt from `graph` when saving. */
  proto: ModelProtoLike;
  graph: Graph;
  irVersion: number;
  /** Opset version per domain ('' is the default ONNX domain). */
  opsets: Map<string, number>;
  /** Fields in the file that this build's schema does not know: saving refuses while any exist. */
  unknownFields: UnknownField[];
  /** External data files referenced (absolute paths). */
  externalFiles: string[];
}

export interface LoadOptions {
  /** Skip the unknown-field walk (only for files this process wrote itself). */
  trusted?: boolean;
}

export function loadModel(file: string, options: LoadOptions = {}): Model {
  const abs = path.resolve(file);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new ModelError('not-found', file, 'file not found');
  }
  if (st.isDirectory()) throw new ModelError('not-onnx', file, 'is a directory, not an .onnx file');
  if (st.size === 0) throw new ModelError('empty', file, 'file is empty (0 bytes)');
  // protobuf caps a message at 2 GiB; larger weights must be external data.
  if (st.size > 2 ** 31 - 1) throw new ModelError('too-large', file, `file is ${st.size} bytes; an ONNX protobuf holds at most 2 GiB (larger models keep weights in external data)`);
  const bytes = fs.readFileSync(abs);
  return decodeModel(bytes, abs, options);
}

export function decodeModel(bytes: Uint8Array, abs: string, options: LoadOptions = {}): Model {
  let unknownFields: UnknownField[] = [];
  if (!options.trusted) {
    // Walked before decoding: besides unknown fields it finds nesting too deep for protobufjs's recursive decoder.
    try {
      unknownFields = findUnknownFields(bytes, ModelProtoType);
    } catch (e) {
      if (e instanceof NestingTooDeep) {
        throw new ModelError('too-deep', abs, `messages are nested more than ${MAX_DEPTH} levels deep (subgraphs inside subgraphs); protobuf readers, onnxruntime's included, refuse such files`);
      }
      throw notProtobuf(abs, (e as Error).message, bytes.length);
    }
  }
  let proto: ModelProtoLike;
  try {
    // A plain Uint8Array view (not a Buffer) makes protobufjs slice with subarray (no copies) and avoids its use of the
    // deprecated Buffer constructor for empty fields.
    const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    proto = ModelProtoType.decode(view) as unknown as ModelProtoLike;
  } catch (e) {
    throw notProtobuf(abs, (e as Error).message, bytes.length);
  }
  if (!proto.graph) {
    throw new ModelError('not-onnx', abs, 'not an ONNX model: it has no graph' + (unknownFields.length ? ' (it is not protobuf of the ONNX schema)' : ''));
  }
  const irVersion = toNum(proto.irVersion as never);
  if (!(irVersion >= MIN_IR_VERSION && irVersion <= MAX_IR_VERSION)) {
    throw new ModelError('ir-version', abs, `unsupported IR version ${irVersion} (supported: ${MIN_IR_VERSION} to ${MAX_IR_VERSION})`);
  }
  const opsets = new Map<string, number>();
  for (const o of proto.opsetImport ?? []) opsets.set(o.domain === 'ai.onnx' ? '' : (o.domain ?? ''), toNum(o.version as never));

  const sizes = new Map<string, number>();
  const externalFiles = new Set<string>();
  const makeTensor = (t: TensorProtoLike): Tensor => {
    const bytes = checkTensorData(t, abs);
    let ref: ExternalRef | undefined;
    if (t.dataLocation === 1) {
      if (!abs) throw new ModelError('external-missing', '<memory>', `tensor '${t.name}' uses external data but the model has no folder`);
      ref = resolveExternalRef(abs, t.name ?? '', t.externalData ?? [], sizes, bytes);
      externalFiles.add(ref.file);
    }
    return new Tensor(t, ref);
  };
  const graph = graphFromProto(proto.graph, abs, makeTensor);
  checkOpsets(opsets, graph.nodes, abs);
  checkNodeArity(graph.nodes, abs);
  checkAttributes(graph.nodes, abs);
  // Bodies of If/Loop/Scan nodes and model-local functions: the same checks, with the names around them in scope.
  const main = (proto.graph.node ?? []) as Parameters<typeof checkNestedBodies>[0];
  checkNestedBodies(main, (proto.functions ?? []) as Parameters<typeof checkNestedBodies>[1], new Set(graph.values.keys()), new Set(opsets.keys()), abs);
  // Tensors outside the main graph's initializers (Constant attributes, subgraph initializers, functions) are read by
  // onnxruntime too (and Constant values by the analysis): their data and external references pass the same checks.
  forEachNestedTensor(proto, (t) => {
    const bytes = checkTensorData(t, abs);
    if (t.dataLocation !== 1) return;
    const ref = resolveExternalRef(abs, t.name ?? '', t.externalData ?? [], sizes, bytes);
    externalFiles.add(ref.file);
  });
  return {
    file: abs,
    fileBytes: bytes.length,
    proto,
    graph,
    irVersion,
    opsets,
    unknownFields,
    externalFiles: [...externalFiles],
  };
}

/**
 * A file protobuf cannot read. A truncated file is said in words a person can act on; protobufjs's own wording
 * ("index out of range: 4 + 7 > 10") names its reader's offsets, not the file's problem.
 */
function notProtobuf(abs: string, msg: string, size: number): ModelError {
  if (/index out of range|premature|EOF|runs past the end/i.test(msg)) {
    return new ModelError('truncated', abs, `the file ends in the middle of the model after ${size} bytes: it is truncated (an interrupted download or copy?) or not an ONNX model`);
  }
  return new ModelError('not-onnx', abs, `not an ONNX model: ${msg}`);
}

interface NestedGraph {
  node?: { attribute?: NestedAttr[] | null }[] | null;
  initializer?: TensorProtoLike[] | null;
}
interface NestedAttr {
  t?: TensorProtoLike | null;
  tensors?: TensorProtoLike[] | null;
  g?: NestedGraph | null;
  graphs?: NestedGraph[] | null;
}

/** Every TensorProto in node attributes (recursively through subgraphs), subgraph initializers and functions. */
function forEachNestedTensor(proto: ModelProtoLike, visit: (t: TensorProtoLike) => void): void {
  const inNodes = (nodes: NestedGraph['node']) => {
    for (const n of nodes ?? []) {
      for (const a of n.attribute ?? []) {
        if (a.t) visit(a.t);
        for (const t of a.tensors ?? []) visit(t);
        for (const g of [a.g, ...(a.graphs ?? [])]) {
          if (!g) continue;
          for (const t of g.initializer ?? []) visit(t);
          inNodes(g.node);
        }
      }
    }
  };
  inNodes((proto.graph as NestedGraph).node);
  for (const f of (proto.functions ?? []) as NestedGraph[]) inNodes(f.node);
}
