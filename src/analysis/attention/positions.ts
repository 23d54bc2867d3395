// Learned absolute position embeddings live outside the attention blocks, near the model's input: a Gather from a
// constant table indexed by positions (a Range, a cumulative sum, or a position-ids input), or a constant
// [1, positions, hidden] table added to the embeddings (ViT). Found once per model.
import type { Graph, Value } from '../ir/graph';

export function hasLearnedPositions(graph: Graph): boolean {
  for (const n of graph.nodes) {
    if (n.opType === 'Gather') {
      const table = n.input(0)?.constant;
      if (table && table.dims.length === 2 && table.dims[0] > 1 && isPositionIndex(n.input(1))) return true;
    }
    if (n.opType === 'Add') {
      for (const v of n.inputs) {
        const t = v?.constant;
        if (t && t.dims.length === 3 && t.dims[0] === 1 && t.dims[1] > 1 && t.dims[2] > 1) return true;
      }
    }
  }
  return false;
}

function isPositionIndex(v: Value | null, depth = 8): boolean {
  if (!v || depth === 0) return false;
  if (v.isGraphInput) return /position/i.test(v.name);
  const p = v.producer;
  if (!p) return false;
  if (p.opType === 'Range' || p.opType === 'CumSum') return true;
  if (['Unsqueeze', 'Expand', 'Add', 'Sub', 'Cast', 'Slice', 'Reshape', 'Mul', 'Squeeze'].includes(p.opType)) {
    return p.inputs.some((i) => i && !i.initializer && isPositionIndex(i, depth - 1));
  }
  return false;
}
