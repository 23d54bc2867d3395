// Building graphs in memory: synthetic models (tests, benchmarks) and rewriters use this instead of touching Node/Value
// fields, so the producer/uses links stay consistent after every edit. What adds to a graph (inputs, outputs,
// initializers, nodes) is here; the edits it inherits (redirected uses, renames, removals, the sort) are in
// graph-editor.ts.
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { byteSize } from '../onnx/dtypes';
import { Tensor, type TensorProtoLike } from '../onnx/tensor';
import type { TensorWrite, WeightStore } from '../onnx/weight-store';
import { Graph, Node, type Value } from './graph';
import { GraphEditor, type Input } from './graph-editor';
import { attr, attributeProto, valueInfo, type Attr, type Dim } from './builder-protos';
import { ELEM_TYPE, tensorBytes, tensorProto, type ElemType, type TensorData } from './tensor-data';

export { attr, type Attr, type Dim } from './builder-protos';
export { type Input, SubgraphReadError } from './graph-editor';

export interface NodeOptions {
  /** Base name; made unique if taken. Default: the op type. */
  name?: string;
  /** Operator domain ('' is the default ONNX domain). */
  domain?: string;
  attrs?: Readonly<Record<string, Attr>>;
  /** How many outputs (named `<node>_output_<i>`), or their names ('' for an omitted optional output). Default 1. */
  outputs?: number | readonly string[];
}

export interface CreateModelOptions {
  /** Default 8, what the TorchScript exporter writes at opset 17. */
  irVersion?: number;
  /** Opset per domain; default `{ '': 17 }`. */
  opsets?: Readonly<Record<string, number>>;
  producerName?: string;
  producerVersion?: string;
  graphName?: string;
}

export interface ExternalLocation {
  /** The data file; saved models refer to it relative to their own folder. */
  file: string;
  offset?: number;
  /** Bytes; defaults to (and must equal) the size the dtype and dims call for. */
  length?: number;
}

/**
 * Tensors of at least this many bytes go to the builder's weight store when it has one (see `store`): the size from
 * which a save may move a tensor to external data, so everything that could end up there is written there at once.
 */
export const STORE_MIN_BYTES = 1024;
/** Constants of at least this many bytes are shared between sites by `sharedInitializer`; smaller ones keep their own name. */
const SHARE_MIN_BYTES = 1024;

export class GraphBuilder extends GraphEditor {
  /**
   * Where new large initializers are written as they are created (a rewrite's output data file in the making). Without
   * one they are kept in memory, as small models and tests want.
   */
  store?: WeightStore;
  /**
   * Called by long computations (streamed weight edits) between pieces; the pipeline sets it to its cancellation
   * check, which throws to stop the rewrite.
   */
  checkpoint: () => void = () => {};
  private readonly shared = new Map<string, Value>();

  /** An empty model: no nodes, inputs or outputs yet. */
  static create(options: CreateModelOptions = {}): GraphBuilder {
    const irVersion = options.irVersion ?? 8;
    const opsets = new Map(Object.entries(options.opsets ?? { '': 17 }));
    const graphProto = { name: options.graphName ?? 'main_graph' };
    const proto = {
      irVersion,
      opsetImport: [...opsets].map(([domain, version]) => ({ domain, version })),
      producerName: options.producerName ?? 'attention-lens',
      producerVersion: options.producerVersion ?? '',
      graph: graphProto,
    };
    return new GraphBuilder({
      file: '',
      fileBytes: 0,
      proto,
      graph: new Graph(graphProto),
      irVersion,
      opsets,
      unknownFields: [],
      externalFiles: [],
    });
  }

  setOpset(domain: string, version: number): void {
    const d = domain === 'ai.onnx' ? '' : domain;
    this.model.opsets.set(d, version);
    this.model.proto.opsetImport = [...this.model.opsets].map(([dom, v]) => ({ domain: dom, version: v }));
  }

  // ---- graph inputs, outputs, initializers ----

