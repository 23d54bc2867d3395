// Small attention graphs written the ways other exporters and architectures write them (relative position bias,
// soft-capping, sliding-window masks, scale by Div, windowed vision attention), to check that detection is general
// rather than fitted to the shared fixtures.
import { GraphBuilder } from '../../src/analysis/ir/builder';
import { f32, i64 } from '../../src/analysis/ir/tensor-data';
import type { Value } from '../../src/analysis/ir/graph';
import type { Model } from '../../src/analysis/ir/load';

export interface VariantOptions {
  hidden?: number;
  heads?: number;
  /** How the scores are scaled and biased before Softmax. */
  scores?: 'mul' | 'div' | 'softcap' | 'relative-bias' | 'sliding-window' | 'position-cut' | 'causal-nonnegative' | 'alibi' | RuntimeScale;
  window?: number;
  /**
   * How a sliding window's far edge is written: kept where key > query − W (default), hidden where key <= query − W,
   * kept where the distance query − key <= W (W + 1 keys), or hidden where W < query − key.
   */
  windowEdge?: 'keep-greater' | 'hide-less-equal' | 'distance-less-equal' | 'hide-constant-less';
  softcap?: number;
  /** Windowed vision attention: tokens regrouped into windows of `windowTokens` before attention (Swin-style). */
  windowTokens?: number;
  /** How the two products are written: MatMul (default), Einsum, or onnxruntime's FusedMatMul with the scale as alpha. */
  product?: 'matmul' | 'einsum' | 'fused-matmul';
  /** Paddle's reshapes (paddle2onnx): 0 copies the input's dim, `[0, 0, heads, d]` and `[0, 0, hidden]`; batch open. */
  zeroCopy?: boolean;
}

/**
 * Scales computed at run time from Q's last dimension, as exporters write them when the head size is read off a
 * shape: `pow` is hand-written `q.size(-1) ** -0.5` on the scores; `sdpa` is TorchScript's decomposition of
 * scaled_dot_product_attention, 1 / sqrt(d) from float division, its square root applied to Q and to Kᵀ.
 */
export type RuntimeScale = 'runtime-pow' | 'runtime-sdpa';

