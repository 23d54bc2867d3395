// Which tokens are padding, read from the model's own mask: a key that the mask hides from the last query (which
// every causal and padding-only mask lets see all real keys) is padding. Used where a rule's *selection* must not
// depend on padding positions, whose hidden states are whatever the model happens to compute there.
//
// Only for masks the analysis classifies as padding and/or causal; any other mask (relative bias, an existing window)
// could hide real keys from the last query too, so the rule then counts every token.
import type { Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import type { SiteInfo } from '../../analysis/report/types';
import { KEY_MASKS } from './blocked-chain';
import { lastRow } from './last-row';
import type { SiteOps } from './ops';
import type { ScoreChain } from './score-chain';
import { elemTypeOf } from './values';

export interface TokenWeights {
  /** [b, h, Sk, 1]: 1 for a real key, 0 for padding (b, h: 1 or the batch and heads of the mask). */
  key: Value;
  /** [b, h, Sq, 1]: the same for the queries (the last Sq of the Sk positions). */
  query: Value;
}

/** An additive mask at or below this hides the key (BERT-style masks use −10000, newer ones the lowest float). */
const HIDDEN = -1000;

export function tokenWeights(ops: SiteOps, shapes: ShapeInfo, chain: ScoreChain | string, info: SiteInfo, sq: Value, sk: Value): TokenWeights | null {
  if (typeof chain === 'string' || !KEY_MASKS.has(info.maskType)) return null;
  let real: Value | null = null;
  for (const step of chain.pre) {
    for (const i of step.maskIndexes) {
      const mask = step.node.input(i)!;
      const rank = shapes.shape(mask)?.length ?? 4;
      // Its last row, computed without the rest of the mask (last-row.ts); a mask of rank < 2 has one row.
      const row = rank >= 2 ? lastRow(ops.b, shapes, mask, rank - 2) : mask;
      const last = rank < 4 ? ops.unsqueeze(row, Array.from({ length: 4 - rank }, (_, a) => a), 'pad_mask4') : row;
      let visible: Value | null = null;
      if (step.node.opType === 'Add' && elemTypeOf(mask) !== 'bool') visible = ops.op('Greater', [last, ops.scalarF(HIDDEN, 'hidden')], 'pad_visible');
      else if (step.node.opType === 'Where' && i === 0) visible = step.dataIndex === 1 ? last : ops.op('Not', [last], 'pad_visible');
      if (!visible) continue;
      real = real ? ops.op('And', [real, visible], 'pad_real') : visible;
    }
  }
  if (!real) return null;
  // [b, h, 1, Sk] -> [b, h, Sk, 1] as 0/1 in the site's float type.
  const key = ops.transpose(ops.toFloat(real, 'pad_real_f'), [0, 1, 3, 2], 'pad_key_weights');
  const query = ops.slice(key, 2, ops.op('Sub', [sk, sq], 'pad_past'), sk, 'pad_query_weights');
  return { key, query };
}
