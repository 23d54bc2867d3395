// Structure-aware mutations of the graph's wiring: inputs and outputs dropped or renamed, dangling and duplicate
// names, cycles, removed and copied nodes, other operators and domains, subgraphs, deep nesting and long chains.
import { deeplyNestedNode } from './nested';
import { AttrType, nodes, oddName, pickNode, renameEverywhere, valueNames, type GraphP, type Mutation, type NodeP } from './proto';
import type { Rng } from './rng';

const OPS = [
  'Softmax', 'MatMul', 'Add', 'Mul', 'Div', 'Reshape', 'Transpose', 'Concat', 'Gather', 'Slice', 'Split', 'Where', 'Expand',
  'Shape', 'Constant', 'ConstantOfShape', 'Range', 'Einsum', 'Unsqueeze', 'Squeeze', 'If', 'Loop', 'Scan', 'Attention',
  'MultiHeadAttention', 'GroupQueryAttention', 'RotaryEmbedding', 'LayerNormalization', 'Gemm', 'Conv', 'Trilu', 'Cast',
  'NoSuchOp', '',
];
const DOMAINS = ['', 'ai.onnx', 'com.microsoft', 'com.evil', 'ai.onnx.ml', 'pkg.custom'];

const randomNode = (rng: Rng, g: GraphP): NodeP | null => pickNode(rng, g);

