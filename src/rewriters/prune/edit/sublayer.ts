// Removing an attention sub-layer: the residual join that adds the attention output to the skip path is replaced by the
// skip path itself, and everything that only fed the attention output becomes dead and is removed. The join is a
// plain Add, or onnxruntime's fused SkipLayerNormalization / SkipSimplifiedLayerNormalization (residual add + norm).
import { attr, type GraphBuilder } from '../../../analysis/ir/builder';
import type { Node, Value } from '../../../analysis/ir/graph';
import type { RawSite } from '../../../analysis/attention/site';
import { addWeight } from './weights';

export class SublayerError extends Error {}

/** Ops between the output projection and the residual join that carry the attention output unchanged in meaning. */
const PASS = new Set(['Reshape', 'Identity', 'Cast', 'Dropout', 'Transpose', 'Squeeze', 'Unsqueeze']);

interface Join {
  node: Node;
  /** Input index of the attention branch and of the skip path. */
  branch: number;
  skip: number;
  /** Whether only shape-preserving-of-features ops lie between the output projection and the join. */
  plainChain: boolean;
}

function findJoin(out: Value): Join {
  let v = out;
  let plainChain = true;
  for (let step = 0; step < 8; step++) {
    const uses = v.uses.filter((u) => u.node.opType !== 'Shape');
    if (uses.length !== 1) throw new SublayerError(`the attention output '${v.name}' has ${uses.length} consumers; no single residual join`);
    const { node, index } = uses[0];
    if (node.opType === 'Add' && node.domain === '') return { node, branch: index, skip: 1 - index, plainChain };
    if ((node.opType === 'SkipLayerNormalization' || node.opType === 'SkipSimplifiedLayerNormalization') && node.domain === 'com.microsoft' && index <= 1) {
      return { node, branch: index, skip: 1 - index, plainChain };
    }
    const constFactor = (node.opType === 'Mul' || node.opType === 'Div') && node.inputs.some((i, k) => k !== index && i?.constant);
    if (!(PASS.has(node.opType) && index === 0) && !constFactor) throw new SublayerError(`the attention output reaches ${node.opType} '${node.name}' before any residual Add`);
    // A per-feature bias stays the same bias through a Transpose that keeps the feature axis last (the token
    // reorderings of torch.nn's sequence-first layout).
    if ((node.opType === 'Transpose' && !keepsLastAxis(node)) || constFactor) plainChain = false;
    v = node.outputs[0];
  }
  throw new SublayerError('no residual Add within 8 ops of the attention output');
}

function keepsLastAxis(t: Node): boolean {
  const perm = t.attr('perm')?.ints?.map(Number);
  return !!perm && perm[perm.length - 1] === perm.length - 1;
}

export interface RemoveOptions {
  /**
   * Keep the output projection's bias on the residual path (a site emptied of all its heads still adds its bias);
   * `bias` is that bias when it is a separate constant, otherwise a bias fused into the join's norm is kept.
   */
  keepBias?: boolean;
  bias?: { data: Float64Array; dtype: 'float32' | 'float16' };
}

/** Replaces the residual join after `site` by its skip input and removes the dead attention nodes. */
export function removeSublayer(builder: GraphBuilder, site: RawSite, options: RemoveOptions, rule: string): string[] {
  const bias = options.keepBias ? options.bias : undefined;
  const warnings: string[] = [];
  const out = site.io.out;
  if (!out) throw new SublayerError('the attention output was not found');
  const join = findJoin(out);
  if (bias && !join.plainChain) throw new SublayerError('the output projection bias would pass through a transpose or scaling before the residual join');
  const base = `${site.anchor.name}::${rule}`;
  let skip = join.node.input(join.skip)!;
  if (bias) skip = builder.op('Add', [skip, addWeight(builder, `${base}/o_bias`, [bias.data.length], bias.data, bias.dtype)], { name: `${base}/bias` });
  const n = join.node;
  if (n.opType === 'Add') {
    replaceOutput(builder, n.outputs[0], skip, base);
  } else {
    // Skip(Simplified)LayerNormalization(input, skip, gamma[, beta][, bias]): the norm of the skip path alone. Its
    // optional bias input is the output projection's bias fused in by the optimizer; it goes with the sub-layer
    // unless asked to stay.
    const simplified = n.opType === 'SkipSimplifiedLayerNormalization';
    const fusedBias = n.input(simplified ? 3 : 4);
    if (fusedBias && bias) throw new SublayerError('the output projection bias is both fused into the norm and separate');
    if (fusedBias && options.keepBias) skip = builder.op('Add', [skip, fusedBias], { name: `${base}/bias` });
    if (n.outputs[1]?.uses.length || n.outputs[2]?.uses.length || n.outputs[1]?.isGraphOutput || n.outputs[2]?.isGraphOutput) {
      throw new SublayerError(`'${n.name}' exports its mean or inverse deviation; cannot replace it`);
    }
    const eps = n.attr('epsilon')?.f ?? 1e-5;
    const inputs = simplified ? [skip, n.input(2)] : [skip, n.input(2), n.input(3)];
    const op = simplified ? 'SimplifiedLayerNormalization' : 'LayerNormalization';
    const norm = builder.op(op, inputs, { name: `${base}/norm`, attrs: { axis: attr.int(-1), epsilon: attr.float(eps) } });
    replaceOutput(builder, n.outputs[0], norm, base);
    const sum = n.outputs[3];
    if (sum && sum.name && (sum.uses.length || sum.isGraphOutput)) replaceOutput(builder, sum, skip, base);
  }
  builder.removeUnused();
  if (site.kvCache.presentOutputs.length) {
    warnings.push(`site's K/V projections stay: they still write the cache outputs ${site.kvCache.presentOutputs.join(', ')}`);
  }
  return warnings;
}

function replaceOutput(builder: GraphBuilder, from: Value, to: Value, base: string): void {
  if (from.isGraphOutput && (to.isGraphInput || to.initializer || to.isGraphOutput || !to.producer)) {
    // The model's output keeps its name: an Identity stands in for a graph input or initializer.
    to = builder.op('Identity', [to], { name: `${base}/identity` });
  }
  builder.replaceAllUses(from, to, { graphOutputs: true });
}