export function buildAttentionVariant(o: VariantOptions = {}): Model {
  const hidden = o.hidden ?? 64;
  const heads = o.heads ?? 4;
  const d = hidden / heads;
  const b = GraphBuilder.create({ opsets: { '': 17, 'com.microsoft': 1 } });
  const x = b.input('x', 'float32', [o.zeroCopy ? 'batch' : 1, 'sequence', hidden]);
  const w = (name: string) => b.initializer(name, [hidden, hidden], f32(Array.from({ length: hidden * hidden }, (_, i) => Math.sin(i) * 0.05)));
  const c64 = (vals: number[]) => b.constant([vals.length], i64(vals));
  const scalar = (v: number) => b.constant([], f32([v]));
  const split = (v: Value) => {
    const groups = o.windowTokens ? c64([-1, o.windowTokens, heads, d]) : c64(o.zeroCopy ? [0, 0, heads, d] : [1, -1, heads, d]);
    return b.op('Transpose', [b.op('Reshape', [v, groups])], { attrs: { perm: { type: 'ints', value: [0, 2, 1, 3] } } });
  };
  const q = split(b.op('MatMul', [x, w('Wq')]));
  const k = split(b.op('MatMul', [x, w('Wk')]));
  const v = split(b.op('MatMul', [x, w('Wv')]));
  const scale = 1 / Math.sqrt(d);
  let s: Value;
  if (o.product === 'einsum') s = b.op('Einsum', [q, k], { attrs: { equation: { type: 'string', value: 'bhqd,bhkd->bhqk' } } });
  else if (o.product === 'fused-matmul') {
    s = b.op('FusedMatMul', [q, k], { domain: 'com.microsoft', attrs: { transB: { type: 'int', value: 1 }, alpha: { type: 'float', value: scale } } });
  } else {
    const kt = b.op('Transpose', [k], { attrs: { perm: { type: 'ints', value: [0, 1, 3, 2] } } });
    const headSize = b.op('Cast', [b.op('Gather', [b.op('Shape', [q]), b.constant([], i64([-1]))], { attrs: { axis: { type: 'int', value: 0 } } })], { attrs: { to: { type: 'int', value: 1 } } });
    if (o.scores === 'runtime-sdpa') {
      const root = b.op('Sqrt', [b.op('Div', [scalar(1), b.op('Sqrt', [headSize])])]);
      s = b.op('MatMul', [b.op('Mul', [q, root]), b.op('Mul', [kt, root])]);
    } else s = b.op('MatMul', [q, kt]);
    if (o.scores === 'runtime-pow') s = b.op('Mul', [s, b.op('Pow', [headSize, scalar(-0.5)])]);
  }
  switch (o.product === 'fused-matmul' ? 'none' : o.scores ?? 'mul') {
    case 'none': case 'runtime-pow': case 'runtime-sdpa': break;
    case 'mul': s = b.op('Mul', [s, scalar(scale)]); break;
    case 'div': s = b.op('Div', [s, scalar(Math.sqrt(d))]); break;
    case 'softcap': {
      const cap = o.softcap ?? 50;
      s = b.op('Mul', [b.op('Tanh', [b.op('Div', [b.op('Mul', [s, scalar(scale)]), scalar(cap)])]), scalar(cap)]);
      break;
    }
    case 'relative-bias': {
      // T5: bucket ids from key − query distance, a learned [buckets, heads] table, bias [1, heads, S, S]; no scaling.
      const len = b.op('Gather', [b.op('Shape', [x]), b.constant([], i64([1]))], { attrs: { axis: { type: 'int', value: 0 } } });
      const pos = b.op('Range', [b.constant([], i64([0])), len, b.constant([], i64([1]))]);
      const rel = b.op('Sub', [b.op('Unsqueeze', [pos, c64([0])]), b.op('Unsqueeze', [pos, c64([1])])]);
      const bucket = b.op('Add', [b.op('Clip', [rel, b.constant([], i64([-15])), b.constant([], i64([15]))]), b.constant([], i64([16]))]);
      const table = b.initializer('relative_attention_bias', [32, heads], f32(Array.from({ length: 32 * heads }, (_, i) => Math.cos(i))));
      const bias = b.op('Unsqueeze', [b.op('Transpose', [b.op('Gather', [table, bucket])], { attrs: { perm: { type: 'ints', value: [2, 0, 1] } } }), c64([0])]);
      s = b.op('Add', [s, bias]);
      break;
    }
    case 'sliding-window': {
      // Mistral-style mask: key j visible to query i when j <= i and j > i − W, built from position ranges.
      s = b.op('Mul', [s, scalar(scale)]);
      const len = b.op('Gather', [b.op('Shape', [x]), b.constant([], i64([1]))], { attrs: { axis: { type: 'int', value: 0 } } });
      const pos = b.op('Range', [b.constant([], i64([0])), len, b.constant([], i64([1]))]);
      const qi = b.op('Unsqueeze', [pos, c64([1])]);
      const kj = b.op('Unsqueeze', [pos, c64([0])]);
      const causal = b.op('LessOrEqual', [kj, qi]);
      const W = b.constant([], i64([o.window ?? 16]));
      const distance = () => b.op('Sub', [qi, kj]);
      const inWindow = {
        'keep-greater': () => b.op('Greater', [kj, b.op('Sub', [qi, W])]),
        'hide-less-equal': () => b.op('Not', [b.op('LessOrEqual', [kj, b.op('Sub', [qi, W])])]),
        'distance-less-equal': () => b.op('LessOrEqual', [distance(), W]),
        'hide-constant-less': () => b.op('Not', [b.op('Less', [W, distance()])]),
      }[o.windowEdge ?? 'keep-greater']();
      const keep = b.op('And', [causal, inWindow]);
      s = b.op('Where', [keep, s, scalar(-Infinity)]);
      break;
    }
    case 'position-cut': case 'causal-nonnegative': {
      // Causal AND a comparison of one position against a constant: keys before position 4 only (a cut no reading
      // explains), or keys at positions >= 0 (always true, as transformers' vmap-style masks write it).
      s = b.op('Mul', [s, scalar(scale)]);
      const len = b.op('Gather', [b.op('Shape', [x]), b.constant([], i64([1]))], { attrs: { axis: { type: 'int', value: 0 } } });
      const pos = b.op('Range', [b.constant([], i64([0])), len, b.constant([], i64([1]))]);
      const qi = b.op('Unsqueeze', [pos, c64([1])]);
      const kj = b.op('Unsqueeze', [pos, c64([0])]);
      const cut = o.scores === 'position-cut' ? b.op('Less', [kj, b.constant([], i64([4]))]) : b.op('GreaterOrEqual', [kj, b.constant([], i64([0]))]);
      s = b.op('Where', [b.op('And', [b.op('LessOrEqual', [kj, qi]), cut]), s, scalar(-Infinity)]);
      break;
    }
    case 'alibi': {
      s = b.op('Mul', [s, scalar(scale)]);
      const slopes = b.initializer('alibi_slopes', [heads, 1, 1], f32(Array.from({ length: heads }, (_, h) => 2 ** -(h + 1))));
      const len = b.op('Gather', [b.op('Shape', [x]), b.constant([], i64([1]))], { attrs: { axis: { type: 'int', value: 0 } } });
      const pos = b.op('Cast', [b.op('Range', [b.constant([], i64([0])), len, b.constant([], i64([1]))])], { attrs: { to: { type: 'int', value: 1 } } });
      s = b.op('Add', [s, b.op('Mul', [slopes, b.op('Unsqueeze', [pos, c64([0])])])]);
      break;
    }
  }
  const p = b.op('Softmax', [s], { attrs: { axis: { type: 'int', value: -1 } } });
  const ctx = o.product === 'einsum' ? b.op('Einsum', [p, v], { attrs: { equation: { type: 'string', value: 'bhqk,bhkd->bhqd' } } }) : b.op('MatMul', [p, v]);
  const merged = b.op('Reshape', [b.op('Transpose', [ctx], { attrs: { perm: { type: 'ints', value: [0, 2, 1, 3] } } }), c64(o.zeroCopy ? [0, 0, hidden] : [1, -1, hidden])]);
  const out = b.op('MatMul', [merged, w('Wo')]);
  // A router-style Softmax over logits of a weight MatMul: not attention, must be listed as unmatched.
  const router = b.op('Softmax', [b.op('MatMul', [out, b.initializer('router', [hidden, 8], f32(new Array(hidden * 8).fill(0.01)))])], { attrs: { axis: { type: 'int', value: -1 } } });
  const batch = o.zeroCopy ? 'batch' : 1;
  b.output(b.op('Add', [x, out]), 'float32', [batch, 'sequence', hidden]);
  b.output(router, 'float32', [batch, 'sequence', 8]);
  return b.finish();
}
