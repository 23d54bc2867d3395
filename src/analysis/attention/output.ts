// From an attention block's per-head output forward to its output projection: merge heads (Transpose/Reshape), then
// the MatMul/Gemm with the O weight and its bias.
import type { Node, Value } from '../ir/graph';
import type { ProjectionInfo } from '../report/types';
import { WEIGHT_PRODUCTS, type Ctx } from './match';
import { projectionOf } from './trace';

export function outputProjection(ctx: Ctx, start: Value): { projection?: ProjectionInfo; nodes: Node[]; value: Value } {
  const nodes: Node[] = [];
  let v = start;
  for (let step = 0; step < 6; step++) {
    // Shape ops that read the value to compute reshape targets are not part of the data path.
    const uses = v.uses.filter((u) => u.node.opType !== 'Shape');
    if (uses.length !== 1) break;
    const n = uses[0].node;
    if (WEIGHT_PRODUCTS.has(n.opType)) {
      const proj = projectionOf(ctx, n);
      if (!proj) break;
      nodes.push(n);
      let out = n.outputs[0];
      let projection = proj.info;
      // A bias added right after belongs to the projection.
      const outUses = out.uses.filter((u) => u.node.opType !== 'Shape');
      const add = outUses.length === 1 ? outUses[0].node : undefined;
      if (add && add.opType === 'Add') {
        const withBias = projectionOf(ctx, add);
        if (withBias && withBias.info.node === n.name) {
          nodes.push(add);
          out = add.outputs[0];
          projection = withBias.info;
        }
      }
      return { projection, nodes, value: out };
    }
    // Slice: a rewritten (blocked) site computes padded query rows and cuts them off before merging heads; a rewrite's
    // own Concat (named `<anchor>::<rule>/…`) puts rows computed apart (prefix tokens) in front of the blocked ones.
    const rewriteConcat = n.opType === 'Concat' && n.name.includes('::');
    // DynamicQuantizeLinear: the merged heads quantized for an integer output projection (its output 0).
    if (!rewriteConcat && !['Transpose', 'Reshape', 'Cast', 'Clip', 'Identity', 'Flatten', 'Slice', 'DynamicQuantizeLinear'].includes(n.opType)) break;
    nodes.push(n);
    v = n.outputs[0];
  }
  return { nodes, value: v };
}
