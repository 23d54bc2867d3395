// What a mask or bias added to the attention scores means, read from how it is built. Exporters build masks in many
// ways (Trilu, comparisons of position ranges, constant triangular buffers, vmap-style index predicates), so this
// looks at the ingredients rather than a fixed chain of ops:
// - causal: a Trilu; an ordering comparison between two position ranges (key index <= query index); or a constant
//   lower-triangular buffer (GPT-2's `bias`);
// - padding: the mask reads a graph input named as an attention or key-padding mask;
// - sliding window: a second ordering comparison with an offset range (query index - window < key index);
// - relative bias: a Gather from a constant table (T5-style buckets);
// - bias: anything else added (a constant-folded bias table, a bias read from a graph input).
import { constantOf, type Node, type Value } from '../ir/graph';
import type { Tensor } from '../onnx/tensor';
import type { MaskType } from '../report/types';
import { attrInt, isConstantLike, isFixed, scalarOf, type Ctx } from './match';
import { projectionOf } from './trace';

export interface MaskFacts {
  causal: boolean;
  padding: boolean;
  relativeBias: boolean;
  /** ALiBi: per-head constant slopes times a position distance. */
  alibi: boolean;
  /** A term none of the above explains: the mask is a general bias, whatever else it holds. */
  bias: boolean;
  window?: number;
  /** The term compares positions in a way none of the above reads (a fixed position cut, a computed threshold). */
  unexplained?: boolean;
  nodes: Set<Node>;
  inputs: Value[];
}

const ORDER_CMP = new Set(['Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual']);
const NORMS = new Set([
  'LayerNormalization', 'SimplifiedLayerNormalization', 'SkipLayerNormalization', 'SkipSimplifiedLayerNormalization',
  'RMSNormalization', 'GroupNormalization', 'BatchNormalization', 'InstanceNormalization',
]);
const MAX_NODES = 400;
/** Graph inputs read as attention or key-padding masks: `attention_mask`, `key_padding_mask`, `pad`. */
export const MASK_INPUT_NAME = /mask|pad/i;

export function classifyMask(ctx: Ctx, masks: Value[]): MaskFacts {
  const facts: MaskFacts = { causal: false, padding: false, relativeBias: false, alibi: false, bias: false, nodes: new Set(), inputs: [] };
  // Each added term is read on its own: a term none of whose ingredients is recognised (a constant-folded relative
  // position bias, a bias read from a graph input, slopes the walk cannot see) makes the whole mask a `bias`, even
  // when another term is a causal mask. Calling such a site `causal` would let a rewrite read one row of its mask as
  // the key-padding vector, which is wrong for a bias that varies by row.
  for (const term of additiveTerms(masks)) {
    // A term that cannot change the probabilities is no mask, whatever builds it (baddbmm's zeros from a shape).
    if (isNeutralConstant(term)) continue;
    const t = classifyTerm(ctx, term);
    facts.causal ||= t.causal;
    facts.padding ||= t.padding;
    facts.relativeBias ||= t.relativeBias;
    facts.alibi ||= t.alibi;
    if (t.window !== undefined) facts.window = Math.max(facts.window ?? 0, t.window);
    for (const n of t.nodes) facts.nodes.add(n);
    for (const i of t.inputs) if (!facts.inputs.includes(i)) facts.inputs.push(i);
    const explained = (t.causal || t.padding || t.relativeBias || t.alibi || t.window !== undefined) && !t.unexplained;
    if (!explained && (t.nodes.size > 0 || t.inputs.length > 0 || constantOf(term))) facts.bias = true;
  }
  return facts;
}

/** The terms of a sum: a mask built as `a + b` (or `a - b`) is read as its two parts. */
function additiveTerms(masks: Value[], depth = 3): Value[] {
  const out: Value[] = [];
  for (const m of masks) {
    const p = m.producer;
    if (depth > 0 && p && (p.opType === 'Add' || p.opType === 'Sub') && p.domain === '' && p.inputs.every((i) => i)) {
      out.push(...additiveTerms(p.inputs as Value[], depth - 1));
    } else out.push(m);
  }
  return out;
}

/**
 * A term that cannot change the probabilities: a single number (a shift), or zeros, constant or built at run time
 * (`torch.baddbmm` over a zero bias exports as ConstantOfShape(0) times beta).
 */
function isNeutralConstant(v: Value): boolean {
  return constantOf(v)?.size === 1 || isZero(v, 6);
}

