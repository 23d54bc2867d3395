// A mutant: the fixture's bytes changed at the byte level, in its decoded structure (then re-encoded with the
// project's own schema), or both. Deterministic: the same fixture bytes and seed give the same mutant.
import { GraphProtoType, ModelProtoType } from '../src/analysis/onnx/schema';
import { concat, mutateBytes } from './bytes';
import { bodyMutations } from './body-mutations';
import { dataMutations } from './data-mutations';
import { graphMutations } from './graph-mutations';
import { field } from './nested';
import type { ExtraFiles, ModelP, Mutation, MutationContext } from './proto';
import { Rng } from './rng';

export interface Mutant {
  bytes: Uint8Array;
  /** Files to write next to the model (external data, folders). */
  extra: ExtraFiles;
  /** What was done, in order, for the failure report. */
  mutations: string[];
}

const FLAT: (readonly [Mutation, number])[] = [...graphMutations, ...dataMutations].map(([, m, w]) => [m, w] as const);
// The same mutations, also applied inside subgraph and function bodies made from a copy of part of the graph.
const STRUCTURE: (readonly [Mutation, number])[] = [...FLAT, ...bodyMutations(FLAT).map(([, m, w]) => [m, w] as const)];

export function makeMutant(original: Uint8Array, seed: number): Mutant {
  const rng = new Rng(seed);
  const mode = rng.weighted([['bytes', 3], ['structure', 6], ['both', 1]] as const);
  const extra: ExtraFiles = new Map();
  const mutations: string[] = [];
  let bytes = original;
  if (mode !== 'bytes') {
    const model = ModelProtoType.decode(original) as unknown as ModelP;
    const ctx: MutationContext = { rng, model, graph: (model.graph ??= {}), extra, rawNodes: [] };
    const wanted = rng.weighted([[1, 6], [2, 3], [3, 1]] as const);
    // Some mutations do not apply to every graph (no attributes, no inputs): draw again, a bounded number of times.
    for (let tries = 0; mutations.length < wanted && tries < 30; tries++) {
      const what = rng.weighted(STRUCTURE)(ctx);
      if (what !== null) mutations.push(what);
    }
    bytes = encode(ctx);
  }
  if (mode !== 'structure') {
    const r = mutateBytes(rng, bytes);
    bytes = r.bytes;
    mutations.push(...r.what);
  }
  return { bytes, extra, mutations };
}

function encode(ctx: MutationContext): Uint8Array {
  const { model, rawNodes } = ctx;
  if (!rawNodes.length || !model.graph) return ModelProtoType.encode(model as never).finish();
  // Repeated fields may be split across occurrences: appending `node` fields to the encoded graph adds nodes.
  const graph = GraphProtoType.encode(model.graph as never).finish();
  const withNodes = concat(graph, ...rawNodes.map((n) => field(1, n)));
  return concat(ModelProtoType.encode({ ...model, graph: null } as never).finish(), field(7, withNodes));
}
