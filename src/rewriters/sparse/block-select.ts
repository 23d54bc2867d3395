// Block selection of `block-topk b k` (methods.md): keys in blocks of b from position 0; queries in blocks of b by
// absolute position (with a KV cache the first query block may start mid-block). Each query block scores every key
// block by (mean of its queries)·(mean of the key block's keys)/√d, keeps the k best, plus the diagonal block (the key
// block holding the query block's own positions) and block 0. On a causal site only key blocks at or before the
// diagonal compete. Means are over real tokens only: a partial block (the last one, or a query block cut by the cache
// boundary) is averaged over the tokens it has, and padding tokens (those the model's own mask hides from every query;
// see padding.ts) are not counted, so that the selection for a sequence does not depend on what a padded batch
// computes at its padding positions. A block of padding only has mean 0.
//
// Queries and keys are taken as they enter Q·Kᵀ (after RoPE, after any scale split across Q and K; a positive scale
// does not change the ranking). Ties go to the lower block index (TopK's order).
import { attr } from '../../analysis/ir/builder';
import type { Value } from '../../analysis/ir/graph';
import { toBlocks } from './blocks';
import type { SiteOps } from './ops';
import type { TokenWeights } from './padding';

export interface BlockGeometry {
  b: number;
  sq: Value;
  sk: Value;
  past: Value;
  /** Rows before the first query inside its block (past mod b) and the first query block's index (past div b). */
  front: Value;
  qb0: Value;
  /** Query blocks and key blocks (int64 scalars). */
  nbq: Value;
  nbk: Value;
  /** [nbq, 1] absolute query block indexes and [1, nbk] key block indexes. */
  qBlock: Value;
  kBlock: Value;
}

export function blockGeometry(ops: SiteOps, b: number, sq: Value, sk: Value): BlockGeometry {
  const past = ops.op('Sub', [sk, sq], 'past');
  const bb = ops.scalarI64(b, 'block');
  const front = ops.op('Mod', [past, bb], 'front');
  const qb0 = ops.op('Div', [past, bb], 'first_block');
  const nbq = ops.ceilDiv(ops.op('Add', [front, sq], 'q_span'), b, 'q_blocks');
  const nbk = ops.ceilDiv(sk, b, 'k_blocks');
  const qBlock = ops.unsqueeze(ops.range(nbq, 'q_block', qb0), [1], 'q_block_col');
  const kBlock = ops.unsqueeze(ops.range(nbk, 'k_block'), [0], 'k_block_row');
  return { b, sq, sk, past, front, qb0, nbq, nbk, qBlock, kBlock };
}

/** Mean over the real rows of each block: blocks [B, H, nb, b, E] with `front` leading pad rows and n real rows. */
function blockMeans(ops: SiteOps, blocks: Value, front: Value | null, n: Value, nb: Value, b: number, tag: string): Value {
  const sum = ops.reduceSum(blocks, [3], false, `${tag}_sum`);
  const r = ops.range(ops.op('Mul', [nb, ops.scalarI64(b, 'block')], `${tag}_all_rows`), `${tag}_row`);
  const start = front ?? ops.scalarI64(0, 'zero_i');
  const real = ops.op('And', [ops.op('Not', [ops.op('Less', [r, start], `${tag}_before`)], `${tag}_after_front`), ops.op('Less', [r, ops.op('Add', [start, n], `${tag}_end`)], `${tag}_before_end`)], `${tag}_real`);
  const counts = ops.reduceSum(ops.reshape(ops.toFloat(real, `${tag}_real_f`), ops.shapeOf([ops.vec(nb), b], `${tag}_count_shape`), `${tag}_real_blocks`), [1], true, `${tag}_count`);
  return ops.op('Div', [sum, counts], `${tag}_mean`);
}