export const graphMutations: (readonly [string, Mutation, number])[] = [
  ['drop-graph-input', ({ rng, graph }) => {
    const list = graph.input ?? [];
    if (!list.length) return null;
    const [gone] = list.splice(rng.int(list.length), 1);
    return `drop graph input '${gone.name}'`;
  }, 3],
  ['rename-graph-input', ({ rng, graph }) => {
    const list = graph.input ?? [];
    if (!list.length) return null;
    const vi = rng.pick(list);
    const old = vi.name ?? '';
    const to = rng.chance(0.5) ? oddName(rng) : `${old}_renamed`;
    if (rng.chance(0.5)) {
      vi.name = to; // only in the input list: its readers dangle
      return `rename graph input '${old}' (declaration only)`;
    }
    renameEverywhere(graph, old, to);
    return `rename graph input '${old}' everywhere`;
  }, 3],
  ['rename-value-everywhere', ({ rng, graph }) => {
    // Names from the file end up quoted in reasons and errors: a newline in one near attention tests that they stay
    // one line.
    const near = pickNode(rng, graph, (n) => !!n.output?.some(Boolean))?.output?.filter(Boolean) ?? [];
    const names = near.length ? near : valueNames(graph);
    if (!names.length) return null;
    const old = rng.pick(names);
    renameEverywhere(graph, old, oddName(rng));
    return `rename value '${old.slice(0, 40)}' everywhere to an odd name`;
  }, 2],
  ['drop-node-input', ({ rng, graph }) => {
    const n = randomNode(rng, graph);
    if (!n?.input?.length) return null;
    const k = rng.int(n.input.length);
    if (rng.chance(0.5)) n.input.splice(k, 1);
    else n.input[k] = '';
    return `drop input ${k} of node '${n.name}' (${n.opType})`;
  }, 4],
  ['retarget-node-input', ({ rng, graph }) => {
    const n = randomNode(rng, graph);
    if (!n) return null;
    const names = valueNames(graph);
    const to = rng.weighted<string>([[`ghost_${rng.int(100)}`, 2], [names.length ? rng.pick(names) : 'ghost', 4], [n.output?.[0] ?? 'self', 1]]);
    const input = (n.input ??= []);
    const k = input.length && rng.chance(0.8) ? rng.int(input.length) : input.length;
    input[k] = to;
    return `input ${k} of node '${n.name}' (${n.opType}) now reads '${to.slice(0, 40)}'`;
  }, 4],
  ['swap-inputs', ({ rng, graph }) => {
    // Q and K, scores and mask, data and shape: a model that still loads, with its operands in the wrong places.
    const n = pickNode(rng, graph, (m) => (m.input?.length ?? 0) >= 2);
    if (!n) return null;
    const input = n.input!;
    const i = rng.int(input.length);
    const j = (i + 1 + rng.int(input.length - 1)) % input.length;
    [input[i], input[j]] = [input[j], input[i]];
    return `inputs ${i} and ${j} of '${n.name}' (${n.opType}) swapped`;
  }, 3],
  ['rename-node-output', ({ rng, graph }) => {
    const n = randomNode(rng, graph);
    if (!n?.output?.length) return null;
    const k = rng.int(n.output.length);
    const names = valueNames(graph);
    const to = rng.chance(0.5) && names.length ? rng.pick(names) : rng.chance(0.5) ? '' : `${n.output[k]}_x`;
    n.output[k] = to;
    return `output ${k} of node '${n.name}' renamed to '${to.slice(0, 40)}'`;
  }, 3],
  ['drop-node-outputs', ({ rng, graph }) => {
    const n = randomNode(rng, graph);
    if (!n) return null;
    n.output = rng.chance(0.5) ? [] : [...(n.output ?? []), `extra_${rng.int(100)}`, ''];
    return `outputs of node '${n.name}' (${n.opType}) changed to ${n.output.length}`;
  }, 2],
  ['cycle', ({ rng, graph }) => {
    const list = nodes(graph);
    if (list.length < 2) return null;
    const i = rng.int(list.length - 1);
    const j = rng.range(i + 1, list.length - 1);
    const late = list[j].output?.find(Boolean);
    if (!late) return null;
    const early = list[i];
    const input = (early.input ??= []);
    const k = input.length ? rng.int(input.length) : 0;
    input[k] = late;
    return `node '${early.name}' reads '${late}' from the later node '${list[j].name}' (a cycle unless unrelated)`;
  }, 4],
  ['self-loop', ({ rng, graph }) => {
    const n = randomNode(rng, graph);
    const out = n?.output?.find(Boolean);
    if (!n || !out) return null;
    (n.input ??= []).push(out);
    return `node '${n.name}' reads its own output`;
  }, 1],
  ['drop-node', ({ rng, graph }) => {
    const list = nodes(graph);
    if (!list.length) return null;
    const [gone] = list.splice(rng.int(list.length), 1);
    return `drop node '${gone.name}' (${gone.opType})`;
  }, 3],
  ['duplicate-node', ({ rng, graph }) => {
    const n = randomNode(rng, graph);
    if (!n) return null;
    const copy: NodeP = { ...n, input: [...(n.input ?? [])], output: [...(n.output ?? [])] };
    const fresh = rng.chance(0.5);
    if (fresh) copy.output = copy.output!.map((o) => (o ? `${o}_dup` : o));
    nodes(graph).splice(rng.int(nodes(graph).length + 1), 0, copy);
    return `copy of node '${n.name}' (${fresh ? 'same name, new outputs' : 'same outputs'})`;
  }, 2],
  ['shuffle-nodes', ({ rng, graph }) => {
    const list = nodes(graph);
    for (let i = list.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [list[i], list[j]] = [list[j], list[i]];
    }
    return 'nodes in random order (the graph itself is unchanged)';
  }, 1],
  ['op-type', ({ rng, graph }) => {
    const n = randomNode(rng, graph);
    if (!n) return null;
    const old = `${n.domain ?? ''}.${n.opType}`;
    if (rng.chance(0.7)) n.opType = rng.pick(OPS);
    if (rng.chance(0.4)) n.domain = rng.pick(DOMAINS);
    return `node '${n.name}' ${old} -> ${n.domain ?? ''}.${n.opType}`;
  }, 4],
  ['odd-node-name', ({ rng, graph }) => {
    const n = randomNode(rng, graph);
    if (!n) return null;
    const other = randomNode(rng, graph);
    n.name = rng.chance(0.4) && other ? other.name : oddName(rng);
    return 'a node renamed (odd or duplicate name)';
  }, 2],
  ['graph-outputs', ({ rng, graph }) => {
    const outs = (graph.output ??= []);
    const names = valueNames(graph);
    const what = rng.int(5);
    if (what === 0) graph.output = [];
    else if (what === 1) outs.push({ name: `ghost_out_${rng.int(10)}` });
    else if (what === 2 && outs.length) outs.push({ ...outs[0] });
    else if (what === 3 && graph.input?.length) outs.push({ ...graph.input[0] });
    else if (names.length) outs.push({ name: rng.pick(names) });
    return `graph outputs edited (variant ${what})`;
  }, 3],
  ['graph-inputs-duplicated', ({ rng, graph }) => {
    const ins = graph.input ?? [];
    const inits = graph.initializer ?? [];
    if (rng.chance(0.5) && ins.length) ins.push({ ...rng.pick(ins) });
    else if (inits.length) {
      const t = rng.pick(inits);
      if (rng.chance(0.5)) inits.push({ ...t });
      else ins.push({ name: t.name, type: { tensorType: { elemType: t.dataType ?? 1 } } });
    } else return null;
    return 'a graph input or initializer name declared twice';
  }, 2],
  ['empty-graph', ({ rng, graph }) => {
    graph.node = [];
    if (rng.chance(0.5)) graph.output = [];
    return 'every node removed';
  }, 1],
  ['no-graph', ({ rng, model }) => {
    model.graph = rng.chance(0.5) ? null : {};
    return 'graph removed or empty';
  }, 1],
  ['subgraph', ({ rng, graph }) => {
    // An If node whose branches read values of the enclosing graph (and, sometimes, names nobody defines).
    const names = valueNames(graph);
    if (!names.length) return null;
    const outer = rng.pick(names);
    const branch = (tag: string) => ({
      name: `${tag}_branch`,
      node: [{ name: `${tag}_id`, opType: 'Identity', input: [rng.chance(0.8) ? outer : 'undefined_outer'], output: [`${tag}_out`] }],
      output: [{ name: `${tag}_out` }],
    });
    const ifNode: NodeP = {
      name: 'fuzz_if', opType: 'If', input: [rng.pick(names)], output: ['fuzz_if_out'],
      attribute: [{ name: 'then_branch', type: AttrType.GRAPH, g: branch('then') }, { name: 'else_branch', type: AttrType.GRAPH, g: branch('else') }],
    };
    nodes(graph).splice(rng.int(nodes(graph).length + 1), 0, ifNode);
    if (rng.chance(0.5)) (graph.output ??= []).push({ name: 'fuzz_if_out' });
    return `If node with branches reading '${outer.slice(0, 40)}'`;
  }, 2],
  ['deep-nesting', ({ rng, graph, rawNodes }) => {
    // Subgraphs nested far deeper than any model: recursion in the decoder and in every walk over subgraphs.
    const depth = rng.pick([8, 30, 64, 1000, 20000]); // 3 message levels each; protobuf's limit is 100 levels
    const names = valueNames(graph);
    rawNodes.push(deeplyNestedNode(depth, names.length ? rng.pick(names) : 'c', 'fuzz_deep_out'));
    return `subgraphs nested ${depth} deep`;
  }, 1],
  ['long-chain', ({ rng, graph }) => {
    // Thousands of Identity nodes in front of one input: recursion along the data path in detection and tracing.
    const n = pickNode(rng, graph, (m) => !!m.input?.some(Boolean));
    if (!n) return null;
    const k = n.input!.findIndex(Boolean);
    const length = rng.pick([100, 3000, 30000]);
    let prev = n.input![k];
    const chain: NodeP[] = [];
    for (let i = 0; i < length; i++) {
      const out = `fuzz_chain_${i}`;
      chain.push({ name: `fuzz_chain_node_${i}`, opType: rng.chance(0.9) ? 'Identity' : 'Reshape', input: [prev], output: [out] });
      prev = out;
    }
    n.input![k] = prev;
    nodes(graph).splice(nodes(graph).indexOf(n), 0, ...chain);
    return `${length} Identity/Reshape nodes chained in front of '${n.name}'`;
  }, 1],
  ['recursive-function', ({ rng, model, graph }) => {
    // A model-local function that calls itself, and a node that calls it.
    const domain = 'fuzz.local';
    const call: NodeP = { opType: 'Loopy', domain, input: ['a'], output: ['b'] };
    (model.functions ??= []).push({ name: 'Loopy', domain, input: ['a'], output: ['b'], node: [call], opsetImport: [{ domain: '', version: 17 }] });
    (model.opsetImport ??= []).push({ domain, version: 1 });
    const names = valueNames(graph);
    if (names.length && rng.chance(0.8)) nodes(graph).push({ name: 'fuzz_call', opType: 'Loopy', domain, input: [rng.pick(names)], output: ['fuzz_call_out'] });
    return 'a recursive model-local function';
  }, 1],
];
