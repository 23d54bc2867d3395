// `block-topk b k` (dynamic sparsity; selection in block-select.ts), in two forms on written-out sites:
// - `mask`: the kept blocks expanded to a token mask over the dense scores (exact meaning, dense cost);
// - `gather`: per query block only its kept K/V blocks are gathered and multiplied. Slot 0 of every query block is its
//   diagonal block, then up to k + 1 other kept blocks in ascending order, each once (no duplicates); unused slots
//   (fewer blocks kept than slots) are masked out. Exact causality is needed only in the diagonal slot, which makes it
//   a constant table. Scores are [B, H, nbq, b, (k+2)·b]: cost O(S·(k+2)·b) instead of O(S²).
import { attr } from '../../analysis/ir/builder';
import type { Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import type { RawSite } from '../../analysis/attention/site';
import type { SiteInfo } from '../../analysis/report/types';
import { expandRequested } from '../expand/expand-sites';
import { expandSkipReason } from '../expand/expand-rule';
import { standardCore } from '../layout/standard';
import { RuleError, siteById, type Rule, type RuleContext } from '../rule';
import { blockGeometry, selectBlocks, type BlockGeometry } from './block-select';
import { rewireBlocked } from './blocked-chain';
import { toBlocks } from './blocks';
import { round } from './cost';
import { NEG_FLOAT32, SITE_OPS_OPSET, type SiteOps } from './ops';
import { formReason, implOf, nonNegativeInt, oneOf, positiveInt, type BlockTopkParams } from './params';
import { positionsFrom } from './positions';
import { tokenWeights } from './padding';
import { plainProduct, readScoreChain, type ScoreChain } from './score-chain';
import { rewriteSites } from './site-loop';

export const blockTopkRule: Rule<BlockTopkParams> = {
  name: 'block-topk',
  family: 'sparse',
  summary: 'per query block, the k key blocks with the best mean-query·mean-key score, plus the diagonal block and block 0',
  minOpset: SITE_OPS_OPSET,
  validate(p) {
    positiveInt('block-topk', 'block', p.block);
    nonNegativeInt('block-topk', 'k', p.k);
    implOf('block-topk', p.impl, 'gather');
    oneOf('block-topk', 'modelMask', p.modelMask, ['auto', 'rows'] as const);
  },
  skipReason(site) {
    if (site.kind === 'cross') return 'cross-attention: there is no diagonal block when queries and keys are different sequences';
    // The selection needs Q and K as they enter Q·Kᵀ, which a fused operator computes inside: it is expanded first.
    if (site.anchors.fused) return expandSkipReason(site);
    if (!site.anchors.qk || !site.anchors.softmax) return 'the site has no Q·Kᵀ product to read';
    // Left so by the standard-layout pass (its warning says why): the selection reads Q and K per head.
    if (site.binding && !standardCore(site.binding)) return `its scores are laid out as ${site.binding.scoreAxes.map((a) => a.join('·')).join(', ')}${site.binding.einsum ? ' by an Einsum' : ''}, not [batch, heads, queries, keys] from per-head Q and K`;
    return formReason(site);
  },
  apply(original, siteIds, p) {
    const fusedForm = new Map<number, string>();
    for (const id of siteIds) {
      const { info } = siteById(original, id);
      if (info.anchors.fused) fusedForm.set(id, info.form);
    }
    const ctx = expandRequested(original, siteIds, 'block-topk');
    return rewriteSites(ctx, 'block-topk', siteIds, ({ info, raw, ops, shapes }) => {
      const blocks = Math.ceil(ctx.seqLen / p.block);
      const kept = Math.min(p.k + 2, blocks);
      const after = {
        pattern: 'block top-k', block: p.block, k: p.k, blocksKeptPerQueryBlock: `at most ${kept} of ${blocks}`,
        keysPerQuery: round(Math.min(kept * p.block, info.causal ? (ctx.seqLen + 1) / 2 : ctx.seqLen)),
        ...(fusedForm.has(info.id) ? { expandedFrom: fusedForm.get(info.id) } : {}),
      };
      // Selection: block means of Q and K and their products, (S/b)² scores.
      const selectFlops = info.heads && info.headDim ? 2 * info.heads * blocks * blocks * info.headDim + 2 * info.heads * ctx.seqLen * info.headDim : 0;
      const warnings: string[] = [];
      if (p.impl === 'gather') {
        const r = applyGather(ctx, raw, info, ops, shapes, p);
        if (r === null) {
          return { after: { ...after, impl: 'gather' }, computed: { rows: blocks * p.block, keys: kept * p.block, extraFlops: selectFlops } };
        }
        warnings.push(`site ${info.id}: gather form not possible (${r}); used the mask form`);
      }
      applyMaskForm(ctx, raw, info, ops, shapes, p);
      return {
        after: { ...after, impl: 'mask', note: 'mask form: the dense scores are still computed' },
        computed: { rows: ctx.seqLen, keys: ctx.seqLen, extraFlops: selectFlops },
        warnings,
      };
    });
  },
};

interface Inputs { q: Value; kt: Value; sq: Value; sk: Value; d: Value }

function inputsOf(ctx: RuleContext, raw: RawSite, ops: SiteOps, shapes: ShapeInfo): Inputs {
  const qk = ctx.builder.graph.nodeByName(raw.anchors.qk!)!;
  // The selection reads Q and Kᵀ as the product's operands.
  const plain = plainProduct(qk);
  if (plain !== true) throw new RuleError('block-topk', `site ${raw.anchors.softmax}: Q·Kᵀ is ${plain}, whose operands are not laid out as a MatMul's; the selection cannot read Q and K there`);
  const q = qk.input(0)!;
  const kt = qk.input(1)!;
  for (const x of [q, kt, raw.anchor.input(0)!]) {
    const r = shapes.shape(x)?.length;
    if (r !== undefined && r !== 4) throw new RuleError('block-topk', `site ${raw.anchors.softmax}: Q, K and scores must be [batch, heads, positions, ·]; '${x.name}' has rank ${r}`);
  }
  const qShape = ops.shape(q, 'q_shape');
  return { q, kt, sq: ops.dim(qShape, 2, 'sq'), sk: ops.dim(ops.shape(kt, 'kt_shape'), 3, 'sk'), d: ops.dim(qShape, 3, 'd') };
}

function selection(ops: SiteOps, shapes: ShapeInfo, info: SiteInfo, chain: ScoreChain | string, x: Inputs, p: BlockTopkParams, v?: Value) {
  const g = blockGeometry(ops, p.block, x.sq, x.sk);
  const k = ops.transpose(x.kt, [0, 1, 3, 2], 'k');
  const qBlocks = toBlocks(ops, x.q, g.front, x.sq, g.nbq, p.block, 'q');
  const kBlocks = toBlocks(ops, k, null, x.sk, g.nbk, p.block, 'k');
  const vBlocks = v ? toBlocks(ops, v, null, x.sk, g.nbk, p.block, 'v') : undefined;
  const weights = tokenWeights(ops, shapes, chain, info, x.sq, x.sk);
  const sel = selectBlocks(ops, g, { q: x.q, k, qBlocks, kBlocks, headDim: x.d, weights }, p.k, info.causal);
  return { g, qBlocks, kBlocks, vBlocks, sel };
}

function applyMaskForm(ctx: RuleContext, raw: RawSite, info: SiteInfo, ops: SiteOps, shapes: ShapeInfo, p: BlockTopkParams): void {
  const visible = blockTopkVisible(ctx, raw, info, ops, shapes, p);
  const scores = raw.anchor.input(0)!;
  ctx.builder.setInput(raw.anchor, 0, ops.masked(scores, visible));
}

/** The keys each query keeps, as a bool [B, H, Sq, Sk] over a written-out site's scores (the mask form's mask). */
export function blockTopkVisible(ctx: RuleContext, raw: RawSite, info: SiteInfo, ops: SiteOps, shapes: ShapeInfo, p: BlockTopkParams): Value {
  const x = inputsOf(ctx, raw, ops, shapes);
  const { g, sel } = selection(ops, shapes, info, readScoreChain(ctx.builder.graph, shapes, raw), x, p);
  const bb = ops.scalarI64(p.block, 'block');
  const rowBlock = ops.op('Div', [ops.op('Add', [ops.range(x.sq, 'q_row'), g.front], 'q_row_in_blocks'), bb], 'q_row_block');
  const colBlock = ops.op('Div', [ops.range(x.sk, 'k_col'), bb], 'k_col_block');
  const rows = ops.op('Gather', [sel.keep, rowBlock], 'keep_rows', { axis: attr.int(2) });
  let visible = ops.op('Gather', [rows, colBlock], 'keep_tokens', { axis: attr.int(3) });
  if (info.causal) {
    const pos = positionsFrom(ops, x.sq, x.sk);
    visible = ops.op('And', [visible, ops.op('Not', [ops.op('Less', [pos.qAbs, pos.kAbs], 'future')], 'causal')], 'visible');
  }
  return visible;
}

/** The gather form, or why not (null when done). */
export function applyGather(ctx: RuleContext, raw: RawSite, info: SiteInfo, ops: SiteOps, shapes: ShapeInfo, p: BlockTopkParams): string | null {
  const chain = readScoreChain(ctx.builder.graph, shapes, raw);
  if (typeof chain === 'string') return chain;
  const x = inputsOf(ctx, raw, ops, shapes);
  const { g, qBlocks, kBlocks, vBlocks, sel } = selection(ops, shapes, info, chain, x, p, chain.pv.input(1)!);
  const b = p.block;
  const slots = slotsOf(ops, g, sel.keep, sel.diagonal, p.k);
  const C = ops.op('Mul', [slots.count, ops.scalarI64(b, 'block')], 'cols');

  // Gathered K/V blocks: [B, H, nbq, slots, b, E] -> [B, H, nbq, slots·b, E] (a reshape). Each query head keeps its
  // own blocks, so K or V entering the product with one head for all (multi-query, `k[:, None]`) gets them all first.
  const qHeads = shapes.shape(x.q)?.[1];
  const broadcast = (v: Value) => shapes.shape(v)?.[1] === 1 && typeof qHeads === 'number' && qHeads > 1;
  const gather = (blocks: Value, tag: string, operand: Value) => {
    const all = broadcast(operand) ? ops.op('Expand', [blocks, ops.i64([1, qHeads as number, 1, 1, 1], `${tag}_heads`)], `${tag}_all_heads`) : blocks;
    const gathered = ops.op('GatherND', [all, ops.unsqueeze(slots.index, [4], `${tag}_slot_index`)], `${tag}_gather`, { batch_dims: attr.int(2) });
    const s = ops.shape(all, `${tag}_blocks_shape`);
    return ops.reshape(gathered, ops.shapeOf([ops.slice(s, 0, 0, 2, `${tag}_bh`), ops.vec(g.nbq), ops.vec(C), ops.slice(s, 0, 4, 5, `${tag}_e`)], `${tag}_cols_shape`), `${tag}_cols`);
  };
  // Kᵀ by a last-two-axes Transpose, which onnxruntime folds into the product (FusedMatMul, transB).
  const kt = ops.transpose(gather(kBlocks, 'k', x.kt), [0, 1, 2, 4, 3], 'kt_blocked');
  const values = gather(vBlocks!, 'v', chain.pv.input(1)!);
  const scores = ops.op('MatMul', [qBlocks, kt], 'qk');

  // Key positions of the columns, [B, H, nbq, C]; a column counts if its slot holds a kept block and the key exists.
  const t = ops.const('block_cols', [1, 1, 1, 1, b], { dtype: 'int64', data: Array.from({ length: b }, (_, i) => i) });
  const bhq = ops.shape(slots.index, 'slots_shape');
  const colShape = ops.shapeOf([ops.slice(bhq, 0, 0, 3, 'slots_bhq'), ops.vec(C)], 'col_shape');
  const keyPos = ops.reshape(ops.op('Add', [ops.op('Mul', [ops.unsqueeze(slots.index, [4], 'slot_col'), ops.scalarI64(b, 'block')], 'slot_start'), t], 'slot_keys'), colShape, 'key_pos');
  const slotOk = ops.reshape(ops.op('Expand', [ops.unsqueeze(slots.used, [4], 'used_col'), ops.shapeOf([1, 1, 1, 1, b], 'used_b')], 'used_keys'), colShape, 'used_cols');
  const keyOk = ops.op('And', [slotOk, ops.op('Less', [keyPos, x.sk], 'key_exists')], 'key_ok');
  const bias = ops.unsqueeze(ops.additive(keyOk, 'key_bias'), [3], 'key_bias_rows');
  let rowBias: Value | undefined;
  if (info.causal) {
    // Slot 0 is the diagonal block: key t is visible to row r when t ≤ r. Later slots lie wholly before the queries.
    const tri = ops.floats(Array.from({ length: b * b }, (_, i) => (i % b > Math.floor(i / b) ? NEG_FLOAT32 : 0)), [1, 1, 1, b, b], 'diagonal_causal');
    const rest = ops.op('ConstantOfShape', [ops.shapeOf([1, 1, 1, b, ops.vec(ops.op('Sub', [C, ops.scalarI64(b, 'block')], 'rest_cols'))], 'rest_shape')], 'rest_causal', {
      value: ops.float === 'float32' ? attr.tensor([1], { dtype: 'float32', data: [0] }) : attr.tensor([1], { dtype: 'float16', data: Uint16Array.of(0) }),
    });
    rowBias = ops.concat([tri, rest], 4, 'causal_table');
  }
  const clamped = ops.op('Min', [keyPos, ops.op('Sub', [x.sk, ops.scalarI64(1, 'one_i')], 'last_key')], 'key_clamped');
  const index = { j: clamped, perBatch: true, perHead: true, nb: g.nbq, rows: b, front: g.front, sq: x.sq };
  rewireBlocked(ctx, ops, shapes, chain, info, { scores, bias, rowBias, values, index, front: g.front, sq: x.sq }, p.modelMask ?? 'auto');
  return null;
}

/**
 * Slots per query block: the diagonal block first, then the other kept blocks (TopK over a 0/1 score: kept blocks
 * first, in ascending order among equals). `count` = min(k + 2, nbk) slots hold every kept block, since at most k
 * chosen plus the diagonal and block 0 are kept.
 */
function slotsOf(ops: SiteOps, g: BlockGeometry, keep: Value, diagonal: Value, k: number): { index: Value; used: Value; count: Value } {
  const count = ops.op('Min', [ops.scalarI64(k + 2, 'slots_max'), g.nbk], 'slots');
  const others = ops.op('And', [keep, ops.op('Not', [diagonal], 'off_diagonal')], 'kept_others');
  const top = ops.b.node('TopK', [ops.cast(others, 'float32', 'kept_f'), ops.vec(ops.op('Sub', [count, ops.scalarI64(1, 'one_i')], 'other_slots'), 'other_slots_vec')], {
    name: ops.name('slots_topk'), attrs: { axis: attr.int(-1), largest: attr.int(1), sorted: attr.int(1) }, outputs: 2,
  });
  const lead = ops.op('Expand', [g.qBlock, ops.shapeOf([ops.slice(ops.shape(keep, 'keep_shape'), 0, 0, 3, 'keep_bhq'), 1], 'diag_shape')], 'diag_slot');
  const index = ops.concat([lead, top.outputs[1]], 3, 'slot_index');
  const yes = ops.op('ConstantOfShape', [ops.shape(lead, 'diag_slot_shape')], 'diag_used', { value: attr.tensor([1], { dtype: 'bool', data: [true] }) });
  const used = ops.concat([yes, ops.op('Greater', [top.outputs[0], ops.const('half', [], { dtype: 'float32', data: [0.5] })], 'other_used')], 3, 'slot_used');
  return { index, used, count };
}
