// Builds the in-memory Graph from a decoded GraphProto and checks it: every input is produced by something, every
// value has one producer, and the nodes can be ordered topologically (no cycles).
import { ModelError } from '../onnx/errors';
import { densify, type SparseTensorProtoLike } from '../onnx/sparse';
import type { Tensor, TensorProtoLike } from '../onnx/tensor';
import { Graph, Node, type NodeProtoLike, type ValueInfoProtoLike } from './graph';
import { sortTopologically } from './topo';

interface GraphProtoLike {
  node?: NodeProtoLike[] | null;
  initializer?: TensorProtoLike[] | null;
  input?: ValueInfoProtoLike[] | null;
  output?: ValueInfoProtoLike[] | null;
  valueInfo?: ValueInfoProtoLike[] | null;
  sparseInitializer?: SparseTensorProtoLike[] | null;
  [k: string]: unknown;
}

export function graphFromProto(gp: Record<string, unknown>, file: string, makeTensor: (t: TensorProtoLike) => Tensor): Graph {
  const proto = gp as GraphProtoLike;
  const graph = new Graph(gp);
  for (const t of proto.initializer ?? []) {
    const tensor = makeTensor(t);
    graph.initializers.set(tensor.name, tensor);
    graph.value(tensor.name).initializer = tensor;
  }
  for (const sp of proto.sparseInitializer ?? []) {
    const tensor = makeTensor(densify(sp, file, makeTensor));
    if (graph.initializers.has(tensor.name)) throw new ModelError('graph-duplicate', file, `initializer '${tensor.name}' is stored both dense and sparse`);
    graph.initializers.set(tensor.name, tensor);
    graph.value(tensor.name).initializer = tensor;
    graph.sparseOrigins.set(tensor.name, { tensor, proto: sp as Record<string, unknown> });
  }
  for (const vi of proto.input ?? []) {
    const v = graph.value(vi.name ?? '');
    v.isGraphInput = true;
    v.info = vi;
    graph.inputs.push(v);
  }
  for (const vi of proto.valueInfo ?? []) graph.value(vi.name ?? '').info ??= vi;

  const nodes = proto.node ?? [];
  // Unnamed nodes (hand-built graphs often leave names empty) get a name, so reports and profiles can refer to them;
  // it must not collide with a name the file already uses.
  const taken = new Set(nodes.map((n) => n.name).filter(Boolean));
  nodes.forEach((np, i) => {
    let name = np.name || `${np.opType ?? 'node'}_${i}`;
    for (let k = 1; !np.name && taken.has(name); k++) name = `${np.opType ?? 'node'}_${i}_${k}`;
    if (!np.name) taken.add(name);
    const node = new Node(name, np.opType ?? '', normDomain(np.domain), np);
    for (const name of np.output ?? []) {
      if (name === '') {
        node.outputs.push(graph.detachedValue());
        continue;
      }
      const v = graph.value(name);
      if (v.producer || v.initializer || v.isGraphInput) {
        throw new ModelError('graph-duplicate', file, `value '${name}' is produced twice (node '${node.name}' and ${v.producer ? `node '${v.producer.name}'` : 'a graph input or initializer'})`);
      }
      v.producer = node;
      v.producerIndex = node.outputs.length;
      node.outputs.push(v);
    }
    graph.nodes.push(node);
  });
  // Link inputs after all producers are known, so a dangling name can be told apart from a forward reference.
  for (const node of graph.nodes) {
    for (const name of node.proto.input ?? []) {
      if (name === '') {
        node.inputs.push(null);
        continue;
      }
      const v = graph.values.get(name);
      if (!v || (!v.producer && !v.initializer && !v.isGraphInput)) {
        throw new ModelError('graph-dangling', file, `node '${node.name}' (${node.opType}) reads '${name}', which no node, graph input or initializer produces`);
      }
      v.uses.push({ node, index: node.inputs.length });
      node.inputs.push(v);
    }
    for (const outer of subgraphOuterNames(node.proto)) {
      const v = graph.values.get(outer);
      // Names a subgraph neither defines nor finds outside are left to the runtime: they may be defined by an
      // enclosing graph when this graph is itself a subgraph.
      if (!v) continue;
      v.uses.push({ node, index: -1 });
      node.implicitInputs.push(v);
    }
  }
  for (const vi of proto.output ?? []) {
    const v = graph.values.get(vi.name ?? '');
    if (!v || (!v.producer && !v.initializer && !v.isGraphInput)) {
      throw new ModelError('graph-dangling', file, `graph output '${vi.name}' is not produced by any node`);
    }
    v.isGraphOutput = true;
    v.info = vi;
    graph.outputs.push(v);
  }
  const order = sortTopologically(graph.nodes);
  if (!order.ok) {
    throw new ModelError('graph-cycle', file, `the graph has a cycle through nodes ${order.cycle.slice(0, 5).map((n) => `'${n.name}'`).join(', ')}`);
  }
  graph.nodes = order.nodes;
  return graph;
}

export function normDomain(d: string | null | undefined): string {
  return !d || d === 'ai.onnx' ? '' : d;
}

/** Names that subgraphs of this node read from enclosing scopes. */
function subgraphOuterNames(np: NodeProtoLike): Set<string> {
  const out = new Set<string>();
  for (const a of np.attribute ?? []) {
    const graphs = [a.g, ...(a.graphs ?? [])].filter(Boolean) as GraphProtoLike[];
    for (const g of graphs) collectOuter(g, out);
  }
  return out;
}

function collectOuter(g: GraphProtoLike, out: Set<string>): void {
  const defined = new Set<string>();
  for (const t of g.initializer ?? []) defined.add(t.name ?? '');
  for (const i of g.input ?? []) defined.add(i.name ?? '');
  for (const n of g.node ?? []) for (const o of n.output ?? []) defined.add(o);
  const inner = new Set<string>();
  for (const n of g.node ?? []) {
    for (const i of n.input ?? []) if (i) inner.add(i);
    const nested = subgraphOuterNames(n);
    for (const name of nested) inner.add(name);
  }
  for (const o of g.output ?? []) inner.add(o.name ?? '');
  for (const name of inner) if (!defined.has(name)) out.add(name);
}