function isZero(v: Value, depth: number): boolean {
  const c = constantOf(v);
  if (c) return allZero(c);
  const p = v.producer;
  if (!p || depth === 0) return false;
  if (p.opType === 'ConstantOfShape') {
    const t = p.constantTensor();
    return !t || allZero(t);
  }
  if (p.opType === 'Mul') return p.inputs.some((i) => i && isZero(i, depth - 1));
  if (ZERO_KEEPING.has(p.opType)) return !!p.input(0) && isZero(p.input(0)!, depth - 1);
  return false;
}

/** Operators whose output is zero wherever their first input is all zeros. */
const ZERO_KEEPING = new Set(['Cast', 'Expand', 'Reshape', 'Unsqueeze', 'Squeeze', 'Identity', 'Transpose', 'Slice']);

function allZero(c: Tensor): boolean {
  if (c.size > 1 << 22) return false;
  try {
    return c.toNumbers().every((x) => x === 0);
  } catch {
    return false;
  }
}

function classifyTerm(ctx: Ctx, term: Value): MaskFacts {
  const facts: MaskFacts = { causal: false, padding: false, relativeBias: false, alibi: false, bias: false, nodes: new Set(), inputs: [] };
  const seen = new Set<Value>();
  const stack = [term];
  while (stack.length && facts.nodes.size < MAX_NODES) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (v.isGraphInput && !v.initializer) {
      facts.inputs.push(v);
      if (MASK_INPUT_NAME.test(v.name)) {
        if (hasQueryAxis(ctx, v)) facts.unexplained = true;
        else facts.padding = true;
      }
      continue;
    }
    const c = v.initializer ?? (v.producer?.opType === 'Constant' ? v.constant : undefined);
    if (c) {
      const band = bandWidth(c);
      if (band === Infinity) facts.causal = true;
      else if (band !== null) facts.window = band;
      continue;
    }
    const p = v.producer;
    if (!p) continue;
    facts.nodes.add(p);
    // Shape reads only the dimensions of its input, never its values: the mask's meaning does not depend on it.
    if (p.opType === 'Shape' || p.opType === 'Size') continue;
    // A data-dependent mask (block-sparse selection from Q and K) reaches the hidden states through a projection or a
    // normalization; what lies beyond (embeddings, earlier layers) says nothing about the mask.
    if (projectionOf(ctx, p) || NORMS.has(p.opType)) continue;
    if (p.opType === 'Trilu') readTrilu(ctx, p, facts);
    if (ORDER_CMP.has(p.opType)) readComparison(ctx, p, facts);
    if (p.opType === 'Mul' && p.inputs.some((i) => i && isSlopes(i)) && p.inputs.some((i) => i && fromRange(ctx, i))) facts.alibi = true;
    const table = p.opType === 'Gather' ? p.input(0)?.constant : undefined;
    if (table && table.dims.length === 2 && (table.dtype === 'float32' || table.dtype === 'float16') && isComputedIndex(p.input(1))) {
      // The bucket index says which table entry each pair reads, not which pairs are hidden: its comparisons of
      // distances (T5's `relative_position > 0`) are no mask.
      facts.relativeBias = true;
      continue;
    }
    for (const i of p.inputs) if (i) stack.push(i);
  }
  return facts;
}

/**
 * A mask given as an input that can differ from one query to the next: `[…, queries, keys]` with more than one query
 * (a 4-D extended mask, torch.nn's `[S, S]` src_mask). Only a `[batch, keys]` or `[…, 1, keys]` one is key padding,
 * which the compute-reducing forms read one row of; a square `[n, n]` is taken as queries × keys.
 */
function hasQueryAxis(ctx: Ctx, v: Value): boolean {
  const shape = ctx.shapes.shape(v);
  if (!shape || shape.length < 2) return false;
  const rows = shape[shape.length - 2];
  if (shape.length > 2) return rows !== 1;
  return rows !== null && rows !== 1 && rows === shape[1];
}

/**
 * A Trilu whose diagonal is the main one (offset 0 or ±1, or one read from a shape: the past length of a KV cache) is
 * causal; one offset k < −1 before it cuts a band of past keys (`tril(…).triu(-w)`, Mistral's reference code): triu
 * keeps key − query ≥ k, so its edge lies after distance −k (|k| + 1 keys), tril keeps key − query ≤ k, its edge before
 * distance −k (|k| keys), whichever side of the edge is the visible one. An offset k > 1 is no reading.
 */
