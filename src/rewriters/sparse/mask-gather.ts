// The model's own mask, read only where a compute-reducing form computes scores. Those forms lay scores out as
// [B, H, nb, R, C]: nb query blocks of R rows, each against C keys whose positions an index J [jb, jh, nb, C] gives
// (the same for every row of a block). The mask M the model adds to its S×S scores is gathered at those positions, so
// its cost is that of the blocked scores, not S².
//
// Two ways, chosen per mask:
// - `keys`: M's rows are all alike except for causality (padding, causal, causal+padding masks, as the analysis
//   classifies them), so its last row, where every earlier key is causally visible, is the padding vector; the
//   rewrite applies exact causality itself. Cost O(nb·C), and M itself is not built (last-row.ts).
// - `rows`: any other mask (relative bias, ALiBi, an existing window): every row is gathered. Cost O(S·C).
// M may broadcast over batch and heads (dims of 1) while J varies over them; such dims of J move into the gathered
// axis, because GatherElements needs index dims no larger than the data's.
import type { Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import { attr } from '../../analysis/ir/builder';
import type { SiteOps } from './ops';
import { lastRow } from './last-row';
import { elemTypeOf } from './values';

export interface BlockIndex {
  /** int64 [jb, jh, nb, C]: the key position of each column of each block. Positions outside [0, Sk) are clamped by the caller. */
  j: Value;
  /** Whether J varies over batch (jb = B) and heads (jh = H); otherwise those dims are 1. */
  perBatch: boolean;
  perHead: boolean;
  /** Number of blocks (int64 scalar) and rows per block. */
  nb: Value;
  rows: number;
  /** Rows mode: the mask's row of blocked row r is r − front (front: int64 scalar); rows outside are padding. */
  front: Value;
  /** Rows mode: the mask's row count (Sq). */
  sq: Value;
  /** Rows mode: the mask row of the first blocked query (default 0; the first patch row after prefix tokens). */
  firstRow?: number;
}

/** M gathered into [b, h, nb, R or 1, C] (b, h: 1 or B, H), ready to broadcast against blocked scores. */
export function gatherMask(ops: SiteOps, shapes: ShapeInfo, mask: Value, mode: 'keys' | 'rows', ix: BlockIndex): Value {
  const dims = shapes.shape(mask) ?? [];
  const lead = 4 - dims.length;
  const d4 = [...Array(lead).fill(1), ...dims];
  const ones = { b: d4[0] === 1, h: d4[1] === 1, r: d4[2] === 1 };
  // The same for every key (a per-head temperature, SwinV2's logit scale): nothing to gather, and no key position
  // to gather it at; its rows, when it has several, are blocked like the scores'.
  if (dims.length > 0 && dims[dims.length - 1] === 1) {
    const m4 = lead > 0 ? ops.unsqueeze(mask, Array.from({ length: lead }, (_, i) => i), 'mask4') : mask;
    return ones.r ? ops.unsqueeze(m4, [2], 'blocked') : rowBlocks(ops, m4, ix);
  }
  const rowsMode = mode === 'rows' && !ones.r;
  // Keys mode reads the last row only, computed without the rest of the mask (last-row.ts).
  const source = rowsMode || ones.r || dims.length < 2 ? mask : lastRow(ops.b, shapes, mask, dims.length - 2);
  const m4 = lead > 0 ? ops.unsqueeze(source, Array.from({ length: lead }, (_, i) => i), 'mask4') : source;
  const foldB = ones.b && ix.perBatch;
  const foldH = ones.h && ix.perHead;

  // J over M's batch and head dims where M has them and J does not.
  const mShape = ops.shape(m4, 'mask_shape');
  const expandTo = ops.shapeOf([ops.vec(ops.dim(mShape, 0, 'mask_b')), ops.vec(ops.dim(mShape, 1, 'mask_h')), 1, 1], 'mask_bh');
  let j = ops.op('Expand', [ix.j, expandTo], 'j_expand');
  if (rowsMode) {
    // [b, h, nb, C] -> [b, h, nb, R, C]: one index row per score row.
    j = ops.unsqueeze(j, [3], 'j_rows');
    const jShape = ops.shape(j, 'j_shape');
    const target = ops.shapeOf([ops.slice(jShape, 0, 0, 3, 'j_lead'), ix.rows, ops.slice(jShape, 0, 4, 5, 'j_cols')], 'j_rows_target');
    j = ops.op('Expand', [j, target], 'j_rows_expand');
  }
  // Axis order of j now: 0 b, 1 h, then nb (, R), C. Move folded b/h right before the columns.
  const rest = rowsMode ? [2, 3] : [2];
  const colAxis = rowsMode ? 4 : 3;
  const kept = [...(foldB ? [] : [0]), ...(foldH ? [] : [1])];
  const folded = [...(foldB ? [0] : []), ...(foldH ? [1] : [])];
  const order = rowsMode ? [...kept, ...rest, ...folded, colAxis] : [...kept, ...folded, ...rest, colAxis];
  const jT = isIdentity(order) ? j : ops.transpose(j, order, 'j_order');
  const jTShape = ops.shape(jT, 'j_order_shape');
  // Index shaped like the data: kept b/h dims (else 1), then (rows mode) nb, R, then everything else flattened.
  // Kept dims lead jT (b before h); a folded b or h becomes a 1 in its own place.
  const keptDims = kept.map((_, i) => ops.vec(ops.dim(jTShape, i, 'j_kept')));
  const leadDims: (number | Value)[] = [0, 1].map((axis) => (kept.includes(axis) ? keptDims[kept.indexOf(axis)] : 1));
  let data: Value;
  let indexShape: Value;
  if (rowsMode) {
    const nbR = ops.slice(jTShape, 0, kept.length, kept.length + 2, 'j_nb_r');
    indexShape = ops.shapeOf([...leadDims, nbR, -1], 'index_shape');
    data = rowBlocks(ops, m4, ix);
  } else {
    indexShape = ops.shapeOf([...leadDims, 1, -1], 'index_shape');
    data = m4;
  }
  const index = ops.reshape(jT, indexShape, 'index');
  const gathered = ops.op('GatherElements', [data, index], 'gather', { axis: attr.int(rowsMode ? 4 : 3) });
  // Back to j's (reordered) shape, then to [b, h, nb, R|1, C].
  const unflat = ops.reshape(gathered, jTShape, 'unflatten');
  const back = order.map((_, axis) => order.indexOf(axis));
  const restored = isIdentity(back) ? unflat : ops.transpose(unflat, back, 'blocked_order');
  return rowsMode ? restored : ops.unsqueeze(restored, [3], 'blocked');
}

/** M4 [mb, mh, Sq, Sk] from `firstRow` on, with rows padded to nb·R (front rows first) and split: [mb, mh, nb, R, Sk]. */
function rowBlocks(ops: SiteOps, full: Value, ix: BlockIndex): Value {
  const m4 = ix.firstRow ? ops.slice(full, 2, ix.firstRow, Number.MAX_SAFE_INTEGER, 'rows_from_first') : full;
  const shape = ops.shape(m4, 'rows_shape');
  const total = ops.op('Mul', [ix.nb, ops.scalarI64(ix.rows, 'rows')], 'rows_total');
  const end = ops.op('Sub', [ops.op('Sub', [total, ix.front], 'rows_after_front'), ix.sq], 'rows_end');
  const bh = ops.slice(shape, 0, 0, 2, 'rows_bh');
  const sk = ops.slice(shape, 0, 3, 4, 'rows_sk');
  const dtype = elemTypeOf(m4);
  const fill = (n: Value, what: string) => {
    const s = ops.shapeOf([bh, ops.vec(n), sk], `${what}_shape`);
    // Padded rows are sliced off after ·V; any value of the mask's own type will do.
    const value = dtype === 'bool' ? attr.tensor([1], { dtype: 'bool', data: [false] })
      : dtype === 'float16' ? attr.tensor([1], { dtype: 'float16', data: Uint16Array.of(0) })
      : dtype === 'int64' ? attr.tensor([1], { dtype: 'int64', data: [0] })
      : attr.tensor([1], { dtype: 'float32', data: [0] });
    return ops.op('ConstantOfShape', [s], what, { value });
  };
  const padded = ops.concat([fill(ix.front, 'rows_front'), m4, fill(end, 'rows_back')], 2, 'rows_padded');
  return ops.reshape(padded, ops.shapeOf([bh, ops.vec(ix.nb), ix.rows, sk], 'rows_split'), 'row_blocks');
}

function isIdentity(perm: number[]): boolean {
  return perm.every((p, i) => p === i);
}
