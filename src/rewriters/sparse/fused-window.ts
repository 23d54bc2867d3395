// The compute-reducing window on a fused GroupQueryAttention site, for providers whose GroupQueryAttention kernel does
// not skip what `local_window_size` hides. onnxruntime 1.29's CPU kernel (MlasFlashAttentionGQA) stops each query block
// at the causal diagonal but starts every row at key 0, so a 256-key window costs what full causal attention costs
// (docs/rewrite-benchmarks.md). Here the query blocks are folded into the batch of one com.microsoft
// MultiHeadAttention: batch item (b, j) is the R queries of block j against the L = mR keys its window touches
// (gathered, as the written-out blocked window does, blocked-window.ts), with one additive bias [B·nb, 1 or H, R, L]
// that holds the window band, the keys outside [0, total_b) (total_b = seqlens_k[b] + 1, GroupQueryAttention's right
// padding) and the operator's own attention_bias read at the same (query, key) positions. The scores computed are
// S·L per head instead of about S²/2; the operator stays fused (no score tensor in the graph).
//
// Exact for the rows GroupQueryAttention defines: a query row whose window holds no valid key (only rows past
// total_b, i.e. padding) gets a uniform average instead of the kernel's result, as the fuse rule documents for fully
// masked rows. Refused, with the reason, where GroupQueryAttention computes something MultiHeadAttention does not
// (a KV cache, rotary embedding, soft-capping, smooth softmax, head sinks), packs Q, K and V into one input, or is
// float16 (onnxruntime 1.29's CPU MultiHeadAttention is float32 only).
import { attr } from '../../analysis/ir/builder';
import type { Node, Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import { FUSED_INPUTS } from '../../analysis/attention/fused';
import { attrFloat, attrInt } from '../../analysis/attention/match';
import type { RuleContext } from '../rule';
import { bandTable, clampKeys } from './blocked-window';
import { lastRow } from './last-row';
import type { FloatType, SiteOps } from './ops';

const GQA = FUSED_INPUTS['com.microsoft.GroupQueryAttention'];

export interface FusedBlockedWindow {
  rows: number;
  /** Keys computed per query (L = mR). */
  keys: number;
}

/** Why this GroupQueryAttention node cannot become per-block MultiHeadAttention, or null when it can. */
export function fusedBlocksReason(n: Node, shapes: ShapeInfo, float: FloatType): string | null {
  if (!n.input(GQA.key) || !n.input(GQA.value)) return 'Q, K and V are packed into one input';
  if (n.input(GQA.pastKey) || n.input(GQA.pastValue)) return 'a KV cache is in use (past_key/past_value)';
  if (attrInt(n, 'do_rotary') === 1) return 'the operator applies rotary embedding itself (do_rotary)';
  if ((attrFloat(n, 'softcap') ?? 0) !== 0) return 'soft-capping, which MultiHeadAttention does not compute';
  if (attrInt(n, 'smooth_softmax') === 1 || n.input(GQA.headSink)) return 'smooth softmax or head sinks, which MultiHeadAttention does not compute';
  if (n.outputs.slice(1).some((o) => o.uses.length > 0 || o.isGraphOutput)) return 'its present_key/present_value outputs are read';
  const q = shapes.shape(n.input(GQA.query));
  if (q?.length !== 3 || typeof q[2] !== 'number') return 'the width of Q is not known';
  // onnxruntime 1.29 registers MultiHeadAttention on the CPU provider for float32 only (GroupQueryAttention for both).
  if (float !== 'float32') return `a ${float} site: onnxruntime's CPU MultiHeadAttention computes float32 only`;
  return null;
}

/** Rewrites the GroupQueryAttention node `n` into the per-block form (the caller checked fusedBlocksReason). */
export function applyFusedBlockedWindow(ctx: RuleContext, n: Node, ops: SiteOps, shapes: ShapeInfo, opts: { window: number; rows: number; keysOnly: boolean }): FusedBlockedWindow {
  const b = ctx.builder;
  const heads = attrInt(n, 'num_heads')!;
  const kvHeads = attrInt(n, 'kv_num_heads') ?? heads;
  const width = shapes.shape(n.input(GQA.query))![2] as number;
  const headDim = width / heads;
  // An existing window is only ever narrowed (as local_window_size would be).
  const had = attrInt(n, 'local_window_size') ?? -1;
  const W = had > 0 ? Math.min(had, opts.window) : opts.window;
  const R = opts.rows;
  const a = Math.ceil((W - 1) / R);
  const F = a * R;
  const L = (a + 1) * R;

  const q = n.input(GQA.query)!;
  const qShape = ops.shape(q, 'q_shape');
  const batch = ops.dim(qShape, 0, 'batch');
  const sq = ops.dim(qShape, 1, 'sq');
  const nb = ops.ceilDiv(sq, R, 'blocks');
  const padQ = ops.op('Sub', [ops.op('Mul', [nb, ops.scalarI64(R, 'rows')], 'rows_total'), sq], 'pad_q');
  const zeros = (x: Value, rows: Value, what: string) =>
    ops.zeros(ops.shapeOf([ops.vec(batch), ops.vec(rows), ops.slice(ops.shape(x, `${what}_shape`), 0, 2, 3, `${what}_width`)], `${what}_zeros_shape`), `${what}_zeros`);

  // Q [B, S, H·D] -> [B·nb, R, H·D]: padding rows, then a reshape.
  const qBlocks = ops.reshape(ops.concat([q, zeros(q, padQ, 'q_pad')], 1, 'q_padded'), ops.i64([-1, R, width], 'q_blocks_shape'), 'q_blocks');
  // K and V [B, S, kvH·D] -> [B·nb, L, H·D]: F zero rows in front, the block tail behind, key blocks j … j + a per
  // query block (one Gather), grouped heads repeated for MultiHeadAttention.
  const slots = ops.op('Add', [ops.unsqueeze(ops.range(nb, 'window_block'), [1], 'window_block_col'), ops.const('window_slots', [1, a + 1], { dtype: 'int64', data: Array.from({ length: a + 1 }, (_, c) => c) })], 'window_blocks');
  const nbk = ops.op('Add', [nb, ops.scalarI64(a, 'a')], 'key_blocks');
  const windows = (x: Value, tag: string): Value => {
    const front = F > 0 ? [ops.zeros(ops.shapeOf([ops.vec(batch), F, ops.slice(ops.shape(x, `${tag}_shape`), 0, 2, 3, `${tag}_width`)], `${tag}_front_shape`), `${tag}_front`)] : [];
    const padded = ops.concat([...front, x, zeros(x, padQ, `${tag}_pad`)], 1, `${tag}_padded`);
    const kvWidth = kvHeads * headDim;
    const split = ops.reshape(padded, ops.shapeOf([ops.vec(batch), ops.vec(nbk), R, kvWidth], `${tag}_split`), `${tag}_key_blocks`);
    const gathered = ops.op('Gather', [split, slots], `${tag}_window_blocks`, { axis: attr.int(1) }); // [B, nb, a+1, R, kvH·D]
    if (kvHeads === heads) return ops.reshape(gathered, ops.i64([-1, L, width], `${tag}_windows_shape`), `${tag}_windows`);
    const perHead = ops.reshape(gathered, ops.i64([-1, L, kvHeads, 1, headDim], `${tag}_kv_heads_shape`), `${tag}_kv_heads`);
    const repeated = ops.op('Expand', [perHead, ops.i64([1, 1, 1, heads / kvHeads, 1], `${tag}_repeat`)], `${tag}_repeated`);
    return ops.reshape(repeated, ops.i64([-1, L, width], `${tag}_windows_shape`), `${tag}_windows`);
  };

  // Positions: block j's rows are jR + r, its columns jR − F + t.
  const blockFirst = ops.unsqueeze(ops.op('Mul', [ops.range(nb, 'block'), ops.scalarI64(R, 'rows')], 'block_rows'), [1], 'block_col');
  const queryPos = ops.op('Add', [blockFirst, ops.const('row_offsets', [1, R], { dtype: 'int64', data: Array.from({ length: R }, (_, r) => r) })], 'query_pos');
  const keyPos = ops.op('Add', [ops.op('Sub', [blockFirst, ops.scalarI64(F, 'front')], 'block_first_key'), ops.const('cols', [1, L], { dtype: 'int64', data: Array.from({ length: L }, (_, t) => t) })], 'key_pos');
  const bias = blockBias(ops, shapes, n, { batch, nb, queryPos, keyPos, R, L, F, W }, opts.keysOnly);

  const mha = b.node('MultiHeadAttention', [qBlocks, windows(n.input(GQA.key)!, 'k'), windows(n.input(GQA.value)!, 'v'), null, null, bias], {
    name: ops.name('op'),
    domain: 'com.microsoft',
    // The same scale: GroupQueryAttention's 0 or absent means 1/√D, as MultiHeadAttention's does.
    attrs: { num_heads: attr.int(heads), ...((attrFloat(n, 'scale') ?? 0) !== 0 ? { scale: attr.float(attrFloat(n, 'scale')!) } : {}) },
  });
  // [B·nb, R, H·D] -> [B, nb·R, H·D] -> the first S rows.
  const merged = ops.reshape(mha.outputs[0], ops.shapeOf([ops.vec(batch), -1, width], 'out_merge'), 'out_rows');
  const out = ops.slice(merged, 1, 0, sq, 'out');
  b.replaceAllUses(n.outputs[0], out, { graphOutputs: true });
  const name = n.name;
  b.removeNode(n);
  b.renameNode(mha, name);
  // What only fed the operator (its bias broadcast, its length inputs) goes with it.
  b.removeUnused();
  return { rows: R, keys: L };
}

/**
 * Where to read the operator's bias from: through an Expand of a rank-4 tensor (how `fuse` broadcasts a shared mask
 * to [.., S, T]), its source, so that the S×T copy is not made; the index below reads a broadcast (size-1) axis at 0.
 */
function biasSource(bias: Value | null, shapes: ShapeInfo): Value | null {
  const p = bias?.producer;
  if (p?.opType !== 'Expand' || (p.domain !== '' && p.domain !== 'ai.onnx')) return bias;
  const src = p.input(0);
  return src && shapes.shape(src)?.length === 4 ? src : bias;
}

interface BlockGeometry { batch: Value; nb: Value; queryPos: Value; keyPos: Value; R: number; L: number; F: number; W: number }

/**
 * [B·nb, 1 or H, R, L]: the causal window band (a constant table), the keys outside [0, total_b), and the operator's
 * own attention_bias [B or 1, H or 1, S or 1, T or 1] read at each block's (query, key) positions with one Gather over
 * its flattened last two axes (only S·L values per head are read, never the S×T matrix again).
 */
function blockBias(ops: SiteOps, shapes: ShapeInfo, n: Node, g: BlockGeometry, keysOnly: boolean): Value {
  const band = ops.floats(bandTable(g.R, g.L, g.F, g.W, true), [1, 1, 1, g.R, g.L], 'band');
  // total_b = seqlens_k[b] + 1: GroupQueryAttention's keys for batch row b are [0, total_b).
  const total = ops.op('Add', [ops.cast(n.input(GQA.seqlensK)!, 'int64', 'seqlens_k'), ops.scalarI64(1, 'one_i')], 'total_b');
  const totalCol = ops.reshape(total, ops.i64([-1, 1, 1], 'total_col_shape'), 'total_col'); // [B, 1, 1]
  const valid = ops.op('And', [
    ops.op('Not', [ops.op('Less', [g.keyPos, ops.scalarI64(0, 'zero_i')], 'key_before_start')], 'key_after_start'),
    ops.op('Less', [ops.unsqueeze(g.keyPos, [0], 'key_pos_b'), totalCol], 'key_before_end'),
  ], 'key_valid'); // [B, nb, L]
  let sum = ops.op('Add', [band, ops.unsqueeze(ops.additive(valid, 'key_valid_bias'), [1, 3], 'key_valid_blocks')], 'window_bias'); // [B, 1, nb, R, L]
  const source = biasSource(n.input(GQA.attentionBias), shapes);
  // A padding/causal mask's rows differ only by causality, which the band applies: its last row, computed without the
  // rest of the mask (last-row.ts), is read at every row (the index below clamps rows to it).
  const own = source && keysOnly && shapes.shape(source)?.length === 4 ? lastRow(ops.b, shapes, source, 2) : source;
  if (own) {
    const s = ops.shape(own, 'own_shape');
    const rowsOwn = ops.dim(s, 2, 'own_rows');
    const colsOwn = ops.dim(s, 3, 'own_cols');
    const flat = ops.reshape(own, ops.shapeOf([ops.slice(s, 0, 0, 2, 'own_bh'), -1], 'own_flat_shape'), 'own_flat');
    const rowIdx = ops.op('Min', [g.queryPos, ops.op('Sub', [rowsOwn, ops.scalarI64(1, 'one_i')], 'own_last_row')], 'own_row'); // [nb, R]
    const colIdx = clampKeys(ops, g.keyPos, colsOwn); // [nb, L]
    const idx = ops.op('Add', [ops.op('Mul', [ops.unsqueeze(rowIdx, [2], 'own_row_col'), colsOwn], 'own_row_start'), ops.unsqueeze(colIdx, [1], 'own_col_row')], 'own_index'); // [nb, R, L]
    sum = ops.op('Add', [sum, ops.op('Gather', [flat, idx], 'own_blocks', { axis: attr.int(2) })], 'bias_sum'); // [B, Hb, nb, R, L]
  }
  const perBlock = ops.transpose(sum, [0, 2, 1, 3, 4], 'bias_blocks'); // [B, nb, Hb, R, L]
  const hb = ops.slice(ops.shape(perBlock, 'bias_blocks_shape'), 0, 2, 3, 'bias_heads');
  return ops.reshape(perBlock, ops.shapeOf([-1, hb, g.R, g.L], 'bias_shape'), 'bias');
}
