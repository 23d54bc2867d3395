// The parts of a decoded ModelProto that the structure-aware mutator edits, as protobufjs decodes them (int64 fields
// are Long objects or numbers; repeated fields are arrays). Loose on purpose: a mutant is allowed to hold anything
// the schema can encode, whatever ONNX thinks of it.
import type { Rng } from './rng';

export type Int64 = number | string | { toNumber(): number };

export interface KV { key?: string; value?: string }
export interface DimP { dimValue?: Int64 | null; dimParam?: string | null }
export interface TypeP {
  tensorType?: { elemType?: number; shape?: { dim?: DimP[] } | null } | null;
  sequenceType?: { elemType?: TypeP } | null;
}
export interface ValueInfoP { name?: string; type?: TypeP | null }
export interface TensorP {
  name?: string;
  dims?: Int64[];
  dataType?: number;
  rawData?: Uint8Array | null;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: Int64[];
  doubleData?: number[];
  stringData?: Uint8Array[];
  dataLocation?: number;
  externalData?: KV[];
}
export interface AttrP {
  name?: string;
  type?: number;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: TensorP | null;
  g?: GraphP | null;
  floats?: number[];
  ints?: Int64[];
  strings?: Uint8Array[];
  tensors?: TensorP[];
  graphs?: GraphP[];
}
export interface NodeP { name?: string; opType?: string; domain?: string; input?: string[]; output?: string[]; attribute?: AttrP[] }
export interface GraphP {
  name?: string;
  node?: NodeP[];
  initializer?: TensorP[];
  sparseInitializer?: { values?: TensorP; indices?: TensorP; dims?: Int64[] }[];
  input?: ValueInfoP[];
  output?: ValueInfoP[];
  valueInfo?: ValueInfoP[];
}
export interface FunctionP { name?: string; domain?: string; input?: string[]; output?: string[]; node?: NodeP[]; opsetImport?: OpsetP[] }
export interface OpsetP { domain?: string; version?: Int64 }
export interface ModelP { irVersion?: Int64; opsetImport?: OpsetP[]; graph?: GraphP | null; functions?: FunctionP[] }

/** AttributeProto.AttributeType values. */
export const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8, TENSORS: 9, GRAPHS: 10 } as const;

/** Files written next to the mutant (external data, folders); a name ending in '/' is a folder. */
export type ExtraFiles = Map<string, Uint8Array | 'dir'>;

export interface MutationContext {
  rng: Rng;
  model: ModelP;
  graph: GraphP;
  extra: ExtraFiles;
  /** Encoded NodeProtos appended to the main graph after encoding (for nesting too deep to encode recursively). */
  rawNodes: Uint8Array[];
}

/** A structure-aware mutation: edits the model in place and says what it did, or returns null when it does not apply. */
export type Mutation = (m: MutationContext) => string | null;

export const nodes = (g: GraphP): NodeP[] => (g.node ??= []);
export const inits = (g: GraphP): TensorP[] => (g.initializer ??= []);

const ANCHORS = new Set(['Softmax', 'Attention', 'MultiHeadAttention', 'GroupQueryAttention', 'SparseAttention', 'PackedAttention']);

/**
 * Nodes within four hops (up or down) of a Softmax or a fused attention operator: where the matchers and rewriters
 * look hardest. A random node of an exported transformer is more often in an MLP or an embedding.
 */
export function hotNodes(g: GraphP): NodeP[] {
  const producer = new Map<string, NodeP>();
  const consumers = new Map<string, NodeP[]>();
  for (const n of g.node ?? []) {
    for (const o of n.output ?? []) producer.set(o, n);
    for (const i of n.input ?? []) {
      let list = consumers.get(i);
      if (!list) consumers.set(i, (list = []));
      list.push(n);
    }
  }
  let frontier = (g.node ?? []).filter((n) => ANCHORS.has(n.opType ?? ''));
  const hot = new Set(frontier);
  for (let hop = 0; hop < 4 && frontier.length; hop++) {
    const next: NodeP[] = [];
    for (const n of frontier) {
      const near = [...(n.input ?? []).map((i) => producer.get(i)), ...(n.output ?? []).flatMap((o) => consumers.get(o) ?? [])];
      for (const m of near) if (m && !hot.has(m)) { hot.add(m); next.push(m); }
    }
    frontier = next;
  }
  return [...hot];
}

/** A node to mutate: most often one near attention. */
export function pickNode(rng: Rng, g: GraphP, filter: (n: NodeP) => boolean = () => true): NodeP | null {
  const hot = rng.chance(0.6) ? hotNodes(g).filter(filter) : [];
  const pool = hot.length ? hot : (g.node ?? []).filter(filter);
  return pool.length ? rng.pick(pool) : null;
}

/** Every value name the graph defines: graph inputs, initializers, node outputs. */
export function valueNames(g: GraphP): string[] {
  const names = new Set<string>();
  for (const i of g.input ?? []) if (i.name) names.add(i.name);
  for (const t of g.initializer ?? []) if (t.name) names.add(t.name);
  for (const n of g.node ?? []) for (const o of n.output ?? []) if (o) names.add(o);
  return [...names];
}

/** Renames a value everywhere it appears in this graph (not inside subgraphs, which may shadow it). */
export function renameEverywhere(g: GraphP, from: string, to: string): void {
  const swap = (s: string) => (s === from ? to : s);
  for (const n of g.node ?? []) {
    n.input = (n.input ?? []).map(swap);
    n.output = (n.output ?? []).map(swap);
  }
  for (const list of [g.input, g.output, g.valueInfo]) for (const vi of list ?? []) if (vi.name === from) vi.name = to;
  for (const t of g.initializer ?? []) if (t.name === from) t.name = to;
}

/** Names a person would not expect: control characters, quotes, a very long one, non-ASCII, the empty name. */
export function oddName(rng: Rng): string {
  return rng.pick([
    '', 'a\nb', 'line1\r\nline2', 'tab\there', 'nul\u0000byte', "quote'd", '../../etc/passwd', 'ünïcødé 注意',
    'x'.repeat(rng.pick([300, 5000, 100_000])), ' ', '\u202e', 'constructor', '__proto__', 'toString',
  ]);
}

/** Integers that break assumptions about sizes, axes and counts. */
export function oddInt(rng: Rng): Int64 {
  return rng.pick<Int64>([
    0, -1, -2, -7, -100, 1, 2, 3, 1000, 65536, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32, 2 ** 40, 2 ** 53, -(2 ** 53),
    '9223372036854775807', '-9223372036854775808', '4611686018427387904',
  ]);
}

export function oddFloat(rng: Rng): number {
  return rng.pick([NaN, Infinity, -Infinity, 0, -0, 1e38, -1e38, 1e-45, 3.4028234663852886e38, -1]);
}
