// Masks and biases added to the scores, carried from the exporter's score layout to the standard [batch, heads,
// queries, keys]. An operand that is broadcast (size 1 or absent) over the merged axes works as it is; one that is
// full over heads folded into the batch ([batch·heads, q, k], torch.nn's key-padding mask) is split by a Reshape.
import type { Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import type { SiteBinding } from '../../analysis/report/types';
import type { SiteOps } from '../sparse/ops';

export class LayoutError extends Error {}

export function standardOperand(ops: SiteOps, shapes: ShapeInfo, operand: Value, b: SiteBinding): Value {
  const shape = shapes.shape(operand);
  const axes = b.scoreAxes;
  if (!shape) throw new LayoutError(`the shape of score operand '${operand.name}' is unknown`);
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