function readTrilu(ctx: Ctx, p: Node, facts: MaskFacts): void {
  const k = p.input(1) ? scalarOf(ctx, p.input(1)) : 0;
  if (k === undefined || !isFixed(p.input(1)) || Math.abs(k) <= 1) facts.causal = true;
  else if (k > 1) facts.unexplained = true;
  else widen(facts, -k + ((attrInt(p, 'upper') ?? 1) === 1 ? 1 : 0));
}

/**
 * An ordering comparison of positions. Two ranges a constant apart: causal when they are at most one apart, else a
 * window. The distance between two ranges against a constant (`i − j < w`, `i − j ≥ 0`): the same reading. Anything
 * else that compares positions (`j < 5`, a computed threshold) cuts the scores some other way, and an unexplained cut
 * must make the mask a general one: called causal, a rewrite would read one row of it as the whole mask.
 */
function readComparison(ctx: Ctx, p: Node, facts: MaskFacts): void {
  const [a, b] = p.inputs;
  if (!a || !b) return;
  const [ra, rb] = [fromRange(ctx, a), fromRange(ctx, b)];
  if (ra && rb) {
    // a OP b with a − b = (X − Y) + off: (X − Y) OP −off.
    const off = offsetBetween(ctx, a, b);
    if (off !== undefined && Math.abs(off) > 1) widen(facts, bandKeys(p.opType, -off));
    else facts.causal = true;
    return;
  }
  if (ra === rb) return;
  const [pos, other] = ra ? [a, b] : [b, a];
  const w = isFixed(other) ? scalarOf(ctx, other) : undefined;
  if (w !== undefined && isDistance(ctx, pos)) {
    if (Math.abs(w) > 1) widen(facts, bandKeys(ra ? p.opType : FLIPPED[p.opType], w));
    else facts.causal = true;
  } else if (w === undefined || !alwaysTrue(p.opType, ra, w)) facts.unexplained = true;
}

const FLIPPED: Record<string, string> = { Less: 'Greater', Greater: 'Less', LessOrEqual: 'GreaterOrEqual', GreaterOrEqual: 'LessOrEqual' };

/**
 * How many keys a window keeps whose edge is `distance OP c` (the distance i − j, or j − i when c < 0): `d < c` and
 * its complement `d ≥ c` keep c keys (distances 0 … c − 1), `d ≤ c` and `d > c` keep c + 1. Whether the comparison
 * marks the visible or the hidden side, the edge is the same.
 */
function bandKeys(op: string, c: number): number {
  const inclusive = op === 'LessOrEqual' || op === 'Greater';
  return Math.abs(c) + (inclusive === c > 0 ? 1 : 0);
}

function widen(facts: MaskFacts, keys: number): void {
  facts.window = Math.max(facts.window ?? 0, keys);
}

/**
 * `position ≥ c` for c ≤ 0 (or `c ≤ position`): positions are never negative, so the comparison holds everywhere
 * (transformers' vmap-style masks AND such a bound into a padding mask).
 */
function alwaysTrue(op: string, positionFirst: boolean, c: number): boolean {
  const lower = positionFirst ? op === 'GreaterOrEqual' || op === 'Greater' : op === 'LessOrEqual' || op === 'Less';
  const strict = op === 'Greater' || op === 'Less';
  return lower && (strict ? c < 0 : c <= 0);
}

/** A difference of two position ranges (through ops that keep values), as `i − j` or `j − i`. */
function isDistance(ctx: Ctx, v: Value, depth = 6): boolean {
  const p = v.producer;
  if (!p || depth === 0) return false;
  if (p.opType === 'Sub') return p.inputs.every((i) => i && fromRange(ctx, i));
  if (['Unsqueeze', 'Reshape', 'Cast', 'Expand', 'Identity', 'Squeeze', 'Neg', 'Abs'].includes(p.opType)) return !!p.input(0) && isDistance(ctx, p.input(0)!, depth - 1);
  return false;
}

/**
 * Bucket indices computed in the graph (from positions, which are Shape-derived and so count as constant-like on the
 * data path), as opposed to a literal index into a constant table.
 */
function isComputedIndex(v: Value | null): boolean {
  // The exporter gives a layer whose buffer equals an earlier one's an Identity of it (LeViT's bias indexes).
  const root = v?.producer?.opType === 'Identity' ? v.producer.input(0) : v;
  return !!root && !root.constant && !root.initializer;
}

