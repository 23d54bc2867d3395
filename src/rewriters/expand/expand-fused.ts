// Expands one fused attention operator into the standard ops an eager export writes: heads split, K/V heads repeated
// for grouped sites, Q·Kᵀ, the scale, the operator's masks and biases, Softmax, P·V, heads merged. The Softmax takes
// the fused node's name, so the pipeline (which maps site ids through anchor names) still knows the site; every other
// node is named `<fused>::expand/...`, so detection and the profiler attribute it to the same site.
import type { GraphBuilder } from '../../analysis/ir/builder';
import { attr } from '../../analysis/ir/builder';
import type { Node, Value } from '../../analysis/ir/graph';
import { FUSED_INPUTS } from '../../analysis/attention/fused';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import { attrFloat } from '../../analysis/attention/match';
import { SiteOps } from '../sparse/ops';
import { positionsFrom } from '../sparse/positions';
import { elemTypeOf, floatTypeOf } from '../sparse/values';
import { readCore, type FusedCore } from './fused-inputs';

export { ExpandError, refusal } from './fused-inputs';

/** Replaces fused node `n` by standard ops; returns the new Softmax (named as `n` was). */
export function expandFused(builder: GraphBuilder, shapes: ShapeInfo, n: Node): Node {
  const name = n.name;
  const ops = new SiteOps(builder, `${name}::expand`, floatTypeOf(n.input(0)));
  const core = readCore(ops, shapes, n);
  const k = repeatKv(ops, core.k, core, 'k');
  const v = repeatKv(ops, core.v, core, 'v');
  const kt = ops.transpose(k, [0, 1, 3, 2], 'k_t');
  let scores = ops.op('Mul', [ops.op('MatMul', [core.q, kt], 'qk'), ops.scalarF(core.scale, 'scale')], 'scaled');
  scores = applyMasks(ops, n, core, k, scores);
  const softmax = builder.node('Softmax', [scores], { name: ops.name('softmax'), attrs: { axis: attr.int(-1) } });
  let out = ops.op('MatMul', [softmax.outputs[0], v], 'pv');
  if (core.out3d) {
    out = ops.reshape(ops.transpose(out, [0, 2, 1, 3], 'merge_transpose'), ops.i64([0, 0, core.heads * core.vHeadDim], 'merge_shape'), 'merge');
  }
  builder.replaceAllUses(n.outputs[0], out, { graphOutputs: true });
  builder.removeNode(n);
  builder.renameNode(softmax, name);
  return softmax;
}

/** [B, Hkv, S, D] -> [B, H, S, D], query head h reading KV head ⌊h / (H/Hkv)⌋ (an eager `repeat_kv`). */
function repeatKv(ops: SiteOps, x: Value, core: FusedCore, what: string): Value {
  if (core.kvHeads === core.heads) return x;
  const g = core.heads / core.kvHeads;
  const s = ops.shape(x, `${what}_kv_shape`);
  const b = ops.slice(s, 0, 0, 1, `${what}_batch`);
  const sd = ops.slice(s, 0, 2, 4, `${what}_seq_dim`);
  const wide = ops.op('Expand', [ops.unsqueeze(x, [2], `${what}_group_axis`), ops.concat([b, ops.i64([core.kvHeads, g], `${what}_groups`), sd], 0, `${what}_expand_shape`)], `${what}_expand`);
  return ops.reshape(wide, ops.concat([b, ops.i64([core.heads], `${what}_heads_n`), sd], 0, `${what}_repeat_shape`), `${what}_repeat`);
}

/**
 * The operator's own masks on the scaled scores: causality (bottom-right aligned: the queries are the last Sq of Sk
 * positions, the same as top-left when Sq = Sk, the only case without a cache), a local window, and each mask or bias
 * input in the format the operator reads it.
 */
function applyMasks(ops: SiteOps, n: Node, core: FusedCore, k: Value, scores: Value): Value {
  // Lengths from Q and K, not from the scores: a mask computed from the scores would tie it to their layout, and the
  // compute-reducing rules (block-topk's gather form) need masks that stand apart from the score chain.
  const sq = ops.dim(ops.shape(core.q, 'q_shape'), 2, 'sq');
  const sk = ops.dim(ops.shape(k, 'k_shape'), 2, 'sk');
  let visible: Value | undefined;
  const and = (x: Value, what: string) => (visible = visible ? ops.op('And', [visible, x], what) : x);
  if (core.causal || core.window) {
    const pos = positionsFrom(ops, sq, sk);
    if (core.causal) and(ops.op('LessOrEqual', [pos.kAbs, pos.qAbs], 'causal'), 'causal_and');
    // local_window_size W keeps W keys including the query's own (checked against onnxruntime; docs/rewrite-benchmarks.md).
    if (core.window) and(ops.op('Greater', [pos.kAbs, ops.op('Sub', [pos.qAbs, ops.scalarI64(core.window, 'window')], 'window_start')], 'window'), 'window_and');
  }
  const filter = attrFloat(n, 'mask_filter_value') ?? -10000;
  const keyMask = (m: Value, what: string) => {
    // [B, Sk] of 1 (keep) / 0 (mask) -> [B, 1, 1, Sk]; the contrib ops add mask_filter_value where it is 0.
    const keep = ops.unsqueeze(ops.cast(m, 'bool', `${what}_bool`), [1, 2], `${what}_rows`);
    return ops.op('Where', [keep, ops.zeroF(), ops.scalarF(filter, 'mask_filter')], what);
  };
  const additive: Value[] = [];
  const given = (i: number) => n.input(i) ?? undefined;
  const onnxMask = core.key === 'onnx.Attention' ? given(FUSED_INPUTS[core.key].attnMask) : undefined;
  if (onnxMask) {
    const m = onnxMask;
    if (elemTypeOf(m) === 'bool') and(m, 'attn_mask_and');
    else additive.push(m);
  }
  if (core.key === 'com.microsoft.MultiHeadAttention') {
    const at = FUSED_INPUTS[core.key];
    const padding = given(at.keyPaddingMask);
    if (padding) additive.push(keyMask(padding, 'key_padding'));
    const bias = given(at.attentionBias);
    if (bias) additive.push(bias);
  }
  if (core.key === 'com.microsoft.Attention') {
    const at = FUSED_INPUTS[core.key];
    const maskIndex = given(at.maskIndex);
    if (maskIndex) additive.push(keyMask(maskIndex, 'mask_index'));
    const bias = given(at.attentionBias);
    if (bias) additive.push(bias);
  }
  if (core.key === 'com.microsoft.GroupQueryAttention') {
    const at = FUSED_INPUTS[core.key];
    // seqlens_k[b] is the last valid key of row b: keys after it are padding.
    const seqlens = given(at.seqlensK);
    if (seqlens) {
      const last = ops.reshape(ops.cast(seqlens, 'int64', 'seqlens'), ops.i64([-1, 1, 1, 1], 'seqlens_shape'), 'seqlens_rows');
      and(ops.op('LessOrEqual', [ops.range(sk, 'key_pos'), last], 'key_valid'), 'key_valid_and');
    }
    const bias = given(at.attentionBias);
    if (bias) additive.push(bias);
  }
  for (const [i, a] of additive.entries()) scores = ops.op('Add', [scores, a], `bias_${i}`);
  if (visible) scores = ops.op('Where', [visible, scores, ops.negF()], 'masked');
  return scores;
}