  input(name: string, dtype: ElemType | number, shape: readonly Dim[]): Value {
    const v = this.freshValue(name);
    v.isGraphInput = true;
    v.info = valueInfo(name, dtype, shape);
    this.graph.inputs.push(v);
    return v;
  }

  /** Declares a value a graph output. The type is part of the model's interface, so it is required. */
  output(value: Input, dtype: ElemType | number, shape?: readonly Dim[]): Value {
    const v = this.resolve(value);
    if (!v) throw new Error('a graph output cannot be an omitted value');
    if (v.isGraphOutput) throw new Error(`'${v.name}' is already a graph output`);
    v.isGraphOutput = true;
    v.info = valueInfo(v.name, dtype, shape);
    this.graph.outputs.push(v);
    return v;
  }

  /** A weight copied from `data`: embedded, or written to the weight store when there is one and it is large. */
  initializer(name: string, dims: readonly number[], data: TensorData): Value {
    const proto = tensorProto(name, dims, data);
    const bytes = proto.rawData!;
    if (this.store && bytes.length >= STORE_MIN_BYTES) return this.computedInitializer(name, proto.dataType!, dims, (write) => write(0, bytes));
    return this.addTensor(name, new Tensor(proto));
  }

  /**
   * A weight whose bytes `fill` writes piece by piece (`write(offset, bytes)`), so that a large computed tensor never
   * has to exist in memory as a whole: with a weight store the pieces go straight to its file; without one they are
   * collected into one embedded buffer.
   */
  computedInitializer(name: string, dtype: ElemType | number, dims: readonly number[], fill: (write: TensorWrite) => void): Value {
    const dataType = typeof dtype === 'number' ? dtype : ELEM_TYPE[dtype];
    const length = byteSize(dataType, dims.reduce((a, b) => a * b, 1));
    if (length === undefined) throw new RangeError(`tensor '${name}': element type ${dtype} has no fixed size`);
    if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new RangeError(`tensor '${name}': bad dims [${dims.join(', ')}]`);
    this.checkFreshName(name);
    if (this.store && length >= STORE_MIN_BYTES) {
      const ref = this.store.add(length, fill);
      const proto: TensorProtoLike = { name, dims: [...dims], dataType, dataLocation: 1, externalData: [] };
      return this.addTensor(name, new Tensor(proto, ref));
    }
    const raw = new Uint8Array(length);
    fill((at, bytes) => {
      if (at < 0 || at + bytes.length > length) throw new RangeError(`tensor '${name}': write of ${bytes.length} bytes at ${at} is outside its ${length} bytes`);
      raw.set(bytes, at);
    });
    return this.addTensor(name, new Tensor({ name, dims: [...dims], dataType, rawData: raw }));
  }

  /**
   * A constant that sites may share: a second request for the same element type, shape and bytes returns the first
   * one's value instead of another copy (a blocked window's mask band is the same at every site of a model; 80 copies
   * of it made a 70B-shaped graph 180 MB). Small constants keep a name of their own, which keeps graphs readable.
   */
  sharedInitializer(name: string, dims: readonly number[], data: TensorData): Value {
    const bytes = tensorBytes(data);
    if (bytes.length < SHARE_MIN_BYTES) return this.initializer(this.uniqueName(name), dims, data);
    const key = `${ELEM_TYPE[data.dtype]}:${dims.join('x')}:${createHash('sha256').update(bytes).digest('hex')}`;
    const known = this.shared.get(key);
    // A rule may have removed it since (the site it was made for was rewritten again): then make it anew.
    if (known && this.graph.values.get(known.name) === known && known.initializer) return known;
    const v = this.initializer(this.uniqueName(name), dims, data);
    this.shared.set(key, v);
    return v;
  }

  private addTensor(name: string, t: Tensor): Value {
    const v = this.freshValue(name);
    v.initializer = t;
    this.graph.initializers.set(name, t);
    return v;
  }