export function maskTypeOf(f: MaskFacts): MaskType {
  if (f.bias) return 'bias';
  if (f.window !== undefined) return 'sliding-window';
  if (f.relativeBias) return 'relative-bias';
  if (f.alibi) return 'alibi';
  if (f.causal && f.padding) return 'causal+padding';
  if (f.causal) return 'causal';
  if (f.padding) return 'padding';
  return f.nodes.size > 0 || f.inputs.length > 0 ? 'bias' : 'none';
}

/** Per-head constants shaped to broadcast over query and key positions: [heads, 1, 1] or [1, heads, 1, 1]. */
function isSlopes(v: Value): boolean {
  const t = constantOf(v);
  if (!t || t.dims.length < 3) return false;
  const d = t.dims;
  return d[d.length - 1] === 1 && d[d.length - 2] === 1 && d[d.length - 3] > 1;
}

/** The value is a position index: built from Range (or a cumulative sum of a mask) through shape-preserving ops. */
function fromRange(ctx: Ctx, v: Value, depth = 8): boolean {
  const p = v.producer;
  if (!p || depth === 0) return false;
  if (p.opType === 'Range' || p.opType === 'CumSum') return true;
  if (['Unsqueeze', 'Reshape', 'Cast', 'Clip', 'Expand', 'Slice', 'Add', 'Sub', 'Squeeze', 'Identity', 'Gather'].includes(p.opType)) {
    // Ranges are usually computed from Shape (constant-like for the data path), so no constant filter here.
    return p.inputs.some((i) => i && !i.initializer && fromRange(ctx, i, depth - 1));
  }
  return false;
}

/** For `a OP (b - w)` or `(a + w) OP b`: the constant offset w between the two ranges, if there is one. */
function offsetBetween(ctx: Ctx, a: Value, b: Value): number | undefined {
  const off = (v: Value): number => {
    let total = 0;
    let cur: Value | null = v;
    for (let i = 0; i < 6 && cur?.producer; i++) {
      const p: Node = cur.producer;
      if (p.opType === 'Add' || p.opType === 'Sub') {
        // The offset is the operand with a literal scalar value. One read from a shape is the cache's length (query
        // positions start after the past keys): known in a model exported with fixed shapes, and no window.
        const k = p.inputs.findIndex((x) => scalarOf(ctx, x) !== undefined && isFixed(x));
        if (k < 0) {
          const past = p.inputs.findIndex((x) => scalarOf(ctx, x) !== undefined);
          if (past < 0 || p.opType === 'Sub') break;
          cur = p.input(1 - past);
          continue;
        }
        const s = scalarOf(ctx, p.input(k))!;
        total += p.opType === 'Add' ? s : k === 1 ? -s : 0;
        cur = p.input(1 - k);
      } else if (['Unsqueeze', 'Cast', 'Clip', 'Reshape', 'Expand', 'Identity'].includes(p.opType)) cur = p.input(0);
      else break;
    }
    return total;
  };
  const d = off(a) - off(b);
  return d === 0 ? undefined : d;
}

/**
 * The keys a constant mask matrix lets each query see, when it is a lower band: Infinity for a causal triangle (key
 * j visible to query i iff j ≤ i), w for a sliding window (i − w < j ≤ i, GPT-Neo's local layers), null for anything
 * else. Only the first matrix is read, all of it: a band wider than any prefix one checks looks causal there.
 */
export function bandWidth(t: { dims: number[]; size: number; toNumbers(): number[] }): number | null {
  const d = t.dims;
  if (d.length < 2 || t.size > 1 << 22) return null;
  const rows = d[d.length - 2];
  const cols = d[d.length - 1];
  if (rows < 2 || cols < 2) return null;
  let vals: number[];
  try {
    vals = t.toNumbers();
  } catch {
    return null;
  }
  // Inside the band: the diagonal's value; outside: the value just above it.
  const inside = vals[0];
  const outside = vals[1];
  if (inside === outside) return null;
  // The band's width from the longest row: the first key it sees.
  const last = Math.min(rows, cols) - 1;
  let first = 0;
  while (first < last && vals[last * cols + first] !== inside) first++;
  const w = first === 0 ? Infinity : last - first + 1;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      if (vals[i * cols + j] !== (j <= i && i - j < w ? inside : outside)) return null;
    }
  }
  return w;
}
