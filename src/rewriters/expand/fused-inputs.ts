// What a fused attention operator computes, read from its inputs and attributes as each operator defines it, with
// Q, K and V brought to the eager layout [batch, heads, positions, head size]:
// - onnx Attention: Q/K/V either [B, H, S, D] already, or [B, S, H·D] with q_num_heads / kv_num_heads;
// - com.microsoft MultiHeadAttention: query/key/value [B, S, H·D], plus an optional packed Q/K/V bias (input 3);
// - com.microsoft GroupQueryAttention: query [B, S, H·D], key/value [B, S, Hkv·D], or Q/K/V packed in the query;
// - com.microsoft Attention: the hidden states with a packed [hidden, q + k + v] weight and bias applied inside, which
//   here become a MatMul, an Add and a Split, the way a model with separate projections is exported.
// Anything this does not reproduce exactly (a KV cache in use, rotary embedding inside the op, soft-capping, other
// mask formats) is an ExpandError naming it, never a silent approximation.
import { attr, type Attr } from '../../analysis/ir/builder';
import type { Node, Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import { attrFloat, attrInt, attrInts } from '../../analysis/attention/match';
import { fusedKey, pastInputIndexes } from '../../analysis/attention/fused';
import type { SiteOps } from '../sparse/ops';

export class ExpandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExpandError';
  }
}

export interface FusedCore {
  key: string;
  q: Value;
  k: Value;
  v: Value;
  heads: number;
  kvHeads: number;
  headDim: number;
  vHeadDim: number;
  /** The operator returns [B, S, H·Dv] (true) or [B, H, S, Dv]. */
  out3d: boolean;
  scale: number;
  causal: boolean;
  /** Keys per query including its own (GroupQueryAttention's local_window_size), when set. */
  window?: number;
}

const rankOf = (shapes: ShapeInfo, v: Value | null) => shapes.shape(v)?.length;
const lastDim = (shapes: ShapeInfo, v: Value | null) => {
  const d = shapes.shape(v)?.at(-1);
  return typeof d === 'number' ? d : undefined;
};

/** Why the operator cannot be expanded exactly, before anything is added to the graph (null: it can). */
export function refusal(n: Node, shapes: ShapeInfo): string | null {
  const key = fusedKey(n);
  const used = (i: number) => !!n.inputs[i];
  const outputsInUse = n.outputs.slice(1).some((o) => o.name !== '' && (o.uses.length > 0 || o.isGraphOutput));
  const expandable = ['onnx.Attention', 'com.microsoft.MultiHeadAttention', 'com.microsoft.GroupQueryAttention', 'com.microsoft.Attention'];
  const past = expandable.includes(key) ? pastInputIndexes(key) : undefined;
  if (!past) return `${key} is not one of the operators this expands (onnx Attention, com.microsoft MultiHeadAttention, GroupQueryAttention, Attention)`;
  if (past.some(used)) return 'it reads a KV cache (past key/value inputs); only prompt-mode operators without a cache are expanded';
  if (outputsInUse) return 'its KV-cache or probability outputs are in use';
  if (attrInt(n, 'do_rotary') === 1) return 'it applies rotary embedding inside the operator';
  if ((attrFloat(n, 'softcap') ?? 0) !== 0) return 'it soft-caps the scores';
  if (attrInt(n, 'smooth_softmax') === 1) return 'it uses a smooth softmax';
  if (key === 'onnx.Attention') {
    if (rankOf(shapes, n.input(0)) === 3 && !attrInt(n, 'q_num_heads')) return '3-D inputs without q_num_heads';
    if ((attrInt(n, 'qk_matmul_output_mode') ?? 0) !== 0 && n.outputs[3]?.name) return 'it exports an intermediate score tensor';
  }
  if (key === 'com.microsoft.MultiHeadAttention') {
    if (!n.input(1) || !n.input(2)) return 'Q/K/V packed in the query input';
    if ([0, 1, 2].some((i) => rankOf(shapes, n.input(i)) !== 3)) return 'query, key and value must each be [batch, sequence, hidden]';
    if (used(4) && rankOf(shapes, n.input(4)) !== 2) return 'only the 2-D [batch, keys] key_padding_mask format is expanded';
    if (used(8) || used(9)) return 'past_sequence_length / cache_indirection inputs';
  }
  if (key === 'com.microsoft.GroupQueryAttention') {
    if (used(11)) return 'it uses attention sinks (head_sink input)';
    if (used(7) || used(8) || used(9)) return 'rotary caches or position ids';
  }
  if (key === 'com.microsoft.Attention') {
    if (used(3) && rankOf(shapes, n.input(3)) !== 2) return 'only the 2-D [batch, keys] mask_index format is expanded';
    if (!n.input(1)) return 'no packed Q/K/V weight';
  }
  return null;
}

