// Building and editing graphs in memory: synthetic models (tests, benchmarks) and rewriters use this instead of touching
// Node/Value fields, so the producer/uses links stay consistent after every edit.
//
// Nodes are appended at the end of the node list; `sort()` (or `finish()`) puts them back in topological order with
// the stable sort of topo.ts, so an edited graph keeps the order of everything that did not move.
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { byteSize } from '../onnx/dtypes';
import { ModelError } from '../onnx/errors';
import type { Model } from './load';
import { Tensor, type TensorProtoLike } from '../onnx/tensor';
import type { TensorWrite, WeightStore } from '../onnx/weight-store';
import { Graph, Node, type Value } from './graph';
import { assertGraphConsistent } from './invariants';
import { attr, attributeProto, valueInfo, type Attr, type Dim } from './builder-protos';
import { ELEM_TYPE, tensorBytes, tensorProto, type ElemType, type TensorData } from './tensor-data';
import { sortTopologically } from './topo';

export { attr, type Attr, type Dim } from './builder-protos';

/** A node input: a Value of this graph, the name of one, or null for an omitted optional input. */
export type Input = Value | string | null;

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

/**
 * An edit the model does not allow, as opposed to a misuse of the builder: a value that a subgraph (an If or Loop
 * body) reads by name cannot be redirected or renamed. Valid models do this; the pipeline turns it into a RuleError.
 */
export class SubgraphReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SubgraphReadError';
  }
}

export class GraphBuilder {
  readonly graph: Graph;
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
  private readonly nodeNames = new Set<string>();
  private readonly counters = new Map<string, number>();
  private readonly shared = new Map<string, Value>();
  private sorted = true;

  /** Edits an existing model (loaded or built) in place. */
  constructor(readonly model: Model) {
    this.graph = model.graph;
    for (const n of this.graph.nodes) this.nodeNames.add(n.name);
  }

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

  // ---- names ----

  /** `base` if no value has that name yet, otherwise `base_1`, `base_2`, ... */
  uniqueName(base: string): string {
    return this.unique(base, (n) => this.graph.values.has(n));
  }

  uniqueNodeName(base: string): string {
    return this.unique(base, (n) => this.nodeNames.has(n));
  }

