// The compute-reducing sliding window for written-out sites. Queries are cut into blocks of R rows; block b (absolute
// positions past + bR … past + bR + R − 1) needs keys from W − 1 before its first query (and, two-sided, W − 1 after
// its last), which are the m = a + 1 (two-sided 2a + 1) key blocks starting a = ⌈(W − 1)/R⌉ blocks back. Keys are
// padded by a·R positions in front, so block b's keys are blocks b … b + m − 1 of the padded sequence, taken by one
// Gather. Scores are then [B, H, nb, R, mR] instead of [B, H, S, S]: cost O(S·(W + R)) instead of O(S²).
//
// Masking inside the blocks is exact: query row r and key column t of any block are r − t + a·R positions apart, a
// constant table; keys outside [0, Sk) (the padding) are masked per block; the model's own mask is gathered at the
// same positions (mask-gather.ts). The site's own element-wise ops (scale, mask add, casts, NaN guard) stay where they
// are and now see blocked tensors. Softmax keeps its node and name. Every layout change is a Reshape (no copy) except
// Kᵀ, whose Transpose of the last two axes onnxruntime folds into the product (FusedMatMul with transB).
import { attr } from '../../analysis/ir/builder';
import type { Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import type { RawSite } from '../../analysis/attention/site';
import type { SiteInfo } from '../../analysis/report/types';
import type { RuleContext } from '../rule';
import { rewireBlocked } from './blocked-chain';
import { padRows } from './blocks';
import type { BlockIndex } from './mask-gather';
import type { SiteOps } from './ops';
import { blockableChain, type ScoreChain } from './score-chain';

export interface BlockedWindow {
  /** Query rows per block (R) and keys computed per query (mR). */
  rows: number;
  keys: number;
  warnings: string[];
}

/**
 * Default rows per block: about half the window, between 16 and 128. Smaller blocks waste fewer keys (mR − W per row)
 * but multiply small products and window copies; on the 2-core CPU of docs/rewrite-benchmarks.md, window 256 was
 * fastest with 128 rows (then 64; 32 and 256 were clearly slower).
 */
export function defaultBlockRows(window: number): number {
  let r = 16;
  while (r < 128 && r * 2 < window) r *= 2;
  return r;
}

export function blockedKeys(window: number, rows: number, causal: boolean): number {
  const a = Math.ceil((window - 1) / rows);
  return (causal ? a + 1 : 2 * a + 1) * rows;
}

/** The window's blocks of one site: what the plain blocked window multiplies, and what the patterns built on a window
 * (sink, strided, power) extend with more key columns. */
export interface WindowBlocks {
  chain: ScoreChain;
  R: number;
  /** Key columns per query block (m·R) and front padding of the keys (a·R). */
  L: number;
  F: number;
  sq: Value;
  sk: Value;
  past: Value;
  /** Query blocks (int64 scalar). */
  nb: Value;
  /** Q [B, H, nb, R, D]; K and V as they enter the products ([B, H, Sk, D]); their windows [B, H, nb, L, D|E]. */
  qBlocks: Value;
  k: Value;
  v: Value;
  kWindows: Value;
  vWindows: Value;
  /** int64 [nb, R]: the absolute position of each blocked query row. */
  queryPos: Value;
  /** int64 [nb, L]: the absolute position of each window column (outside [0, Sk) for padding). */
  keyPos: Value;
  /** [1, 1, 1, R, L]: 0 inside the window, the masking value outside. */
  band: Value;
}

/** The site's window blocks, or why its scores cannot be blocked. */
export function windowBlocks(
  ctx: RuleContext, raw: RawSite, ops: SiteOps, shapes: ShapeInfo, opts: { window: number; causal: boolean; rows: number },
): WindowBlocks | string {
  const operands = blockableChain(ctx.builder.graph, shapes, raw);
  if (typeof operands === 'string') return operands;
  const { chain, q, kt, v } = operands;
  const R = opts.rows;
  const W = opts.window;
  const a = Math.ceil((W - 1) / R);
  const m = opts.causal ? a + 1 : 2 * a + 1;
  const F = a * R;
  const L = m * R;

  const qShape = ops.shape(q, 'q_shape');
  const sq = ops.dim(qShape, 2, 'sq');
  const sk = ops.dim(ops.shape(kt, 'kt_shape'), 3, 'sk');
  const past = ops.op('Sub', [sk, sq], 'past');
  const nb = ops.ceilDiv(sq, R, 'blocks');
  const padQ = ops.op('Sub', [ops.op('Mul', [nb, ops.scalarI64(R, 'rows')], 'rows_total'), sq], 'pad_q');

  // Q [B, H, Sq, D] -> [B, H, nb, R, D]
  const qBlocks = ops.reshape(padRows(ops, q, null, padQ, 'q'), ops.shapeOf([ops.slice(qShape, 0, 0, 2, 'q_bh'), ops.vec(nb), R, ops.vec(ops.dim(qShape, 3, 'd'))], 'q_split'), 'q_blocks');
  // K and V [B, H, Sk, E] -> [B, H, nb, mR, E]: m shifted key blocks per query block.
  const tail = ops.op('Add', [padQ, ops.scalarI64((m - 1 - a) * R, 'tail')], 'pad_k');
  // Which padded key block each window slot reads: query block b takes blocks b … b + m − 1 (one Gather, one copy).
  const slotBlocks = ops.op('Add', [ops.unsqueeze(ops.range(nb, 'window_block'), [1], 'window_block_col'), ops.const('window_slots', [1, m], { dtype: 'int64', data: Array.from({ length: m }, (_, c) => c) })], 'window_blocks');
  const nbk = ops.op('Add', [nb, ops.scalarI64(m - 1, 'm1')], 'key_blocks');
  const windows = (x: Value, tag: string): Value => {
    const xShape = ops.shape(x, `${tag}_shape`);
    const bh = ops.slice(xShape, 0, 0, 2, `${tag}_bh`);
    const e = ops.slice(xShape, 0, 3, 4, `${tag}_e`);
    // Queries start at `past` (0 without cached keys): the windows begin there.
    const padded = padRows(ops, x, F > 0 ? ops.scalarI64(F, 'front') : null, tail, tag);
    const from = ops.slice(padded, 2, past, ops.op('Add', [past, ops.op('Mul', [nbk, ops.scalarI64(R, 'rows')], `${tag}_span`)], `${tag}_end`), `${tag}_from_past`);
    const split = ops.reshape(from, ops.shapeOf([bh, ops.vec(nbk), R, e], `${tag}_split`), `${tag}_key_blocks`);
    if (m === 1) return split;
    const gathered = ops.op('Gather', [split, slotBlocks], `${tag}_window_blocks`, { axis: attr.int(2) }); // [B, H, nb, m, R, E]
    return ops.reshape(gathered, ops.shapeOf([bh, ops.vec(nb), L, e], `${tag}_windows_shape`), `${tag}_windows`);
  };
  const k = ops.transpose(kt, [0, 1, 3, 2], 'k');

  // Positions: block b's rows are past + bR + r, its columns past + bR − F + t.
  const blockRows = ops.op('Add', [ops.op('Mul', [ops.range(nb, 'block'), ops.scalarI64(R, 'rows')], 'block_rows'), past], 'block_first_query');
  const blockCol = ops.unsqueeze(blockRows, [1], 'block_col');
  const queryPos = ops.op('Add', [blockCol, ops.const('row_offsets', [1, R], { dtype: 'int64', data: Array.from({ length: R }, (_, r) => r) })], 'query_pos');
  const keyPos = ops.op('Add', [ops.op('Sub', [blockCol, ops.scalarI64(F, 'front')], 'block_first_key'), ops.const('cols', [1, L], { dtype: 'int64', data: Array.from({ length: L }, (_, t) => t) })], 'key_pos');
  const band = ops.floats(bandTable(R, L, F, W, opts.causal), [1, 1, 1, R, L], 'band');
  return { chain, R, L, F, sq, sk, past, nb, qBlocks, k, v, kWindows: windows(k, 'k'), vWindows: windows(v, 'v'), queryPos, keyPos, band };
}

/** 0 where 0 ≤ position < Sk, the masking value elsewhere. */
export function keyValid(ops: SiteOps, pos: Value, sk: Value, what: string): Value {
  const inside = ops.op('And', [ops.op('Not', [ops.op('Less', [pos, ops.scalarI64(0, 'zero_i')], `${what}_before_start`)], `${what}_after_start`), ops.op('Less', [pos, sk], `${what}_before_end`)], `${what}_valid`);
  return ops.additive(inside, `${what}_valid_bias`);
}

/** Positions clamped into [0, Sk), for gathering the model's mask (columns outside are masked by keyValid). */
export function clampKeys(ops: SiteOps, pos: Value, sk: Value): Value {
  return ops.op('Min', [ops.op('Max', [pos, ops.scalarI64(0, 'zero_i')], 'key_lo'), ops.op('Sub', [sk, ops.scalarI64(1, 'one_i')], 'last_key')], 'key_clamped');
}

/** Rewrites the site in place, or returns why it cannot (the caller then uses the mask form). */
export function applyBlockedWindow(
  ctx: RuleContext, raw: RawSite, info: SiteInfo, ops: SiteOps, shapes: ShapeInfo,
  opts: { window: number; causal: boolean; rows: number; modelMask: 'auto' | 'rows' },
): BlockedWindow | string {
  const w = windowBlocks(ctx, raw, ops, shapes, opts);
  if (typeof w === 'string') return w;
  const ktBlocks = ops.transpose(w.kWindows, [0, 1, 2, 4, 3], 'kt_blocked');
  const scores = ops.op('MatMul', [w.qBlocks, ktBlocks], 'qk');
  const bias = ops.op('Add', [w.band, ops.unsqueeze(keyValid(ops, w.keyPos, w.sk, 'key'), [0, 1, 3], 'key_valid_blocks')], 'window_bias');
  // The model's masks are read at the same key positions.
  const index: BlockIndex = { j: ops.unsqueeze(clampKeys(ops, w.keyPos, w.sk), [0, 1], 'key_index'), perBatch: false, perHead: false, nb: w.nb, rows: w.R, front: ops.scalarI64(0, 'zero_i'), sq: w.sq };
  rewireBlocked(ctx, ops, shapes, w.chain, info, { scores, bias, values: w.vWindows, index, front: null, sq: w.sq }, opts.modelMask);
  return { rows: w.R, keys: w.L, warnings: decodeWarnings(info, w.R, w.L) };
}

export function decodeWarnings(info: SiteInfo, R: number, L: number): string[] {
  if (!info.kvCache.reads) return [];
  return [`site ${info.id}: the blocked form pads a single decoding query to a block of ${R} rows (${L} keys each); for one-token steps the mask form computes less`];
}

/** 0 where query row r and key column t of a block are inside the window, the masking value elsewhere. */
export function bandTable(R: number, L: number, F: number, W: number, causal: boolean): number[] {
  const NEG = -3.4028234663852886e38;
  const t: number[] = [];
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < L; c++) {
      const d = r - c + F; // i − j
      t.push((causal ? d >= 0 && d < W : Math.abs(d) < W) ? 0 : NEG);
    }
  }
  return t;
}
