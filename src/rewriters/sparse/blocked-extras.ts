// The compute-reducing form of the patterns built on a causal window (`sink`, `strided`, `power`; methods.md): the
// blocked window (blocked-window.ts) plus, per query block, a few more key columns: the keys the pattern adds beyond
// the window. Each query block then multiplies [window blocks | extra keys] in one product, so a query computes
// mR + C keys instead of Sk.
//
// Exactness: the window columns show exactly the keys with 0 ≤ i − j < W (the band table). The extra columns hold
// each extra position at most once per block, and their bias lets row i see column j only where the pattern allows it
// and i − j ≥ W, so no key is counted twice and none is missed. Columns outside [0, Sk) are masked like the window's
// padding; the model's own mask is gathered at every column's position (mask-gather.ts).
import type { Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import type { RawSite } from '../../analysis/attention/site';
import type { SiteInfo } from '../../analysis/report/types';
import type { RuleContext } from '../rule';
import { rewireBlocked } from './blocked-chain';
import { clampKeys, decodeWarnings, keyValid, windowBlocks, type BlockedWindow, type WindowBlocks } from './blocked-window';
import type { SiteOps } from './ops';

/** The extra key columns of every query block. */
export interface ExtraKeys {
  /** K and V at the extra positions: [B, H, nb, C, D] (per block) or [B, H, 1, C, D] (the same for every block). */
  k: Value;
  v: Value;
  perBlock: boolean;
  /** int64 [1 or H, nb or 1, C]: the absolute position of each extra column (outside [0, Sk) where padding). */
  pos: Value;
  perHead: boolean;
  /** [1, 1 or H, nb or 1, R, C]: 0 where the block's row r sees the column, the masking value elsewhere. */
  rowBias: Value;
}

export type ExtrasBuilder = (w: WindowBlocks) => ExtraKeys;

export function applyBlockedPattern(
  ctx: RuleContext, raw: RawSite, info: SiteInfo, ops: SiteOps, shapes: ShapeInfo,
  opts: { window: number; rows: number; modelMask: 'auto' | 'rows'; extraColumns: number }, extras: ExtrasBuilder,
): BlockedWindow | string {
  const w = windowBlocks(ctx, raw, ops, shapes, { window: opts.window, causal: true, rows: opts.rows });
  if (typeof w === 'string') return w;
  const e = extras(w);
  // Per-block copies of shared extras: [B, H, 1, C, E] -> [B, H, nb, C, E]. Copying K and V (C·E per block) costs
  // E/R of what a second product and a Concat of the scores would.
  const perBlock = (x: Value, tag: string) => (e.perBlock ? x : ops.op('Expand', [x, ops.shapeOf([1, 1, ops.vec(w.nb), 1, 1], `${tag}_blocks_shape`)], `${tag}_per_block`));
  const kAll = ops.concat([w.kWindows, perBlock(e.k, 'k_extra')], 3, 'k_columns');
  const vAll = ops.concat([w.vWindows, perBlock(e.v, 'v_extra')], 3, 'v_columns');
  const scores = ops.op('MatMul', [w.qBlocks, ops.transpose(kAll, [0, 1, 2, 4, 3], 'kt_blocked')], 'qk');

  // Positions of all columns, [1 or H, nb, L + C].
  const heads = e.perHead ? ops.slice(ops.shape(e.pos, 'extra_pos_shape'), 0, 0, 1, 'extra_heads') : ops.i64([1], 'one_head');
  const posShape = (cols: Value) => ops.shapeOf([heads, ops.vec(w.nb), cols], 'pos_shape');
  const windowPos = ops.op('Expand', [ops.unsqueeze(w.keyPos, [0], 'window_pos'), posShape(ops.i64([w.L], 'window_cols'))], 'window_pos_heads');
  const extraCols = ops.slice(ops.shape(e.pos, 'extra_shape'), 0, 2, 3, 'extra_cols');
  const extraPos = ops.op('Expand', [e.pos, posShape(extraCols)], 'extra_pos_blocks');
  const pos = ops.concat([windowPos, extraPos], 2, 'column_pos');
  const bias = ops.unsqueeze(keyValid(ops, pos, w.sk, 'column'), [0, 3], 'column_bias');
  // The band, broadcast to the extras' bias but for its last axis, then both side by side.
  const biasShape = ops.shape(e.rowBias, 'extra_bias_shape');
  const band = ops.op('Expand', [w.band, ops.shapeOf([ops.slice(biasShape, 0, 0, 4, 'extra_bias_lead'), w.L], 'band_target')], 'band_like_extra');
  const rowBias = ops.concat([band, e.rowBias], 4, 'row_bias');

  const index = { j: ops.unsqueeze(clampKeys(ops, pos, w.sk), [0], 'key_index'), perBatch: false, perHead: e.perHead, nb: w.nb, rows: w.R, front: ops.scalarI64(0, 'zero_i'), sq: w.sq };
  rewireBlocked(ctx, ops, shapes, w.chain, info, { scores, bias, rowBias, values: vAll, index, front: null, sq: w.sq }, opts.modelMask);
  return { rows: w.R, keys: w.L + opts.extraColumns, warnings: decodeWarnings(info, w.R, w.L) };
}

/** [.., C] key positions against the blocked query rows: row i sees column j where j ≤ i − W (beyond the window). */
export function beyondWindow(ops: SiteOps, w: WindowBlocks, window: number, keyPos: Value): Value {
  const lastSeen = ops.op('Sub', [ops.unsqueeze(w.queryPos, [2], 'query_col'), ops.scalarI64(window, 'window')], 'last_beyond'); // [nb, R, 1]
  return ops.op('LessOrEqual', [keyPos, lastSeen], 'beyond_window');
}
