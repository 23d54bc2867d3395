// Which axis of a token-id, hidden-state, position or mask input is the sequence and which the batch, read from the
// graph rather than assumed: torch.nn models with batch_first=False take [sequence, batch] inputs, and synthesizing
// those as [batch, sequence] silently feeds a different model (and mixes batch items into the attention maps).
//
// The sequence axis is the input axis that becomes a position axis of the attention scores (keys, else queries):
//   1. by symbol: shape inference carries the input's dim names to the scores, so the scores' key axis named
//      `sequence` marks the input axis named `sequence`;
//   2. by data path, when no symbol ties them (fixed sizes, or a symbol lost on the way): the axis is followed op by
//      op (axis-flow.ts) to see which one lands on the scores' key axis;
//   3. by a symbol shared with another input already placed (an attention mask [batch, past + new] whose `batch`
//      is the token ids' batch);
//   4. by a dim named `sequence`, `seq_len`, `batch` and the like, when nothing else places the input.
// The batch is the other of the two leading axes. What cannot be established is left out and said in a warning;
// synthesis then falls back to [batch, sequence, ...].
import type { Graph, Value } from '../ir/graph';
import type { ShapeInfo } from '../ir/shapes';
import type { RawSite } from '../attention/site';
import type { Dim, InputAxes, InputInfo } from '../report/types';
import { followAxis } from './axis-flow';

type Position = 'key' | 'query';

interface PositionAxis {
  value: Value;
  axis: number;
  position: Position;
}

/**
 * The position axes of each site's attention: the last two axes of the scores entering an unfused Softmax, or the
 * sequence axis of a fused operator's query and key inputs ([batch, sequence, hidden] or [batch, heads, sequence, size]).
 */
export function positionAxes(sites: RawSite[], shapes: ShapeInfo): PositionAxis[] {
  const out: PositionAxis[] = [];
  const seqAxis = (v: Value | null): number | undefined => {
    const r = shapes.shape(v)?.length;
    return r === 3 || r === 5 ? 1 : r === 4 ? 2 : undefined;
  };
  for (const s of sites) {
    const n = s.anchor;
    if (n.opType === 'Softmax') {
      // Q·Kᵀ's output too: a rule's mask added before the Softmax (block-topk's selection) can hide the scores' shape.
      const qk = [...s.nodes].find((x) => x.name === s.anchors.qk)?.outputs[0];
      for (const scores of [n.input(0), qk]) {
        const r = shapes.shape(scores)?.length;
        if (!scores || r === undefined || r < 2) continue;
        out.push({ value: scores, axis: r - 1, position: 'key' }, { value: scores, axis: r - 2, position: 'query' });
      }
      continue;
    }
    const q = n.input(0);
    const qa = seqAxis(q);
    if (!q || qa === undefined) continue;
    out.push({ value: q, axis: qa, position: 'query' });
    // A packed QKV weight (com.microsoft.Attention) or a packed query (key absent): the keys are the queries' tokens.
    const k = n.input(1);
    const ka = seqAxis(k);
    out.push(k && ka !== undefined ? { value: k, axis: ka, position: 'key' } : { value: q, axis: qa, position: 'key' });
  }
  return out;
}

const HAS_SEQUENCE = new Set(['input_ids', 'token_type_ids', 'position_ids', 'attention_mask', 'hidden_states']);

/** Inputs whose sequence axis matters for synthesis: token-like inputs, 2-D masks, [.., .., hidden] features. */
function isCandidate(info: InputInfo): boolean {
  if (!HAS_SEQUENCE.has(info.role)) return false;
  const r = info.shape.length;
  if (info.role === 'attention_mask') return r === 2;
  if (info.role === 'hidden_states') return r === 3;
  return r === 1 || r === 2;
}

/** The one axis in `axes`, or undefined when there are none or several. */
function single(axes: number[]): number | undefined {
  return axes.length === 1 ? axes[0] : undefined;
}

function bySymbol(shape: Dim[], targets: PositionAxis[], shapes: ShapeInfo): number | undefined {
  const symbols = (position: Position) =>
    new Set(targets.filter((t) => t.position === position).map((t) => shapes.shape(t.value)?.[t.axis]).filter((d): d is string => typeof d === 'string'));
  for (const position of ['key', 'query'] as const) {
    const syms = symbols(position);
    const axis = single(shape.flatMap((d, i) => (typeof d === 'string' && syms.has(d) ? [i] : [])));
    if (axis !== undefined) return axis;
  }
  return undefined;
}

/** For each axis of an input, the score positions (key, query) it lands on, followed op by op (axis-flow.ts). */
function reachedPositions(input: Value, rank: number, index: Map<Value, PositionAxis[]>, shapes: ShapeInfo): Set<string>[] {
  return Array.from({ length: rank }, (_, axis) => followAxis(input, axis, shapes, (v, k) => index.get(v)?.find((t) => t.axis === k)?.position));
}

