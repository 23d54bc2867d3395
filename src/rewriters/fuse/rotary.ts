// An operand of the fused operator that leaves an exported rotary embedding (rotary-match.ts) is fed as
//   3-D projection output [B, S, heads·D] → com.microsoft RotaryEmbedding (num_heads, interleaved 0) → the operator,
// so that neither the written-out rotation nor the head transposes around it are computed (bench:attention-ops: 56
// CPU ms per llama-long layer at 4096 tokens as exported, 19 as RotaryEmbedding). A K the operator reads 4-D or after
// a KV-cache Concat is rotated the same way in place: RotaryEmbedding's result, put back in the exported layout,
// replaces the exported rotation for all its readers.
//
// RotaryEmbedding reads row position_ids[b, s] of half-width tables. To give every token exactly the row the exported
// Mul used, whatever the model's positions are (arange, an input, derived from padding), the tables are the exported
// cos and sin themselves, broadcast to [B, 1, S, D] by an Expand on the operand's own batch and length (a table that
// does not broadcast so, or broadcasts beyond B·S rows, fails at run time), cut to their first half and laid out as
// [B·S, D/2]; position_ids are then 0 … B·S − 1 as [B, S]. These nodes are built once per pair of tables and shared
// by Q and K and by every layer: RotaryEmbedding checks that position_ids are [B, S] of its own input, so an operand
// of another batch or length fails loudly instead of reading a wrong row.
import { attrInt } from '../../analysis/attention/match';
import { attr, type GraphBuilder } from '../../analysis/ir/builder';
import type { Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import type { SiteOps } from '../sparse/ops';
import { B, BPHD, H, P, peel, permTo, pick, type Operand, type Stage } from './operands';
import { matchRotary, type RotaryMatch } from './rotary-match';

export interface RopePlan {
  match: RotaryMatch;
  /** Axes of the rotated tensor (the stage the rotary writes). */
  axes: number[];
  /** The rotary's input as RotaryEmbedding will read it: a [B, S, heads, D] stage when there is one; its factor counts
   * the constant factors on both sides of the rotation (it is linear, so they all join the operator's scale). */
  input: Stage;
  heads: number;
  /**
   * The operator does not read the rotated tensor 3-D (a K that is 4-D for the operator, or concatenated with a KV
   * cache first): RotaryEmbedding's result then takes the rotated tensor's place, in its layout, for every reader.
   */
  inPlace: boolean;
}

/** Tables already built in this rewrite, by the cos and sin values they come from. */
export type RopeCache = Map<string, { positions: Value; cos: Value; sin: Value }>;

/**
 * The rotary to absorb into an operand read 3-D: the one writing its deepest stage with `heads` heads. undefined when
 * there is none; a string when there is one that cannot be proven exact as RotaryEmbedding (it then stays as exported).
 */
export function ropeOf(shapes: ShapeInfo, x: Operand, heads: number, headDim: number): RopePlan | string | undefined {
  const at = x.stages.filter((s) => s.heads === heads).at(-1);
  return at ? ropeAt(shapes, at, headDim, false) : undefined;
}

/**
 * The rotary to rewrite in place for an operand read 4-D: the one writing its deepest stage, or the new keys that a
 * KV-cache Concat appends (along the positions) to the past ones there. In place, what reads the rotation does not
 * matter to exactness: each reader gets the same tensor from RotaryEmbedding.
 */
export function ropeInPlace(shapes: ShapeInfo, x: Operand, headDim: number): RopePlan | string | undefined {
  const last = x.stages[x.stages.length - 1];
  const p = last.value.producer;
  const axis = p?.opType === 'Concat' ? attrInt(p, 'axis') : undefined;
  if (!p || axis === undefined || (axis < 0 ? axis + 4 : axis) !== last.axes.indexOf(P)) return ropeAt(shapes, last, headDim, true);
  const found = p.inputs.map((i) => (i ? ropeAt(shapes, { ...last, value: i }, headDim, true) : undefined)).filter((r) => r !== undefined);
  return found.length === 1 ? found[0] : undefined;
}

function ropeAt(shapes: ShapeInfo, at: Stage, headDim: number, inPlace: boolean): RopePlan | string | undefined {
  const match = matchRotary(shapes, at.value, at.axes, headDim);
  if (!match || typeof match === 'string') return match ?? undefined;
  const heads = at.heads;
  const inner = pick(peel(shapes, match.x, at.axes, { heads, kvHeads: heads, factors: !inPlace, repeat: false }), heads, BPHD)!;
  // In place, the factors around the rotation stay in the graph (none is peeled off before it, those after it are read).
  return { match, axes: at.axes, input: { ...inner, factor: inPlace ? 1 : inner.factor * at.factor }, heads, inPlace };
}

/** RotaryEmbedding of the operand's 3-D form `flat` ([B, S, heads·D]). */
export function rotate(b: GraphBuilder, ops: SiteOps, rope: RopePlan, flat: Value, headDim: number, cache: RopeCache, what: string): Value {
  const t = tables(ops, rope, flat, headDim, cache);
  return b.op('RotaryEmbedding', [flat, t.positions, t.cos, t.sin], {
    name: ops.name(`${what}_rotary`),
    domain: 'com.microsoft',
    attrs: { num_heads: attr.int(rope.heads), interleaved: attr.int(0) },
  });
}

function tables(ops: SiteOps, rope: RopePlan, flat: Value, headDim: number, cache: RopeCache): { positions: Value; cos: Value; sin: Value } {
  const key = `${rope.match.cos.name}|${rope.match.sin.name}|${rope.axes.join()}`;
  const known = cache.get(key);
  if (known) return known;
  const shape = ops.shape(flat, 'rope_shape');
  const [batch, length] = [ops.dim(shape, 0, 'rope_batch'), ops.dim(shape, 1, 'rope_len')];
  const [bv, sv] = [ops.vec(batch, 'rope_batch_vec'), ops.vec(length, 'rope_len_vec')];
  // The exported Mul's broadcast, restricted to one head: the table on the operand's axes with the heads axis at 1.
  const grid = ops.shapeOf(rope.axes.map((a) => (a === B ? bv : a === P ? sv : a === H ? 1 : headDim)), 'rope_grid');
  // The heads axis is 1 here, so only a batch axis after the positions needs a transpose to put rows in (b, s) order.
  const perm = rope.axes.indexOf(B) > rope.axes.indexOf(P) ? permTo(rope.axes, BPHD) : null;
  const count = ops.op('Mul', [batch, length], 'rope_tokens');
  // Exactly B·S rows: a table that Expand would broadcast beyond the operand (more batch rows or positions than it
  // has, which the exported Mul would have broadcast the operand to) makes this Reshape fail instead.
  const rowsShape = ops.shapeOf([ops.vec(count, 'rope_tokens_vec'), headDim], 'rope_rows');
  const half = (table: Value, what: string) => {
    let t = ops.op('Expand', [table, grid], `${what}_grid`);
    if (perm) t = ops.transpose(t, perm, `${what}_bshd`);
    return ops.slice(ops.reshape(t, rowsShape, `${what}_rows`), 1, 0, headDim / 2, `${what}_cache`);
  };
  const positions = ops.reshape(ops.range(count, 'rope_range'), ops.shapeOf([bv, sv], 'rope_ids_shape'), 'rope_position_ids');
  const built = { positions, cos: half(rope.match.cos, 'rope_cos'), sin: half(rope.match.sin, 'rope_sin') };
  cache.set(key, built);
  return built;
}

/**
 * After the site's written-out nodes are gone: when something else still reads the exported rotary's output (a
 * present_key graph output, another consumer), it reads RotaryEmbedding's result in the exported layout instead, so the
 * written-out rotation is not computed twice. `rotated` is the [B, S, heads·D] RotaryEmbedding output.
 */
export function rehomeReaders(b: GraphBuilder, ops: SiteOps, rope: RopePlan, rotated: Value, headDim: number, what: string): boolean {
  const out = rope.match.add.outputs[0];
  if (!b.graph.nodes.includes(rope.match.add) || (out.uses.length === 0 && !out.isGraphOutput)) return false;
  const split = ops.reshape(rotated, ops.i64([0, 0, rope.heads, headDim], `${what}_rotary_heads`), `${what}_rotary_bshd`);
  const perm = permTo(BPHD, rope.axes);
  b.replaceAllUses(out, perm ? ops.transpose(split, perm, `${what}_rotary_layout`) : split, { graphOutputs: true });
  return true;
}
