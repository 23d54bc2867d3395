// Turns the in-memory Graph back into a plain GraphProto object for encoding. Fields we never interpret (doc strings,
// metadata, quantization annotations, sparse initializers) come from the original proto unchanged.
import type { TensorProtoLike } from '../onnx/tensor';
import type { Tensor } from '../onnx/tensor';
import type { Graph, Node, Value, ValueInfoProtoLike } from './graph';

export function graphToProto(graph: Graph, tensorProto: (t: Tensor) => TensorProtoLike): Record<string, unknown> {
  const live = new Set<string>();
  for (const n of graph.nodes) {
    for (const v of n.inputs) if (v) live.add(v.name);
    for (const v of n.implicitInputs) live.add(v.name);
    for (const v of n.outputs) if (v.name) live.add(v.name);
  }
  for (const v of graph.outputs) live.add(v.name);
  const valueInfo = ((graph.proto.valueInfo as ValueInfoProtoLike[] | undefined) ?? []).filter((vi) => live.has(vi.name ?? ''));
  // A weight the file stored sparse goes back sparse while the graph still holds the tensor it was loaded as (and its
  // parts are in the file itself); a rewritten or removed one is written dense, or not at all.
  const sparse = (t: Tensor) => {
    const o = graph.sparseOrigins.get(t.name);
    return o && o.tensor === t && !externalParts(o.proto) ? o.proto : undefined;
  };
  const tensors = [...graph.initializers.values()];
  return {
    ...graph.proto,
    node: graph.nodes.map(nodeToProto),
    initializer: tensors.filter((t) => !sparse(t)).map(tensorProto),
    sparseInitializer: tensors.flatMap((t) => sparse(t) ?? []),
    input: graph.inputs.map(valueInfoOf),
    output: graph.outputs.map(valueInfoOf),
    valueInfo,
  };
}

export function nodeToProto(n: Node): Record<string, unknown> {
  return {
    ...n.proto,
    name: n.name,
    opType: n.opType,
    domain: n.domain,
    input: trimTrailingEmpty(n.inputs.map((v) => v?.name ?? '')),
    output: n.outputs.map((v) => v.name),
    attribute: [...n.attributes.values()],
  };
}

function valueInfoOf(v: Value): ValueInfoProtoLike {
  return v.info ? { ...v.info, name: v.name } : { name: v.name };
}

function trimTrailingEmpty(names: string[]): string[] {
  let end = names.length;
  while (end > 0 && names[end - 1] === '') end--;
  return names.slice(0, end);
}

function externalParts(sp: Record<string, unknown>): boolean {
  return [sp.values, sp.indices].some((t) => (t as TensorProtoLike | undefined)?.dataLocation === 1);
}