  private unique(base: string, taken: (name: string) => boolean): string {
    if (!taken(base)) return base;
    // Counters per base keep naming linear when thousands of nodes share one (e.g. "Constant").
    let i = this.counters.get(base) ?? 1;
    while (taken(`${base}_${i}`)) i++;
    this.counters.set(base, i + 1);
    return `${base}_${i}`;
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
    const v = this.freshValue(name);
    const t = new Tensor(proto, { location, file, offset, length });
    v.initializer = t;
    this.graph.initializers.set(name, t);
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

  // ---- edits ----

  /**
   * Points every use of `from` at `to`. Uses by `except` nodes stay, and so does the use by `to`'s own producer (a
   * node inserted after `from` that reads it would otherwise read its own output).
   * With `graphOutputs`, a graph output `from` is replaced too, and `to` takes over its name so the model's interface
   * does not change: the returned Value is then `to` under that name (the old object is dropped), otherwise `to`.
   */
  replaceAllUses(from: Value, to: Value, options: { except?: Iterable<Node>; graphOutputs?: boolean } = {}): Value {
    if (from === to) return to;
    this.checkMember(from);
    this.checkMember(to);
    const except = new Set(options.except ?? []);
    if (to.producer) except.add(to.producer);
    if (from.uses.some((u) => u.index === -1 && !except.has(u.node))) {
      throw new SubgraphReadError(`'${from.name}' is read inside a subgraph by name; its uses cannot be redirected`);
    }
    const kept = from.uses.filter((u) => except.has(u.node));
    for (const u of from.uses) {
      if (except.has(u.node)) continue;
      u.node.inputs[u.index] = to;
      to.uses.push(u);
    }
    from.uses.length = 0;
    from.uses.push(...kept);
    this.sorted = false;
    if (!options.graphOutputs || !from.isGraphOutput) return to;
    if (to.isGraphInput || to.initializer || to.isGraphOutput) {
      throw new Error(`cannot make '${to.name}' stand in for graph output '${from.name}': it is already a graph input, initializer or output`);
    }
    const name = from.name;
    const info = from.info;
    const slot = this.graph.outputs.indexOf(from);
    from.isGraphOutput = false;
    this.renameValue(from, this.uniqueName(`${name}_replaced`));
    const renamed = this.renameValue(to, name);
    renamed.isGraphOutput = true;
    renamed.info = info ? { ...info, name } : undefined;
    this.graph.outputs[slot] = renamed;
    return renamed;
  }

  /**
   * Points input `index` of one node at `value` (null omits it), leaving every other use of the old input alone. An
   * index past the end fills the gap with omitted inputs (how optional inputs such as an attention bias are added).
   */
  setInput(node: Node, index: number, value: Input): void {
    if (!this.graph.nodes.includes(node)) throw new Error(`node '${node.name}' is not in this graph`);
    if (!Number.isInteger(index) || index < 0) throw new RangeError(`node '${node.name}': bad input index ${index}`);
    const v = this.resolve(value);
    const old = node.inputs[index] ?? null;
    if (old) dropUse(old, node, index);
    while (node.inputs.length <= index) node.inputs.push(null);
    node.inputs[index] = v;
    v?.uses.push({ node, index });
    this.sorted = false;
  }

  /**
   * Gives a value a new name. Value names are fixed at construction, so this moves everything to a new Value object
   * and returns it; the old object must not be used afterwards. Refused for values read by name inside subgraphs.
   */
  renameValue(v: Value, name: string): Value {
    this.checkMember(v);
    if (name === v.name) return v;
    if (this.graph.values.has(name)) throw new Error(`cannot rename '${v.name}' to '${name}': the name is taken`);
    if (v.uses.some((u) => u.index === -1)) throw new SubgraphReadError(`'${v.name}' is read inside a subgraph by name; it cannot be renamed`);
    const fresh = this.graph.value(name);
    fresh.producer = v.producer;
    fresh.producerIndex = v.producerIndex;
    fresh.isGraphInput = v.isGraphInput;
    fresh.isGraphOutput = v.isGraphOutput;
    fresh.info = v.info ? { ...v.info, name } : undefined;
    if (v.producer) v.producer.outputs[v.producerIndex] = fresh;
    for (const u of v.uses) {
      u.node.inputs[u.index] = fresh;
      fresh.uses.push(u);
    }
    if (v.initializer) {
      // The tensor's name lives in its proto; a renamed copy keeps the data (and external reference) it had.
      const t = new Tensor({ ...v.initializer.proto, name }, v.initializer.external);
      fresh.initializer = t;
      this.graph.initializers.delete(v.name);
      this.graph.initializers.set(name, t);
    }
    replaceIn(this.graph.inputs, v, fresh);
    replaceIn(this.graph.outputs, v, fresh);
    this.graph.values.delete(v.name);
    return fresh;
  }

  /** Gives a node a name no other node has (e.g. the name of a node it replaced, once that one is removed). */
  renameNode(node: Node, name: string): void {
    if (node.name === name) return;
    if (this.nodeNames.has(name)) throw new Error(`cannot rename node '${node.name}' to '${name}': the name is taken`);
    this.nodeNames.delete(node.name);
    node.name = name;
    node.proto.name = name;
    this.nodeNames.add(name);
  }

  /** Removes a node whose outputs nothing uses (and that are not graph outputs). */
  removeNode(node: Node): void {
    this.removeNodes([node]);
  }

  /** Removes several nodes at once; uses among them do not count, so a whole dead subgraph can go in one call. */
  removeNodes(nodes: Iterable<Node>): void {
    const doomed = new Set(nodes);
    const present = new Set(this.graph.nodes);
    for (const n of doomed) {
      if (!present.has(n)) throw new Error(`node '${n.name}' is not in this graph`);
      for (const v of n.outputs) {
        if (v.isGraphOutput) throw new Error(`cannot remove node '${n.name}': its output '${v.name}' is a graph output`);
        const live = v.uses.find((u) => !doomed.has(u.node));
        if (live) throw new Error(`cannot remove node '${n.name}': its output '${v.name}' is still read by '${live.node.name}'`);
      }
    }
    for (const n of doomed) {
      n.inputs.forEach((v, index) => v && dropUse(v, n, index));
      for (const v of n.implicitInputs) dropUse(v, n, -1);
      for (const v of n.outputs) {
        if (v.name !== '' && this.graph.values.get(v.name) === v) this.graph.values.delete(v.name);
        v.producer = null;
      }
      this.nodeNames.delete(n.name);
    }
    this.graph.nodes = this.graph.nodes.filter((n) => !doomed.has(n));
  }

  /** Removes an initializer or graph input that nothing reads. */
  removeValue(v: Value): void {
    this.checkMember(v);
    if (v.producer) throw new Error(`'${v.name}' is produced by node '${v.producer.name}'; remove the node instead`);
    if (v.uses.length > 0) throw new Error(`cannot remove '${v.name}': node '${v.uses[0].node.name}' still reads it`);
    if (v.isGraphOutput) throw new Error(`cannot remove '${v.name}': it is a graph output`);
    if (v.initializer) this.graph.initializers.delete(v.name);
    if (v.isGraphInput) this.graph.inputs = this.graph.inputs.filter((i) => i !== v);
    if (v.initializer?.external) {
      const file = v.initializer.external.file;
      const stillUsed = [...this.graph.initializers.values()].some((t) => t.external?.file === file);
      if (!stillUsed) this.model.externalFiles = this.model.externalFiles.filter((f) => f !== file);
    }
    this.graph.values.delete(v.name);
  }

  /** Removes nodes whose results reach no graph output, then initializers nothing reads. Returns what went. */
  removeUnused(): { nodes: number; initializers: number } {
    const live = new Set<Node>();
    const stack = this.graph.outputs.map((v) => v.producer).filter((n): n is Node => n !== null);
    while (stack.length) {
      const n = stack.pop()!;
      if (live.has(n)) continue;
      live.add(n);
      for (const v of [...n.inputs, ...n.implicitInputs]) if (v?.producer && !live.has(v.producer)) stack.push(v.producer);
    }
    const dead = this.graph.nodes.filter((n) => !live.has(n));
    this.removeNodes(dead);
    let initializers = 0;
    for (const name of [...this.graph.initializers.keys()]) {
      const v = this.graph.values.get(name)!;
      if (v.uses.length === 0 && !v.isGraphInput && !v.isGraphOutput) {
        this.removeValue(v);
        initializers++;
      }
    }
    return { nodes: dead.length, initializers };
  }

  /** Puts the nodes back in a topological order (stable: unmoved nodes keep their relative order). */
  sort(): void {
    if (this.sorted) return;
    const order = sortTopologically(this.graph.nodes);
    if (!order.ok) {
      throw new ModelError('graph-cycle', this.model.file || '<memory>', `the edit made a cycle through nodes ${order.cycle.slice(0, 5).map((n) => `'${n.name}'`).join(', ')}`);
    }
    this.graph.nodes = order.nodes;
    this.sorted = true;
  }

  /** Sorts, checks every invariant, and returns the model, ready for saveModel. */
  finish(): Model {
    this.sort();
    assertGraphConsistent(this.graph);
    return this.model;
  }

  // ---- internals ----

  private resolve(input: Input): Value | null {
    if (input === null) return null;
    if (typeof input === 'string') {
      const v = this.graph.values.get(input);
      if (!v) throw new Error(`no value named '${input}' in the graph`);
      return v;
    }
    this.checkMember(input);
    return input;
  }

  private checkMember(v: Value): void {
    if (this.graph.values.get(v.name) !== v) throw new Error(`value '${v.name}' does not belong to this graph (was it renamed or removed?)`);
  }

  private freshValue(name: string): Value {
    this.checkFreshName(name);
    return this.graph.value(name);
  }

  private checkFreshName(name: string): void {
    if (!name) throw new Error('value names must not be empty');
    if (this.graph.values.has(name)) throw new Error(`a value named '${name}' already exists`);
  }
}

function dropUse(v: Value, node: Node, index: number): void {
  const i = v.uses.findIndex((u) => u.node === node && u.index === index);
  if (i >= 0) v.uses.splice(i, 1);
}

function replaceIn(list: Value[], from: Value, to: Value): void {
  const i = list.indexOf(from);
  if (i >= 0) list[i] = to;
}