  /**
   * A weight whose bytes live in a data file, at `offset` for `length` bytes. Nothing is read or checked on disk here:
   * the file may not exist yet (a generator writes it afterwards); loading the saved model validates the reference.
   */
  externalInitializer(name: string, dtype: ElemType | number, dims: readonly number[], where: ExternalLocation): Value {
    const dataType = typeof dtype === 'number' ? dtype : ELEM_TYPE[dtype];
    const count = dims.reduce((a, b) => a * b, 1);
    const size = byteSize(dataType, count);
    if (size === undefined) throw new RangeError(`external tensor '${name}': element type ${dtype} has no fixed size`);
    const offset = where.offset ?? 0;
    const length = where.length ?? size;
    if (length !== size) throw new RangeError(`external tensor '${name}': length ${length} but [${dims.join(', ')}] of ${dtype} takes ${size} bytes`);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`external tensor '${name}': bad offset ${offset}`);
    const file = path.resolve(where.file);
    const location = path.basename(file);
    const proto: TensorProtoLike = {
      name,
      dims: [...dims],
      dataType,
      dataLocation: 1,
      externalData: [
        { key: 'location', value: location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(length) },
      ],
    };
    const v = this.addTensor(name, new Tensor(proto, { location, file, offset, length }));
    // Listed so that saveModel refuses to overwrite the data file the model reads from.
    if (!this.model.externalFiles.includes(file)) this.model.externalFiles.push(file);
    return v;
  }

  // ---- nodes ----

  /** Adds a node (at the end of the node list; see `sort`). */
  node(opType: string, inputs: readonly Input[], options: NodeOptions = {}): Node {
    const name = this.uniqueNodeName(options.name ?? opType);
    const inputValues = inputs.map((i) => this.resolve(i));
    for (const v of inputValues) {
      if (v && !v.producer && !v.initializer && !v.isGraphInput) {
        throw new Error(`node '${name}' (${opType}) reads '${v.name}', which nothing produces yet`);
      }
    }
    const attribute = Object.entries(options.attrs ?? {}).map(([k, a]) => attributeProto(k, a));
    const outputSpec = options.outputs ?? 1;
    const outputNames = typeof outputSpec === 'number'
      ? Array.from({ length: outputSpec }, (_, i) => this.uniqueName(`${name}_output_${i}`))
      : outputSpec;
    // Check every name before creating anything, so a refused node leaves the graph untouched.
    const seen = new Set<string>();
    for (const outName of outputNames) {
      if (outName === '') continue;
      if (this.graph.values.has(outName) || seen.has(outName)) throw new Error(`node '${name}': a value named '${outName}' already exists`);
      seen.add(outName);
    }
    const domain = options.domain === 'ai.onnx' ? '' : (options.domain ?? '');
    const node = new Node(name, opType, domain, { name, opType, domain, attribute });
    outputNames.forEach((outName, i) => {
      if (outName === '') {
        node.outputs.push(this.graph.detachedValue());
        return;
      }
      const v = this.freshValue(outName);
      v.producer = node;
      v.producerIndex = i;
      node.outputs.push(v);
    });
    inputValues.forEach((v, index) => {
      node.inputs.push(v);
      v?.uses.push({ node, index });
    });
    this.graph.nodes.push(node);
    this.nodeNames.add(name);
    this.sorted = false;
    return node;
  }

  /** Adds a node with one output and returns that output. */
  op(opType: string, inputs: readonly Input[], options: Omit<NodeOptions, 'outputs'> & { output?: string } = {}): Value {
    const { output, ...rest } = options;
    return this.node(opType, inputs, { ...rest, outputs: output === undefined ? 1 : [this.uniqueName(output)] }).outputs[0];
  }

  /** A Constant node holding `data`, the way exporters write small constants. */
  constant(dims: readonly number[], data: TensorData, options: { name?: string } = {}): Value {
    return this.op('Constant', [], { name: options.name ?? 'Constant', attrs: { value: attr.tensor(dims, data) } });
  }

  /** Sets (or replaces) an attribute. Constant values are immutable: add a new Constant instead. */
  setAttribute(node: Node, name: string, value: Attr): void {
    if (node.opType === 'Constant' && node.domain === '') throw new Error(`Constant '${node.name}': add a new Constant instead of changing one`);
    node.attributes.set(name, attributeProto(name, value));
  }
}
