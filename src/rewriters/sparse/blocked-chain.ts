// The common end of the compute-reducing forms: the site's scores now come from a blocked Q·Kᵀ laid out
// [B, H, nb, R, C] (nb query blocks of R rows, C keys each). The site's own element-wise ops between Q·Kᵀ and ·V stay
// and receive blocked tensors: scores on the data input, the model's masks gathered at the blocks' key positions, and
// the form's own bias (pattern, padding) merged into the model's float mask add when there is one (a pass over the
// scores less) or added before the Softmax. The Softmax keeps its node and name, now over the last axis. ·V is the
// product with the blocked values, and the rows are merged back to [B, H, Sq, Dv] (padding rows cut off) for
// whatever read the old ·V.
import { attr } from '../../analysis/ir/builder';
import type { Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import type { SiteInfo } from '../../analysis/report/types';
import type { RuleContext } from '../rule';
import { gatherMask, type BlockIndex } from './mask-gather';
import type { SiteOps } from './ops';
import type { ScoreChain } from './score-chain';
import { elemTypeOf, floatTypeOf } from './values';

/** Mask kinds whose rows differ only by causality, so that the last row is the key-padding vector. */
export const KEY_MASKS = new Set(['none', 'padding', 'causal', 'causal+padding']);

export interface BlockedParts {
  /** [B, H, nb, R, C] */
  scores: Value;
  /** Broadcastable to the scores: 0 where computed keys count, the masking value elsewhere. Kept small (no R axis
   * where possible): it is merged into the model's mask, which is then added to the scores in one pass. */
  bias: Value;
  /** A second bias that varies along the rows (e.g. causality inside a block), added to the scores on its own so that
   * the merged mask stays small. */
  rowBias?: Value;
  /** [B, H, nb, C, Dv] */
  values: Value;
  /** Key positions of the blocks' columns, for the model's masks. */
  index: BlockIndex;
  /** Output rows to keep: [front, front + Sq) of the nb·R blocked rows. */
  front: Value | null;
  sq: Value;
  /** Output rows computed elsewhere that go before the blocked ones ([B, H, P, Dv]: the dense rows of prefix tokens). */
  leadRows?: Value;
}

export function rewireBlocked(ctx: RuleContext, ops: SiteOps, shapes: ShapeInfo, chain: ScoreChain, info: SiteInfo, parts: BlockedParts, modelMask: 'auto' | 'rows'): void {
  const b = ctx.builder;
  const mode = modelMask === 'auto' && KEY_MASKS.has(info.maskType) ? 'keys' : 'rows';
  const blocked = new Map<Value, Value>();
  let biasMerged = false;
  for (const step of chain.pre) {
    for (const i of step.maskIndexes) {
      const mask = step.node.input(i)!;
      let mb = blocked.get(mask) ?? gatherMask(ops, shapes, mask, mode, parts.index);
      blocked.set(mask, mb);
      if (!biasMerged && step.node.opType === 'Add' && step.maskIndexes.length === 1 && elemTypeOf(mask) === ops.float) {
        mb = ops.op('Add', [mb, parts.bias], 'mask_and_pattern');
        biasMerged = true;
      }
      b.setInput(step.node, i, mb);
    }
  }
  const first = chain.pre[0];
  if (first) b.setInput(first.node, first.dataIndex, parts.scores);
  else b.setInput(chain.softmax, 0, parts.scores);
  // The Softmax may run in another type than Q (a float16 model casting its scores to float32 for it).
  const softType = floatTypeOf(chain.softmax.input(0));
  const inSoftType = (x: Value, what: string) => (softType === ops.float ? x : ops.cast(x, softType, what));
  if (!biasMerged) b.setInput(chain.softmax, 0, ops.op('Add', [chain.softmax.input(0)!, inSoftType(parts.bias, 'bias_cast')], 'add_bias'));
  if (parts.rowBias) b.setInput(chain.softmax, 0, ops.op('Add', [chain.softmax.input(0)!, inSoftType(parts.rowBias, 'row_bias_cast')], 'add_row_bias'));
  b.setAttribute(chain.softmax, 'axis', attr.int(-1));

  // [B, H, nb, R, Dv] -> [B, H, nb·R, Dv]: a reshape, no copy.
  const out = ops.op('MatMul', [chain.pv.input(0)!, parts.values], 'pv');
  const oShape = ops.shape(out, 'out_shape');
  const merged = ops.reshape(out, ops.shapeOf([ops.slice(oShape, 0, 0, 2, 'out_bh'), -1, ops.slice(oShape, 0, 4, 5, 'out_dv')], 'out_merge'), 'out_rows');
  const start = parts.front ?? ops.scalarI64(0, 'zero_i');
  const rows = ops.slice(merged, 2, start, parts.front ? ops.op('Add', [parts.front, parts.sq], 'out_end') : parts.sq, parts.leadRows ? 'out_rows_kept' : 'out');
  const result = parts.leadRows ? ops.concat([parts.leadRows, rows], 2, 'out') : rows;
  b.replaceAllUses(chain.pv.outputs[0], result, { graphOutputs: true });
  b.removeNodes([chain.qk, chain.pv]);
}