/** Q, K, V as [B, H, S, D] with the operator's head counts, scale and causality. */
export function readCore(ops: SiteOps, shapes: ShapeInfo, n: Node): FusedCore {
  const why = refusal(n, shapes);
  if (why) throw new ExpandError(why);
  const key = fusedKey(n);
  const scaleOf = (d: number) => (attrFloat(n, 'scale') || 1 / Math.sqrt(d));
  if (key === 'onnx.Attention') {
    const [q, k, v] = [n.input(0)!, n.input(1)!, n.input(2)!];
    const causal = attrInt(n, 'is_causal') === 1;
    if (rankOf(shapes, q) === 4) {
      const s = shapes.shape(q)!;
      const heads = s[1];
      const kvHeads = shapes.shape(k)?.[1];
      const headDim = s[3];
      const vHeadDim = lastDim(shapes, v);
      if (typeof heads !== 'number' || typeof kvHeads !== 'number' || typeof headDim !== 'number' || vHeadDim === undefined) {
        throw new ExpandError('the head counts and sizes of its 4-D inputs are not static');
      }
      return { key, q, k, v, heads, kvHeads, headDim, vHeadDim, out3d: false, scale: scaleOf(headDim), causal };
    }
    const heads = attrInt(n, 'q_num_heads')!;
    const kvHeads = attrInt(n, 'kv_num_heads') ?? heads;
    const dims = widths(shapes, [q, k, v], [heads, kvHeads, kvHeads]);
    return {
      key, heads, kvHeads, headDim: dims[0], vHeadDim: dims[2], out3d: true, scale: scaleOf(dims[0]), causal,
      q: splitHeads(ops, q, heads, dims[0], 'q'), k: splitHeads(ops, k, kvHeads, dims[1], 'k'), v: splitHeads(ops, v, kvHeads, dims[2], 'v'),
    };
  }
  const heads = attrInt(n, 'num_heads');
  if (!heads) throw new ExpandError('no num_heads attribute');
  if (key === 'com.microsoft.GroupQueryAttention') {
    const kvHeads = attrInt(n, 'kv_num_heads') ?? heads;
    let [q, k, v] = [n.input(0)!, n.input(1), n.input(2)];
    let headDim: number;
    if (!k || !v) {
      // Packed [B, S, (H + 2·Hkv)·D]: Q's heads first, then K's, then V's.
      const width = lastDim(shapes, q);
      if (width === undefined) throw new ExpandError('the packed query width is not static');
      headDim = width / (heads + 2 * kvHeads);
      const parts = split(ops, q, [heads * headDim, kvHeads * headDim, kvHeads * headDim], 'qkv');
      [q, k, v] = parts;
    } else {
      headDim = widths(shapes, [q], [heads])[0];
    }
    const local = attrInt(n, 'local_window_size');
    return {
      key, heads, kvHeads, headDim, vHeadDim: headDim, out3d: true, scale: scaleOf(headDim), causal: true,
      ...(local !== undefined && local > 0 ? { window: local } : {}),
      q: splitHeads(ops, q, heads, headDim, 'q'), k: splitHeads(ops, k, kvHeads, headDim, 'k'), v: splitHeads(ops, v, kvHeads, headDim, 'v'),
    };
  }
  if (key === 'com.microsoft.MultiHeadAttention') {
    let [q, k, v] = [n.input(0)!, n.input(1)!, n.input(2)!];
    const dims = widths(shapes, [q, k, v], [heads, heads, heads]);
    const bias = n.input(3);
    if (bias) {
      // One bias for all three, [q | k | v] widths: each part is added to its input, as the operator does.
      const [bq, bk, bv] = split(ops, bias, [heads * dims[0], heads * dims[1], heads * dims[2]], 'bias', 0);
      q = ops.op('Add', [q, bq], 'q_bias');
      k = ops.op('Add', [k, bk], 'k_bias');
      v = ops.op('Add', [v, bv], 'v_bias');
    }
    return {
      key, heads, kvHeads: heads, headDim: dims[0], vHeadDim: dims[2], out3d: true, scale: scaleOf(dims[0]), causal: attrInt(n, 'unidirectional') === 1,
      q: splitHeads(ops, q, heads, dims[0], 'q'), k: splitHeads(ops, k, heads, dims[1], 'k'), v: splitHeads(ops, v, heads, dims[2], 'v'),
    };
  }
  // com.microsoft Attention: input · W + b, split into Q, K, V (qkv_hidden_sizes, equal thirds by default).
  const x = n.input(0)!;
  const w = n.input(1)!;
  const total = lastDim(shapes, w);
  const sizes = attrInts(n, 'qkv_hidden_sizes') ?? (total ? [total / 3, total / 3, total / 3] : undefined);
  if (!sizes || sizes.length !== 3 || sizes.some((s) => !Number.isInteger(s) || s % heads !== 0)) throw new ExpandError('cannot read the packed Q/K/V widths');
  let qkv = ops.op('MatMul', [x, w], 'qkv_proj');
  if (n.input(2)) qkv = ops.op('Add', [qkv, n.input(2)!], 'qkv_bias');
  const [q, k, v] = split(ops, qkv, sizes, 'qkv');
  const [dq, dk, dv] = sizes.map((s) => s / heads);
  return {
    key, heads, kvHeads: heads, headDim: dq, vHeadDim: dv, out3d: true, scale: scaleOf(dq), causal: attrInt(n, 'unidirectional') === 1,
    q: splitHeads(ops, q, heads, dq, 'q'), k: splitHeads(ops, k, heads, dk, 'k'), v: splitHeads(ops, v, heads, dv, 'v'),
  };
}

