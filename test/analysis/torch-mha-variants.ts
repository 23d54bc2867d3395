// A torch.nn.MultiheadAttention-style self-attention over token ids, written the way the TorchScript exporter writes
// it (heads folded into the batch: scores [batch·heads, S, S]), in the layouts and with the key-padding masks that
// the input analysis must tell apart: sequence-first or batch-first ids, symbolic or fixed dims, and masks whose true
// means attend or padding.
import { GraphBuilder } from '../../src/analysis/ir/builder';
import type { Value } from '../../src/analysis/ir/graph';
import { f32, i64 } from '../../src/analysis/ir/tensor-data';
import type { Model } from '../../src/analysis/ir/load';

export type MaskForm =
  /** Where(mask, -inf, 0) added to the scores: torch.nn's key_padding_mask, true = padding. */
  | 'bool-pad'
  /** Where(mask, scores, -inf): true = attend. */
  | 'bool-keep'
  /** Where(Not(mask), -inf, 0): true = attend, said through a Not. */
  | 'bool-not'
  /** (1 - Cast(mask)) * finfo.min: transformers' integer masks, 1 = attend. */
  | 'int-keep'
  /** Cast(mask) * -1e9: 1 = padding. */
  | 'int-pad'
  /** Only multiplied into the output (pooling): nothing says what true means. */
  | 'bool-unused';

export interface MhaOptions {
  layout: 'seq-first' | 'batch-first';
  /** Symbolic dims (`S`, `B`) or the fixed sizes 6 and 2. */
  dims: 'symbolic' | 'fixed';
  mask?: MaskForm;
  /** The mask's dims when they are not the ids' [batch, sequence] (a mask over other keys, or with names of its own). */
  maskDims?: [string, string];
}

const HEADS = 2;
const WIDTH = 8;
const HEAD = WIDTH / HEADS;
const VOCAB = 16;

export function buildTorchMha(o: MhaOptions): Model {
  const b = GraphBuilder.create({ opsets: { '': 17 } });
  const [S, B] = o.dims === 'symbolic' ? ['S', 'B'] : [6, 2];
  const ids = b.input('ids', 'int64', o.layout === 'seq-first' ? [S, B] : [B, S]);
  const c64 = (vals: number[]) => b.constant([vals.length], i64(vals));
  const scalar = (v: number) => b.constant([], f32([v]));
  const weight = (name: string, rows: number, cols: number) =>
    b.initializer(name, [rows, cols], f32(Array.from({ length: rows * cols }, (_, i) => Math.sin(i + name.length) * 0.1)));
  const perm = (v: Value, p: number[]) => b.op('Transpose', [v], { attrs: { perm: { type: 'ints', value: p } } });

  let x = b.op('Gather', [weight('embedding', VOCAB, WIDTH), ids]);
  // nn.MultiheadAttention(batch_first=True) transposes to [S, B, E] before anything else.
  if (o.layout === 'batch-first') x = perm(x, [1, 0, 2]);
  const heads = (v: Value) => b.op('Reshape', [v, c64([0, -1, HEAD])]); // [S, B·H, d]
  const q = perm(heads(b.op('MatMul', [x, weight('Wq', WIDTH, WIDTH)])), [1, 0, 2]);
  const kT = perm(heads(b.op('MatMul', [x, weight('Wk', WIDTH, WIDTH)])), [1, 2, 0]);
  const v = perm(heads(b.op('MatMul', [x, weight('Wv', WIDTH, WIDTH)])), [1, 0, 2]);
  let scores = b.op('Mul', [b.op('MatMul', [q, kT]), scalar(1 / Math.sqrt(HEAD))]);

  let pooled: Value | undefined;
  if (o.mask) {
    const isBool = o.mask.startsWith('bool');
    const mask = b.input('key_padding_mask', isBool ? 'bool' : 'int64', o.maskDims ?? [B, S]);
    // [B, T] -> [B, H, 1, T] -> [B·H, 1, T], the key length read off the ids as the exporter does.
    const seqAxis = o.layout === 'seq-first' ? 0 : 1;
    const len = b.op('Gather', [b.op('Shape', [ids]), b.constant([1], i64([seqAxis]))], { attrs: { axis: { type: 'int', value: 0 } } });
    const folded = (m: Value) =>
      b.op('Reshape', [b.op('Expand', [b.op('Unsqueeze', [m, c64([1, 2])]), c64([1, HEADS, 1, 1])]), b.op('Concat', [c64([-1, 1]), len], { attrs: { axis: { type: 'int', value: 0 } } })]);
    const toFloat = (m: Value) => b.op('Cast', [m], { attrs: { to: { type: 'int', value: 1 } } });
    switch (o.mask) {
      case 'bool-pad':
        scores = b.op('Add', [scores, b.op('Where', [folded(mask), scalar(-Infinity), scalar(0)])]);
        break;
      case 'bool-keep':
        scores = b.op('Where', [folded(mask), scores, scalar(-Infinity)]);
        break;
      case 'bool-not':
        scores = b.op('Add', [scores, b.op('Where', [b.op('Not', [folded(mask)]), scalar(-Infinity), scalar(0)])]);
        break;
      case 'int-keep':
        scores = b.op('Add', [scores, b.op('Mul', [b.op('Sub', [scalar(1), toFloat(folded(mask))]), scalar(-3.4028234663852886e38)])]);
        break;
      case 'int-pad':
        scores = b.op('Add', [scores, b.op('Mul', [toFloat(folded(mask)), scalar(-1e9)])]);
        break;
      case 'bool-unused':
        pooled = b.op('ReduceSum', [toFloat(mask)], { attrs: { keepdims: { type: 'int', value: 0 } } });
        break;
    }
  }
  const p = b.op('Softmax', [scores], { attrs: { axis: { type: 'int', value: -1 } } });
  const ctx = b.op('Reshape', [perm(b.op('MatMul', [p, v]), [1, 0, 2]), c64([0, -1, WIDTH])]); // [S, B, E]
  let out = b.op('MatMul', [ctx, weight('Wo', WIDTH, WIDTH)]);
  if (o.layout === 'batch-first') out = perm(out, [1, 0, 2]);
  if (pooled) out = b.op('Mul', [out, pooled]);
  b.output(out, 'float32', o.layout === 'seq-first' ? [S, B, WIDTH] : [B, S, WIDTH]);
  return b.finish();
}
