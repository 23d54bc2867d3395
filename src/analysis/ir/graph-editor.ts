// Editing graphs in memory while keeping the producer/uses links consistent: names, redirected uses, renames,
// removals and the topological sort. GraphBuilder (builder.ts) extends it with what adds to a graph (inputs, outputs,
// initializers, nodes); rules and tests use the builder.
//
// Nodes are appended at the end of the node list; `sort()` (or `finish()`) puts them back in topological order with
// the stable sort of topo.ts, so an edited graph keeps the order of everything that did not move.
import { ModelError } from '../onnx/errors';
import { Tensor } from '../onnx/tensor';
import type { Graph, Node, Value } from './graph';
import { assertGraphConsistent } from './invariants';
import type { Model } from './load';
import { sortTopologically } from './topo';

/** A node input: a Value of this graph, the name of one, or null for an omitted optional input. */
export type Input = Value | string | null;

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

export class GraphEditor {
  readonly graph: Graph;
  protected readonly nodeNames = new Set<string>();
  private readonly counters = new Map<string, number>();
  protected sorted = true;

  /** Edits an existing model (loaded or built) in place. */
  constructor(readonly model: Model) {
    this.graph = model.graph;
    for (const n of this.graph.nodes) this.nodeNames.add(n.name);
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

  /**
   * Removes what a rewrite left unread: the nodes from `seeds` up their inputs whose results nothing reads any more
   * (not a graph output, not a value a subgraph reads from this scope), then the initializers only they read.
   */
  removeDeadFrom(seeds: Iterable<Node>): void {
    const present = new Set(this.graph.nodes);
    const implicit = new Set(this.graph.nodes.flatMap((n) => n.implicitInputs));
    const dead = new Set<Node>();
    const unread = (n: Node) => n.outputs.every((o) => !o.isGraphOutput && !implicit.has(o) && o.uses.every((u) => dead.has(u.node)));
    // A node read by several dead ones is pushed again as each of them goes, and goes with the last.
    const work = [...seeds];
    while (work.length) {
      const n = work.pop()!;
      if (dead.has(n) || !present.has(n) || !unread(n)) continue;
      dead.add(n);
      for (const i of [...n.inputs, ...n.implicitInputs]) if (i?.producer) work.push(i.producer);
    }
    if (dead.size === 0) return;
    const read = new Set([...dead].flatMap((n) => [...n.inputs, ...n.implicitInputs]));
    this.removeNodes(dead);
    for (const v of read) {
      if (v?.initializer && !v.isGraphInput && !v.isGraphOutput && v.uses.length === 0 && this.graph.values.get(v.name) === v) this.removeValue(v);
    }
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

  protected resolve(input: Input): Value | null {
    if (input === null) return null;
    if (typeof input === 'string') {
      const v = this.graph.values.get(input);
      if (!v) throw new Error(`no value named '${input}' in the graph`);
      return v;
    }
    this.checkMember(input);
    return input;
  }

  protected checkMember(v: Value): void {
    if (this.graph.values.get(v.name) !== v) throw new Error(`value '${v.name}' does not belong to this graph (was it renamed or removed?)`);
  }

  protected freshValue(name: string): Value {
    this.checkFreshName(name);
    return this.graph.value(name);
  }

  protected checkFreshName(name: string): void {
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
