// What each graph input is for, so that inputs can be synthesized for a run: token ids (with the vocabulary size of
// the embedding table they index), masks, positions, KV caches, pixels or audio features; and, from how the graph
// uses them, their layout (which axis is the batch, which the sequence) and what a mask's true means.
import { dtypeName } from './onnx/dtypes';
import type { RawSite } from './attention/site';
import type { Graph, Value } from './ir/graph';
import type { ShapeInfo } from './ir/shapes';
import { assignInputAxes } from './layout/input-axes';
import { bandWidth, MASK_INPUT_NAME } from './attention/mask';
import { maskMeaning } from './layout/mask-meaning';
import type { InputInfo, InputRole } from './report/types';
import { AUDIO_INPUT_NAME, cacheRole } from './input-names';

/**
 * @param sites    the detected attention sites: their score axes tell which input axis is the sequence.
 * @param warnings receives what the graph does not establish (a layout, a mask's meaning) and synthesis will assume.
 */
export function describeInputs(graph: Graph, shapes: ShapeInfo, sites: RawSite[] = [], warnings: string[] = []): InputInfo[] {
  const infos: InputInfo[] = graph.inputs
    .filter((v) => !v.initializer)
    .map((v) => {
      const elem = v.info?.type?.tensorType?.elemType ?? 0;
      const dtype = dtypeName(elem);
      const shape = shapes.shape(v) ?? [];
      const vocab = embeddingRows(v);
      const role = roleOf(v.name, dtype, shape.length, vocab !== undefined);
      const info: InputInfo = { name: v.name, dtype, shape, role };
      if (vocab !== undefined && (role === 'input_ids' || role === 'token_type_ids')) info.vocabSize = vocab;
      if (role === 'attention_mask') describeMask(v, info, shapes, warnings);
      return info;
    });
  warnings.push(...assignInputAxes(graph, shapes, sites, infos));
  return infos;
}

function describeMask(v: Value, info: InputInfo, shapes: ShapeInfo, warnings: string[]): void {
  const verdict = maskMeaning(v, info.dtype === 'bool', shapes);
  if (verdict.meaning) info.maskMeaning = verdict.meaning;
  // A float mask that is not 0/1 is an additive bias (0 = attend) and has no true/false meaning to find.
  else if (!info.dtype.startsWith('float')) {
    warnings.push(`input ${info.name}: cannot tell whether ${info.dtype === 'bool' ? 'true' : '1'} means attend or padding (${verdict.reason}); synthesized masks assume attend`);
  }
}

function roleOf(name: string, dtype: string, rank: number, indexesTable: boolean): InputRole {
  const n = name.toLowerCase();
  const isInt = dtype.startsWith('int') || dtype.startsWith('uint');
  const cache = rank === 4 ? cacheRole(name) : undefined;
  if (cache) return cache;
  if (/cache_position/.test(n)) return 'cache_position';
  if (/token_type/.test(n)) return 'token_type_ids';
  if (/position/.test(n) && isInt) return 'position_ids';
  if (MASK_INPUT_NAME.test(n)) return 'attention_mask';
  if (/pixel|image/.test(n) || (!isInt && rank === 4)) return 'pixel_values';
  if (AUDIO_INPUT_NAME.test(n)) return 'audio_features';
  if (isInt && (indexesTable || /input_ids|ids$|tokens?/.test(n))) return 'input_ids';
  if (!isInt && rank === 3) return 'hidden_states';
  return 'other';
}

/** Rows of the constant table this input indexes with Gather (possibly after a Cast/Reshape), if any. */
function embeddingRows(v: Value, depth = 3): number | undefined {
  for (const u of v.uses) {
    const n = u.node;
    if (n.opType === 'Gather' && u.index === 1) {
      const table = n.input(0)?.constant;
      if (table && table.dims.length === 2) return table.dims[0];
    }
    if (depth > 0 && ['Cast', 'Reshape', 'Unsqueeze', 'Flatten', 'Squeeze', 'Identity'].includes(n.opType) && u.index === 0) {
      const r = embeddingRows(n.outputs[0], depth - 1);
      if (r !== undefined) return r;
    }
  }
  return undefined;
}

/** Ops a token-id input passes through on its way to the embedding Gather. */
const PASS_THROUGH = ['Cast', 'Reshape', 'Unsqueeze', 'Flatten', 'Squeeze', 'Identity'];

/** The graph input a value comes from through shape-only ops, if any. */
function sourceInput(v: Value | null, depth = 4): Value | undefined {
  if (!v) return undefined;
  if (v.isGraphInput) return v;
  const p = v.producer;
  return p && depth > 0 && PASS_THROUGH.includes(p.opType) ? sourceInput(p.input(0), depth - 1) : undefined;
}

/**
 * The longest sequence a model with learned absolute positions takes: the smallest constant table (16 rows or more)
 * that a Gather indexes with anything but token ids or token types, rounded down to a power of two (BART's table has
 * two extra rows, 66 for 64 positions). Synthesizing a longer input would index past the table and fail. Rotary
 * caches are such tables too; they are long, so they only cap lengths nobody synthesizes by default. A causal buffer
 * sliced to the sequence length bounds it as well.
 */
export function maxPositions(graph: Graph): number | undefined {
  let rows: number | undefined;
  for (const n of graph.nodes) {
    if (n.opType !== 'Gather' || n.domain !== '') continue;
    const table = n.input(0)?.constant;
    if (!table || table.dims.length !== 2 || table.dims[0] < 16) continue;
    const from = sourceInput(n.input(1));
    if (from && !/position/i.test(from.name)) continue; // token ids, token types: a vocabulary, not positions
    rows = Math.min(rows ?? Infinity, table.dims[0]);
  }
  const tables = rows === undefined ? undefined : 2 ** Math.floor(Math.log2(rows));
  const buffers = slicedBufferLength(graph);
  return tables === undefined ? buffers : buffers === undefined ? tables : Math.min(tables, buffers);
}

/**
 * The shortest causal buffer cut to the sequence length at run time: nanoGPT's (and older GPT-2 and GPT-NeoX
 * exports') lower-triangular `bias[:, :, :T, :T]` holds block_size positions, and a longer input fails in a broadcast
 * deep inside the model (GPT-Neo's local layers cut a banded one). Only such constants count: torch.nn slices its
 * packed weights at run time too.
 */
function slicedBufferLength(graph: Graph): number | undefined {
  let shortest: number | undefined;
  for (const n of graph.nodes) {
    if (n.opType !== 'Slice' || n.domain !== '' || n.inputs.length < 3) continue;
    const data = n.input(0)?.constant;
    // Square first: reading a sliced weight's values (to test it) would load it, and weights stay lazy here.
    if (!data || data.dims.length < 2 || n.input(2)?.constant || data.dims.at(-1) !== data.dims.at(-2) || bandWidth(data) === null) continue;
    const axesIn = n.input(3)?.constant;
    const rank = data.dims.length;
    let axes: number[];
    try {
      axes = axesIn ? axesIn.toNumbers().map((a) => (a < 0 ? a + rank : a)) : Array.from({ length: n.input(1)?.constant?.size ?? 0 }, (_, i) => i);
    } catch {
      continue;
    }
    for (const a of axes) {
      if (a < rank - 2 || data.dims[a] < 16) continue;
      shortest = Math.min(shortest ?? Infinity, data.dims[a]);
    }
  }
  return shortest;
}
