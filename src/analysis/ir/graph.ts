// The in-memory graph: every value knows the node that produces it and the nodes that use it, nodes are kept in
// topological order, initializers and Constant values are reachable from their value. Protobuf objects stay at the
// edges (load/save): fields we do not interpret ride along in `proto` untouched.
import { Tensor } from '../onnx/tensor';

export interface AttributeProtoLike {
  name?: string | null;
  type?: number | null;
  f?: number | null;
  i?: unknown;
  s?: Uint8Array | null;
  t?: unknown;
  g?: unknown;
  floats?: number[] | null;
  ints?: unknown[] | null;
  strings?: Uint8Array[] | null;
  graphs?: unknown[] | null;
  [k: string]: unknown;
}

export interface NodeProtoLike {
  name?: string | null;
  opType?: string | null;
  domain?: string | null;
  input?: string[] | null;
  output?: string[] | null;
  attribute?: AttributeProtoLike[] | null;
  [k: string]: unknown;
}

export interface ValueInfoProtoLike {
  name?: string | null;
  type?: {
    tensorType?: { elemType?: number | null; shape?: { dim?: { dimValue?: unknown; dimParam?: string | null }[] | null } | null } | null;
    [k: string]: unknown;
  } | null;
  [k: string]: unknown;
}

export interface Use {
  node: Node;
  index: number;
}

export class Value {
  producer: Node | null = null;
  /** Index of this value among its producer's outputs. */
  producerIndex = -1;
  readonly uses: Use[] = [];
  /** Set when the value is an initializer (or a graph input with a default). */
  initializer?: Tensor;
  isGraphInput = false;
  isGraphOutput = false;
  /** Declared ValueInfoProto from graph inputs/outputs/value_info (name, type, doc, metadata), kept for saving. */
  info?: ValueInfoProtoLike;

  constructor(readonly name: string) {}

  /** The tensor behind this value if it is constant: an initializer or a Constant node's `value`. */
  get constant(): Tensor | undefined {
    if (this.initializer && !this.isGraphInput) return this.initializer;
    const p = this.producer;
    if (p && p.opType === 'Constant' && p.domain === '') return p.constantTensor();
    return undefined;
  }
}

export class Node {
  inputs: (Value | null)[] = [];
  outputs: Value[] = [];
  /** Names read from enclosing scopes by subgraphs (If/Loop/Scan bodies), so ordering and liveness account for them. */
  implicitInputs: Value[] = [];
  readonly attributes = new Map<string, AttributeProtoLike>();
  private constCache?: Tensor | null;

  constructor(
    public name: string,
    public opType: string,
    public domain: string,
    /** The original NodeProto (or a fresh one), carrying doc_string, overload, metadata and other fields. */
    readonly proto: NodeProtoLike,
  ) {
    for (const a of proto.attribute ?? []) this.attributes.set(a.name ?? '', a);
  }

  get qualifiedOp(): string {
    return this.domain && this.domain !== 'ai.onnx' ? `${this.domain}.${this.opType}` : this.opType;
  }

  input(i: number): Value | null {
    return this.inputs[i] ?? null;
  }

  attr(name: string): AttributeProtoLike | undefined {
    return this.attributes.get(name);
  }

  constantTensor(): Tensor | undefined {
    if (this.constCache !== undefined) return this.constCache ?? undefined;
    const a = this.attributes.get('value');
    let t: Tensor | undefined;
    if (a?.t) t = new Tensor(a.t as never);
    else {
      // value_float(s)/value_int(s) forms of Constant
      const f = this.attributes.get('value_float');
      const fs = this.attributes.get('value_floats');
      const i = this.attributes.get('value_int');
      const is = this.attributes.get('value_ints');
      if (f) t = new Tensor({ dims: [], dataType: 1, floatData: [f.f ?? 0] });
      else if (fs) t = new Tensor({ dims: [fs.floats?.length ?? 0], dataType: 1, floatData: fs.floats ?? [] });
      else if (i) t = new Tensor({ dims: [], dataType: 7, int64Data: [i.i as never] });
      else if (is) t = new Tensor({ dims: [is.ints?.length ?? 0], dataType: 7, int64Data: (is.ints ?? []) as never });
    }
    this.constCache = t ?? null;
    return t;
  }
}

export class Graph {
  nodes: Node[] = [];
  readonly values = new Map<string, Value>();
  inputs: Value[] = [];
  outputs: Value[] = [];
  /** Initializers by name, in file order. */
  readonly initializers = new Map<string, Tensor>();
  /**
   * Initializers the file stored sparse (made dense in `initializers`), with the SparseTensorProto they came from: one
   * still holding that same dense tensor is saved sparse again.
   */
  readonly sparseOrigins = new Map<string, { tensor: Tensor; proto: Record<string, unknown> }>();

  constructor(
    /** The original GraphProto: name, doc_string, value_info, sparse initializers, annotations, metadata. */
    readonly proto: Record<string, unknown>,
  ) {}

  /** A placeholder for an omitted optional output (''), not registered by name. */
  detachedValue(): Value {
    return new Value('');
  }

  value(name: string): Value {
    let v = this.values.get(name);
    if (!v) {
      v = new Value(name);
      this.values.set(name, v);
    }
    return v;
  }

  /** Index of each node in the current order; recomputed on demand because rewrites reorder. */
  nodeIndex(): Map<Node, number> {
    return new Map(this.nodes.map((n, i) => [n, i]));
  }

  nodeByName(name: string): Node | undefined {
    return this.nodes.find((n) => n.name === name);
  }
}

/** The constant tensor behind a value: an initializer or Constant, possibly behind Identity nodes (exporters dedupe equal initializers, and alias shared buffers, that way). */
export function constantOf(v: Value | null | undefined): Tensor | undefined {
  let cur = v ?? null;
  for (let i = 0; cur && i < 8; i++) {
    const c = cur.constant;
    if (c) return c;
    const p = cur.producer;
    if (!p || p.opType !== 'Identity' || p.domain !== '') return undefined;
    cur = p.input(0);
  }
  return undefined;
}
