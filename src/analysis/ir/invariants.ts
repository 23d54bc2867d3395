// The invariants every Graph keeps, checked explicitly: after a rewrite, after building a synthetic model, in tests.
// A broken producer/use link does not fail where it is made; it fails later, far away, as a wrong analysis or a model
// onnxruntime rejects. Checking right after each edit points at the edit that broke it.
import type { Graph, Node, Value } from './graph';

/** Every broken invariant, as a sentence; empty when the graph is consistent. */
export function graphProblems(graph: Graph): string[] {
  const problems: string[] = [];
  const position = new Map<Node, number>();
  graph.nodes.forEach((n, i) => {
    if (position.has(n)) problems.push(`node '${n.name}' appears twice in the node list`);
    position.set(n, i);
  });
  const registered = (v: Value, where: string) => {
    if (graph.values.get(v.name) !== v) problems.push(`${where}: value '${v.name}' is not the graph's value of that name`);
  };
  const available = (v: Value) => (v.producer && position.has(v.producer)) || v.initializer !== undefined || v.isGraphInput;

  for (const [i, node] of graph.nodes.entries()) {
    node.inputs.forEach((v, index) => {
      if (!v) return;
      registered(v, `input ${index} of node '${node.name}'`);
      if (!available(v)) problems.push(`node '${node.name}' reads '${v.name}', which nothing in the graph produces`);
      else if (v.producer && position.get(v.producer)! >= i) problems.push(`node '${node.name}' comes before '${v.producer.name}', which produces its input '${v.name}'`);
      if (!v.uses.some((u) => u.node === node && u.index === index)) problems.push(`value '${v.name}' does not list its use by node '${node.name}' (input ${index})`);
    });
    for (const v of node.implicitInputs) {
      registered(v, `subgraph of node '${node.name}'`);
      if (!v.uses.some((u) => u.node === node && u.index === -1)) problems.push(`value '${v.name}' does not list its use by the subgraph of '${node.name}'`);
    }
    node.outputs.forEach((v, index) => {
      if (v.name === '') return;
      registered(v, `output ${index} of node '${node.name}'`);
      if (v.producer !== node || v.producerIndex !== index) problems.push(`value '${v.name}' does not name node '${node.name}' (output ${index}) as its producer`);
    });
  }
  for (const [name, v] of graph.values) {
    if (v.name !== name) problems.push(`value registered as '${name}' is named '${v.name}'`);
    if (v.producer && !position.has(v.producer)) problems.push(`value '${name}' is produced by node '${v.producer.name}', which is not in the graph`);
    if (v.producer && (v.initializer || v.isGraphInput)) problems.push(`value '${name}' has a producer and is also an initializer or graph input`);
    for (const u of v.uses) {
      if (!position.has(u.node)) problems.push(`value '${name}' lists a use by node '${u.node.name}', which is not in the graph`);
      else if (u.index === -1 ? !u.node.implicitInputs.includes(v) : u.node.inputs[u.index] !== v) {
        problems.push(`value '${name}' lists a use by node '${u.node.name}' (input ${u.index}) that the node does not have`);
      }
    }
    if (v.initializer && graph.initializers.get(name) !== v.initializer) problems.push(`initializer '${name}' is missing from the graph's initializer list`);
  }
  for (const [name, t] of graph.initializers) {
    if (graph.values.get(name)?.initializer !== t) problems.push(`initializer '${name}' has no value that holds it`);
  }
  for (const v of graph.inputs) {
    registered(v, 'graph input');
    if (!v.isGraphInput) problems.push(`graph input '${v.name}' is not flagged as one`);
  }
  for (const v of graph.outputs) {
    registered(v, 'graph output');
    if (!v.isGraphOutput) problems.push(`graph output '${v.name}' is not flagged as one`);
    if (!available(v)) problems.push(`graph output '${v.name}' is not produced by anything`);
  }
  return problems;
}

export function assertGraphConsistent(graph: Graph): void {
  const problems = graphProblems(graph);
  if (problems.length > 0) {
    const more = problems.length > 10 ? ` (and ${problems.length - 10} more)` : '';
    throw new Error(`graph invariants broken: ${problems.slice(0, 10).join('; ')}${more}`);
  }
}
