// The mask form of a pattern: the pattern's visibility, built over run-time positions, added before the softmax with
// the masking value outside. The site's own mask stays (the result is the intersection), and the cost stays dense.
// - Written-out sites: an Add between the scores and the Softmax.
// - Fused operators, through the mask input onnxruntime implements for each: ONNX Attention's attn_mask (input 3;
//   a boolean mask is combined with And, a float one with Add), and the `attention_bias` of com.microsoft
//   MultiHeadAttention (input 5), Attention (input 5) and GroupQueryAttention (input 10), shape [1, 1 or H, Sq, Sk].
import { attr } from '../../analysis/ir/builder';
import type { Node, Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import { FUSED_INPUTS, fusedKey } from '../../analysis/attention/fused';
import type { RawSite } from '../../analysis/attention/site';
import type { RuleContext } from '../rule';
import type { SiteOps } from './ops';
import type { Positions } from './pattern';
import { positionsFromScores, positionsFused } from './positions';
import { elemTypeOf } from './values';

/** Builds the bool visibility [Sq, Sk] (or [H, Sq, Sk] when `perHead`) from the site's positions. */
export type VisibilityBuilder = (pos: Positions) => Value;

/** Fused operators whose mask input this module knows, with that input's index. */
export const FUSED_MASK_INPUT: Record<string, number> = {
  'onnx.Attention': FUSED_INPUTS['onnx.Attention'].attnMask,
  'com.microsoft.MultiHeadAttention': FUSED_INPUTS['com.microsoft.MultiHeadAttention'].attentionBias,
  'com.microsoft.Attention': FUSED_INPUTS['com.microsoft.Attention'].attentionBias,
  'com.microsoft.GroupQueryAttention': FUSED_INPUTS['com.microsoft.GroupQueryAttention'].attentionBias,
};

export function applyMask(ctx: RuleContext, raw: RawSite, ops: SiteOps, shapes: ShapeInfo, build: VisibilityBuilder, perHead: boolean): void {
  if (raw.anchors.fused) applyFused(ctx, raw.anchor, ops, shapes, build);
  else applyUnfused(ctx, raw, ops, shapes, build, perHead);
}

function applyUnfused(ctx: RuleContext, raw: RawSite, ops: SiteOps, shapes: ShapeInfo, build: VisibilityBuilder, perHead: boolean): void {
  const sm = raw.anchor;
  const scores = sm.input(0)!;
  let visible = build(positionsFromScores(ops, scores));
  if (perHead && shapes.shape(scores)?.length === 3) {
    // Scores [B·H, Sq, Sk] (heads folded into the batch, batch-major): repeat the [H, Sq, Sk] pattern B times.
    const s = ops.shape(scores, 'bh_shape');
    const reps = ops.op('Div', [ops.dim(s, 0, 'bh'), ops.scalarI64(raw.heads ?? 1, 'heads')], 'batch');
    visible = ops.op('Tile', [visible, ops.shapeOf([ops.vec(reps), 1, 1], 'tile')], 'visible_bh');
  }
  const masked = ops.masked(scores, visible);
  ctx.builder.setInput(sm, 0, masked);
}

function applyFused(ctx: RuleContext, n: Node, ops: SiteOps, shapes: ShapeInfo, build: VisibilityBuilder): void {
  const key = fusedKey(n);
  const index = FUSED_MASK_INPUT[key];
  if (index === undefined) throw new Error(`no mask input known for ${key}`);
  const visible = build(positionsFused(ops, shapes, n));
  const existing = n.input(index);
  let mask: Value;
  if (key === 'onnx.Attention' && (!existing || elemTypeOf(existing) === 'bool')) {
    mask = existing ? ops.op('And', [existing, visible], 'attn_mask') : visible;
  } else {
    // The contrib operators want a rank-4 bias; the pattern is [Sq, Sk] or [H, Sq, Sk].
    let bias = ops.additive(visible, 'bias');
    if (key !== 'onnx.Attention') bias = to4d(ops, bias);
    mask = existing ? ops.op('Add', [existing, bias], 'attention_bias') : bias;
  }
  ctx.builder.setInput(n, index, mask);
}

/** [.., Sq, Sk] of rank 2 or 3 -> [1, 1 or H, Sq, Sk], whatever the rank (it is only known at run time for built values). */
function to4d(ops: SiteOps, v: Value): Value {
  const s = ops.shape(v, 'bias_shape');
  const last3 = ops.slice(ops.concat([ops.i64([1, 1, 1], 'ones'), s], 0, 'bias_padded_shape'), 0, -3, Number.MAX_SAFE_INTEGER, 'bias_hqk');
  return ops.reshape(v, ops.shapeOf([1, last3], 'bias_4d_shape'), 'bias_4d');
}

/**
 * GroupQueryAttention's own window: `local_window_size`. onnxruntime-node 1.29's CPU kernel keeps that many keys,
 * the query's own included, which a test checks against the same window given as an attention_bias (the contrib
 * operator documentation's "left window" wording would suggest one more). An existing window is only ever narrowed.
 */
export function applyGqaWindow(ctx: RuleContext, n: Node, window: number): void {
  const current = n.attr('local_window_size')?.i;
  const had = current === undefined || current === null ? -1 : Number(String(current));
  ctx.builder.setAttribute(n, 'local_window_size', attr.int(had > 0 ? Math.min(had, window) : window));
}
