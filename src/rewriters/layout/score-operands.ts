// Masks and biases added to the scores, carried from the exporter's score layout to the standard [batch, heads,
// queries, keys]. An operand that is broadcast (size 1 or absent) over the merged axes works as it is; one that is
// full over heads folded into the batch ([batch·heads, q, k], torch.nn's key-padding mask) is split by a Reshape.
import type { Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import type { Dim, SiteBinding } from '../../analysis/report/types';
import type { SiteOps } from '../sparse/ops';

export class LayoutError extends Error {}

export function standardOperand(ops: SiteOps, shapes: ShapeInfo, operand: Value, b: SiteBinding, batchDim: () => Value): Value {
  const shape = shapes.shape(operand);
  const axes = b.scoreAxes;
  if (!shape) throw new LayoutError(`the shape of score operand '${operand.name}' is unknown`);
  if (axes.some((a) => a.includes('window'))) return windowedOperand(ops, operand, shape, batchDim);
  if (shape.length > axes.length) throw new LayoutError(`score operand '${operand.name}' has more axes than the scores`);
  const lead = axes.length - shape.length;
  const full = (i: number) => i >= lead && shape[i - lead] !== 1;
  const merged = axes.map((a, i) => (a.length > 1 && full(i) ? i : -1)).filter((i) => i >= 0);
  if (merged.length === 0) return operand;
  if (lead > 0) throw new LayoutError(`score operand '${operand.name}' is broadcast over leading axes the layout merges`);
  const shapeVec = ops.shape(operand, 'operand_shape');
  const parts: (number | Value)[] = [];
  axes.forEach((a, i) => {
    if (!full(i)) {
      for (let k = 0; k < a.length; k++) parts.push(1);
      return;
    }
    if (a.length === 1) {
      parts.push(ops.vec(ops.dim(shapeVec, i, `operand_dim${i}`), `operand_vec${i}`));
      return;
    }
    if (a.join(',') !== 'batch,head') throw new LayoutError(`score axis ${i} merges ${a.join(' and ')}; only batch·heads is split`);
    parts.push(-1, b.heads);
  });
  return ops.reshape(operand, ops.shapeOf(parts, 'operand_target'), 'operand');
}

/**
 * Windowed scores [batch, windows, heads, q, k] become [batch·windows, heads, q, k]. An operand the same for every
 * window (a relative position bias [heads, q, k]) keeps its last three axes; one that differs by window (Swin's
 * shifted-window mask [windows, 1, q, k]) is repeated over the batch, then the batch and windows are merged.
 */
function windowedOperand(ops: SiteOps, operand: Value, shape: Dim[], batchDim: () => Value): Value {
  const rank = shape.length;
  if (rank > 5) throw new LayoutError(`score operand '${operand.name}' has more axes than the scores`);
  const at = (axis: number) => (axis - (5 - rank) >= 0 ? shape[axis - (5 - rank)] : 1);
  const byBatch = at(0) !== 1;
  const byWindow = at(1) !== 1;
  if (!byBatch && !byWindow) return rank <= 3 ? operand : ops.squeeze(operand, Array.from({ length: rank - 3 }, (_, i) => i), 'operand_shared');
  if (!byWindow) throw new LayoutError(`score operand '${operand.name}' differs by batch item but not by window`);
  let x = rank < 5 ? ops.unsqueeze(operand, Array.from({ length: 5 - rank }, (_, i) => i), 'operand_rank5') : operand;
  if (!byBatch) x = ops.op('Expand', [x, ops.shapeOf([batchDim(), 1, 1, 1, 1], 'operand_batch')], 'operand_per_batch');
  const dims = ops.shape(x, 'operand_shape');
  const tail = [2, 3, 4].map((i) => ops.vec(ops.dim(dims, i, `operand_dim${i}`), `operand_vec${i}`));
  return ops.reshape(x, ops.shapeOf([-1, ...tail], 'operand_target'), 'operand');
}