/** Head sizes from the static last dimensions of [B, S, H·D] inputs. */
function widths(shapes: ShapeInfo, vs: Value[], heads: number[]): number[] {
  return vs.map((v, i) => {
    const w = lastDim(shapes, v);
    if (w === undefined || w % heads[i] !== 0) throw new ExpandError(`the hidden size of '${v.name}' is not static or not a multiple of ${heads[i]} heads`);
    return w / heads[i];
  });
}

function split(ops: SiteOps, v: Value, sizes: number[], what: string, axis = -1): Value[] {
  // Split takes its sizes as an input from opset 13, as an attribute before.
  const inputs = ops.opset >= 13 ? [v, ops.i64(sizes, `${what}_sizes`)] : [v];
  const attrs: Record<string, Attr> = ops.opset >= 13 ? { axis: attr.int(axis) } : { axis: attr.int(axis), split: attr.ints(sizes) };
  const node = ops.b.node('Split', inputs, { name: ops.name(`${what}_split`), attrs, outputs: 3 });
  return node.outputs;
}

/** [B, S, H·D] -> [B, H, S, D]: the Reshape and Transpose of an eager `view(...).transpose(1, 2)`. */
export function splitHeads(ops: SiteOps, v: Value, heads: number, dim: number, what: string): Value {
  const r = ops.reshape(v, ops.i64([0, 0, heads, dim], `${what}_heads_shape`), `${what}_heads`);
  return ops.transpose(r, [0, 2, 1, 3], `${what}_transpose`);
}