/** Weighted block means: x [B, H, n, E] and weights w [b, h, n, 1] (1 for a real token, 0 for padding). */
function weightedMeans(ops: SiteOps, x: Value, w: Value, front: Value | null, n: Value, nb: Value, b: number, tag: string): Value {
  const sum = ops.reduceSum(toBlocks(ops, ops.op('Mul', [x, w], `${tag}_weighted`), front, n, nb, b, `${tag}_w`), [3], false, `${tag}_wsum`);
  const count = ops.reduceSum(toBlocks(ops, w, front, n, nb, b, `${tag}_c`), [3], false, `${tag}_wcount`);
  return ops.op('Div', [sum, ops.op('Max', [count, ops.scalarF(1, 'one_f')], `${tag}_wcount_pos`)], `${tag}_mean`);
}

export interface Selection {
  /** [B, H, nbq, nbk] bool: key blocks kept for each query block (causal-eligible only on causal sites). */
  keep: Value;
  /** [nbq, nbk] bool: the diagonal block. */
  diagonal: Value;
  /** [nbq, nbk] bool, only on causal sites: key blocks at or before the diagonal. */
  eligible: Value | null;
}

export interface SelectionInputs {
  /** Q [B, H, Sq, D] and K [B, H, Sk, D], and their [.., nb, b, D] blocks (which the gather form reuses). */
  q: Value;
  k: Value;
  qBlocks: Value;
  kBlocks: Value;
  headDim: Value;
  /** Which tokens are padding, when the model's mask says so. */
  weights: TokenWeights | null;
}

/** The kept blocks. */
export function selectBlocks(ops: SiteOps, g: BlockGeometry, x: SelectionInputs, k: number, causal: boolean): Selection {
  const qMean = x.weights ? weightedMeans(ops, x.q, x.weights.query, g.front, g.sq, g.nbq, g.b, 'q') : blockMeans(ops, x.qBlocks, g.front, g.sq, g.nbq, g.b, 'q');
  const kMean = x.weights ? weightedMeans(ops, x.k, x.weights.key, null, g.sk, g.nbk, g.b, 'k') : blockMeans(ops, x.kBlocks, null, g.sk, g.nbk, g.b, 'k');
  const headDim = x.headDim;
  const invSqrtD = ops.op('Reciprocal', [ops.op('Sqrt', [ops.toFloat(headDim, 'd_f')], 'sqrt_d')], 'inv_sqrt_d');
  const scores = ops.op('Mul', [ops.op('MatMul', [qMean, ops.transpose(kMean, [0, 1, 3, 2], 'k_mean_t')], 'block_dot'), invSqrtD], 'block_scores');
  const diagonal = ops.op('Equal', [g.kBlock, g.qBlock], 'diagonal');
  const first = ops.op('Equal', [g.kBlock, ops.scalarI64(0, 'zero_i')], 'block0');
  const eligible = causal ? ops.op('Not', [ops.op('Less', [g.qBlock, g.kBlock], 'after_diagonal')], 'eligible') : null;
  const shape = ops.shape(scores, 'block_scores_shape');
  let keep = ops.op('Expand', [ops.op('Or', [diagonal, first], 'fixed'), shape], 'fixed_bh');
  if (k > 0) {
    const ranked = eligible ? ops.op('Where', [eligible, scores, ops.negF()], 'eligible_scores') : scores;
    const kk = ops.op('Min', [ops.i64([k], 'k'), ops.vec(g.nbk, 'nbk_vec')], 'k_kept');
    const top = ops.b.node('TopK', [ranked, kk], { name: ops.name('topk'), attrs: { axis: attr.int(-1), largest: attr.int(1), sorted: attr.int(1) }, outputs: 2 });
    const idx = top.outputs[1];
    const none = ops.op('ConstantOfShape', [shape], 'none', { value: attr.tensor([1], { dtype: 'bool', data: [false] }) });
    const yes = ops.op('ConstantOfShape', [ops.shape(idx, 'top_shape')], 'yes', { value: attr.tensor([1], { dtype: 'bool', data: [true] }) });
    const chosen = ops.op('ScatterElements', [none, idx, yes], 'chosen', { axis: attr.int(3) });
    keep = ops.op('Or', [chosen, keep], 'kept_any');
  }
  if (eligible) keep = ops.op('And', [keep, eligible], 'kept');
  return { keep, diagonal, eligible };
}
