// Zero-padding rows and cutting them into blocks, for the compute-reducing forms. Padding is a Concat with zeros
// rather than a Pad: the analysis traces Q, K and V back to their projections through Concat, not through Pad, so the
// rewritten site keeps its projections, head counts and kind.
import type { Value } from '../../analysis/ir/graph';
import type { SiteOps } from './ops';

/** x [B, H, n, E] zero-padded along axis 2 with `front` rows before and `back` after (Concat keeps the trace). */
export function padRows(ops: SiteOps, x: Value, front: Value | null, back: Value, tag: string): Value {
  const s = ops.shape(x, `${tag}_pad_shape`);
  const bh = ops.slice(s, 0, 0, 2, `${tag}_pad_bh`);
  const e = ops.slice(s, 0, 3, 4, `${tag}_pad_e`);
  const zeros = (n: Value, w: string) => ops.zeros(ops.shapeOf([bh, ops.vec(n), e], `${tag}_${w}_shape`), `${tag}_${w}`);
  return ops.concat([...(front ? [zeros(front, 'front')] : []), x, zeros(back, 'back')], 2, `${tag}_padded`);
}

/** x [B, H, n, E] (n real rows, placed after `front` padding rows) -> [B, H, blocks, b, E] blocks. */
export function toBlocks(ops: SiteOps, x: Value, front: Value | null, n: Value, blocks: Value, b: number, tag: string): Value {
  const total = ops.op('Mul', [blocks, ops.scalarI64(b, 'block')], `${tag}_rows`);
  const used = front ? ops.op('Add', [front, n], `${tag}_used`) : n;
  const padded = padRows(ops, x, front, ops.op('Sub', [total, used], `${tag}_back`), tag);
  const s = ops.shape(x, `${tag}_shape`);
  return ops.reshape(padded, ops.shapeOf([ops.slice(s, 0, 0, 2, `${tag}_bh`), ops.vec(blocks), b, ops.slice(s, 0, 3, 4, `${tag}_e`)], `${tag}_split`), `${tag}_blocks`);
}
