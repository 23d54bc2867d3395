// The mask form of a plan (the exact reference): one additive mask over the site's dense scores, −∞ outside each
// head's pattern. The static patterns come from the sparse rules' own builder of the visibility predicate
// (sparse/pattern.ts): each distinct choice is built once, stacked, and each head picks its row, giving [H, Sq, Sk].
// Block-topk heads take their rows from the block-topk rule's selection over the site's Q and K ([B, H, Sq, Sk]).
import { attr } from '../../analysis/ir/builder';
import type { Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import type { RawSite } from '../../analysis/attention/site';
import type { SiteInfo } from '../../analysis/report/types';
import type { RuleContext } from '../rule';
import { blockTopkVisible } from '../sparse/block-topk';
import { applyMask } from '../sparse/mask-form';
import { SiteOps } from '../sparse/ops';
import { buildVisible, type Positions } from '../sparse/pattern';
import { positionsFromScores } from '../sparse/positions';
import { describeHeadChoice } from './choices';
import { groupHeads, patternOf, type PlanHead } from './heads';

export interface PlanSite {
  info: SiteInfo;
  raw: RawSite;
  ops: SiteOps;
  shapes: ShapeInfo;
}

export function applyPlanMask(ctx: RuleContext, site: PlanSite, heads: PlanHead[], origHeads: number): void {
  const { info, raw, ops, shapes } = site;
  const topk = groupHeads(heads).filter((g) => g.choice.kind === 'block-topk');
  if (topk.length === 0) {
    const uniform = sameStaticPattern(heads);
    applyMask(ctx, raw, ops, shapes, (pos) => staticVisibility(ops, heads, info.causal, origHeads, pos), !uniform);
    return;
  }
  // Block-topk selects per batch and head, so the mask is [B, H, Sq, Sk] and goes on the written-out scores.
  const scores = raw.anchor.input(0)!;
  let visible = staticVisibility(ops, heads, info.causal, origHeads, positionsFromScores(ops, scores));
  topk.forEach((g, i) => {
    if (g.choice.kind !== 'block-topk') return;
    const sub = new SiteOps(ctx.builder, `${ops.prefix}/topk${i}`, ops.float);
    const kept = blockTopkVisible(ctx, raw, info, sub, shapes, { block: g.choice.block, k: g.choice.k });
    const mine = sub.const('heads', [1, heads.length, 1, 1], { dtype: 'bool', data: heads.map((_, n) => g.heads.includes(n)) });
    // (mine ∧ kept) ∨ (¬mine ∧ visible): onnxruntime has no Where over bool tensors.
    const others = sub.op('And', [sub.op('Not', [mine], 'other_heads'), visible], 'others_visible');
    visible = sub.op('Or', [sub.op('And', [mine, kept], 'kept_visible'), others], 'visible');
  });
  ctx.builder.setInput(raw.anchor, 0, ops.masked(scores, visible));
}

/**
 * Bool [H, Sq, Sk]: head n sees what its choice's pattern lets it see; dense and block-topk heads see every key (the
 * site's own mask still applies, and block-topk heads are narrowed afterwards).
 */
export function staticVisibility(ops: SiteOps, heads: PlanHead[], causal: boolean, origHeads: number, pos: Positions): Value {
  if (sameStaticPattern(heads)) return buildVisible(ops, patternOf(heads[0].choice, causal, origHeads)!, pos);
  const rows: Value[] = [];
  const rowOf = new Map<string, number>();
  const index: number[] = [];
  let count = 0;
  for (const h of heads) {
    const p = patternOf(h.choice, causal, origHeads);
    const key = p ? describeHeadChoice(h.choice) : 'dense';
    if (!rowOf.has(key)) {
      rowOf.set(key, count);
      if (p?.kind === 'strided') {
        rows.push(buildVisible(ops, p, pos)); // [origHeads, Sq, Sk]: row h is original head h's shard
        count += origHeads;
      } else {
        const v = p ? buildVisible(ops, p, pos) : everything(ops, pos);
        rows.push(ops.unsqueeze(v, [0], 'visible_row'));
        count += 1;
      }
    }
    index.push(rowOf.get(key)! + (h.choice.kind === 'strided' ? h.orig : 0));
  }
  const stacked = ops.concat(rows, 0, 'visible_rows');
  if (count === heads.length && index.every((r, n) => r === n)) return stacked;
  return ops.op('Gather', [stacked, ops.i64(index, 'head_rows')], 'visible', { axis: attr.int(0) });
}

/** Whether every head has the same head-independent pattern: the mask is then [Sq, Sk], as the uniform rule's. */
function sameStaticPattern(heads: PlanHead[]): boolean {
  const c = heads[0].choice;
  if (c.kind === 'dense' || c.kind === 'block-topk' || c.kind === 'strided') return false;
  return heads.every((h) => describeHeadChoice(h.choice) === describeHeadChoice(c));
}

/** Bool [Sq, Sk], all true. */
function everything(ops: SiteOps, pos: Positions): Value {
  const yes = ops.const('true', [], { dtype: 'bool', data: [true] });
  return ops.op('Expand', [yes, ops.shapeOf([ops.vec(pos.sq), ops.vec(pos.sk)], 'all_shape')], 'all_visible');
}