function byDataPath(reached: Set<string>[]): number | undefined {
  for (const position of ['key', 'query'] as const) {
    const axis = single(reached.flatMap((r, i) => (r.has(position) ? [i] : [])));
    if (axis !== undefined) return axis;
  }
  return undefined;
}

/**
 * A 2-D mask laid out as queries × keys rather than batch × keys (torch.nn's `[S, S]` src_mask): one axis reaches the
 * scores' query axis and the other their key axis. Undefined otherwise.
 */
function queryKeyAxes(reached: Set<string>[]): InputAxes | undefined {
  if (reached.length !== 2) return undefined;
  for (const key of [0, 1]) {
    if (reached[key].has('key') && !reached[key].has('query') && reached[1 - key].has('query') && !reached[1 - key].has('key')) return { sequence: key, query: 1 - key };
  }
  return undefined;
}

/** The batch axis once the sequence axis is known: the other of the two leading axes (the last of a 3-D input is its features). */
function batchBeside(info: InputInfo, sequence: number): number | undefined {
  const r = info.shape.length;
  if (r === 2 || (r === 3 && sequence < 2)) return 1 - sequence;
  return undefined;
}

/**
 * Sets `axes` on every input whose layout the graph establishes, and returns a warning for each sequence-bearing input
 * with a symbolic dim whose layout it does not (synthesis then assumes [batch, sequence]).
 */
export function assignInputAxes(graph: Graph, shapes: ShapeInfo, sites: RawSite[], infos: InputInfo[]): string[] {
  if (sites.length === 0) return [];
  const targets = positionAxes(sites, shapes);
  const index = new Map<Value, PositionAxis[]>();
  for (const t of targets) index.set(t.value, [...(index.get(t.value) ?? []), t]);
  const values = new Map(graph.inputs.map((v) => [v.name, v]));
  const pending: InputInfo[] = [];
  for (const info of infos.filter(isCandidate)) {
    const v = values.get(info.name);
    // Followed once, and only when a reading needs it.
    let reached: Set<string>[] | undefined;
    const paths = () => (reached ??= v ? reachedPositions(v, info.shape.length, index, shapes) : []);
    const square = info.role === 'attention_mask' ? queryKeyAxes(paths()) : undefined;
    if (square) {
      info.axes = square;
      continue;
    }
    const sequence = info.shape.length === 1 ? 0 : bySymbol(info.shape, targets, shapes) ?? byDataPath(paths());
    if (sequence === undefined) pending.push(info);
    else info.axes = withBatch(info, sequence);
  }
  // Symbols of inputs already placed: an unplaced input's axis with the same name has the same meaning.
  const placed = infos.filter((i) => i.axes);
  const named = (pick: (a: InputAxes) => number | undefined) =>
    new Set(placed.map((i) => i.shape[pick(i.axes!) ?? -1]).filter((d): d is string => typeof d === 'string'));
  const seqNames = named((a) => a.sequence);
  const batchNames = named((a) => a.batch);
  const warnings: string[] = [];
  const axisNamed = (shape: Dim[], names: Set<string>, word: RegExp) =>
    single(shape.flatMap((d, i) => (typeof d === 'string' && names.has(d) ? [i] : []))) ??
    single(shape.flatMap((d, i) => (typeof d === 'string' && word.test(d) ? [i] : [])));
  for (const info of pending) {
    const seq = axisNamed(info.shape, seqNames, SEQUENCE_WORD);
    const batch = axisNamed(info.shape, batchNames, BATCH_WORD);
    if (seq !== undefined) info.axes = withBatch(info, seq);
    else if (batch !== undefined && info.shape.length === 2) info.axes = { batch, sequence: 1 - batch };
    else if (info.shape.some((d) => typeof d !== 'number')) {
      warnings.push(
        `input ${info.name}: no axis of it could be traced to the attention's query or key positions (by dim name or data path); ` +
          `synthesized inputs assume ${info.shape.length === 3 ? '[batch, sequence, features]' : '[batch, sequence]'}`,
      );
    }
  }
  return warnings;
}

/**
 * Last resort, when neither the graph nor another input places an axis: a dim the exporter named in so many words
 * (torch.onnx's dynamic_axes names; a rewritten model whose blocked scores no longer carry the sequence symbol).
 */
const SEQUENCE_WORD = /^(seq|sequence|seq_len|seqlen|sequence_length|src_len|tgt_len|num_tokens|tokens)$/i;
const BATCH_WORD = /^(batch|batch_size|bs)$/i;

function withBatch(info: InputInfo, sequence: number): InputAxes {
  const batch = batchBeside(info, sequence);
  return batch === undefined ? { sequence } : { batch, sequence };
}
