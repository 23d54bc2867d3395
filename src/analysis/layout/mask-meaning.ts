// Whether a 0/1 or boolean mask input means "attend" or "padding" where it is true, read from how the graph uses it.
// Conventions disagree: Hugging Face and ONNX Attention take true = attend, torch.nn.MultiheadAttention's
// key_padding_mask takes true = ignore. A mask synthesized with the wrong meaning masks every key: the softmax of
// an all -inf row is NaN.
//
// The mask's two values are followed forward as a pair: what the tensor holds where the input is true (t) and where it
// is false (f). Casts, reshapes, Not, Equal and arithmetic with constants transform the pair; the pair is decided the
// moment one side becomes a large negative number (an additive mask) and the other stays neutral (0, or the scores
// passed through a Where). Examples:
//   Where(mask, -inf, 0)                     t = -inf, f = 0      → true means pad
//   Where(mask, scores, -inf)                t = scores, f = -inf → true means keep
//   (1 - Cast(mask)) * finfo.min             t = 0, f = min       → keep
//   ONNX Attention's boolean attn_mask       true = attend (by the operator's definition) → keep
// And/Or with another mask (or a product with a 0/1 one), and Where with the mask as a value rather than the condition,
// pass the pair on: the other mask lets it through where this one's meaning is decided.
import type { Node, Value } from '../ir/graph';
import type { ShapeInfo } from '../ir/shapes';
import { isZeroOne } from '../attention/zero-one-mask';
import { toNum } from '../onnx/long';
import { Tensor } from '../onnx/tensor';

/** A side of the pair: a number, or 'x' for a non-constant tensor (the scores) passed through. */
type Side = number | 'x';
/** `bool`: whether the tensor is boolean (an operator's boolean mask input and its additive float mask differ). */
interface Pair { t: Side; f: Side; bool: boolean }

export type MaskMeaning = 'keep' | 'pad';
export type MaskVerdict = { meaning: MaskMeaning } | { meaning: undefined; reason: string };

/** Below this an additive mask value removes a key (exporters use -inf, finfo.min, -1e9 or -1e4). */
const LARGE_NEGATIVE = -1e3;

const PASS_THROUGH = new Set([
  'Identity', 'Reshape', 'Unsqueeze', 'Squeeze', 'Expand', 'Flatten', 'Transpose', 'Slice', 'Concat', 'Gather', 'GatherND',
  'GatherElements', 'Tile', 'Split', 'And', 'Or',
]);

export function maskMeaning(input: Value, isBool: boolean, shapes: ShapeInfo, limit = 20_000): MaskVerdict {
  const verdicts = new Set<MaskMeaning>();
  const seen = new Set<string>();
  const ids = new Map<Value, number>();
  const stack: [Value, Pair][] = [[input, { t: 1, f: 0, bool: isBool }]];
  while (stack.length > 0 && seen.size < limit) {
    const [v, pair] = stack.pop()!;
    const key = `${ids.get(v) ?? ids.set(v, ids.size).get(v)}:${pair.t}:${pair.f}:${pair.bool}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const decided = decide(pair);
    if (decided) {
      verdicts.add(decided);
      continue;
    }
    for (const use of v.uses) {
      const step = transform(use.node, use.index, pair, shapes);
      if (step === 'keep' || step === 'pad') verdicts.add(step);
      else for (const [out, p] of step) stack.push([out, p]);
    }
  }
  if (verdicts.size === 1) return { meaning: [...verdicts][0] };
  if (verdicts.size > 1) return { meaning: undefined, reason: 'the graph uses it both ways' };
  return { meaning: undefined, reason: 'no use of it in the graph shows whether true means attend or padding' };
}

function decide(p: Pair): MaskMeaning | undefined {
  const removes = (s: Side) => typeof s === 'number' && s <= LARGE_NEGATIVE;
  const neutral = (s: Side) => s === 'x' || Math.abs(s) <= 1;
  if (removes(p.f) && neutral(p.t)) return 'keep';
  if (removes(p.t) && neutral(p.f)) return 'pad';
  return undefined;
}

const truthy = (s: Side): Side => (s === 'x' ? 'x' : s !== 0 ? 1 : 0);

/** The pair on each output of `n`, or a verdict an operator's definition gives directly. */
function transform(n: Node, index: number, p: Pair, shapes: ShapeInfo): [Value, Pair][] | MaskMeaning {
  const op = n.opType;
  const out = n.outputs[0];
  const both = (fn: (s: Side) => Side | undefined, bool = p.bool): [Value, Pair][] => {
    const t = fn(p.t);
    const f = fn(p.f);
    return t === undefined || f === undefined || Number.isNaN(t) || Number.isNaN(f) ? [] : [[out, { t, f, bool }]];
  };
  // ONNX Attention: a boolean attn_mask is true where attention is allowed; a float one is added (decided above).
  if (n.domain === '' && op === 'Attention' && index === 3) return (p.bool && boolMeaning(p)) || [];
  if (n.domain === 'com.microsoft' && ((op === 'Attention' && index === 3) || (op === 'MultiHeadAttention' && index === 4))) {
    // mask_index / key_padding_mask: 1 = attend, 0 = masked (onnxruntime's contrib operator definitions).
    return boolMeaning(p) ?? [];
  }
  if (n.domain !== '' && n.domain !== 'ai.onnx') return [];
  if (op === 'Shape' || op === 'Size') return [];
  if (PASS_THROUGH.has(op)) {
    const data = index === 0 || op === 'Concat' || op === 'And' || op === 'Or' || op === 'Max' || op === 'Min';
    return data ? n.outputs.filter((o) => o.name !== '').map((o) => [o, p]) : [];
  }
  switch (op) {
    case 'Cast': {
      const to = n.attr('to')?.i;
      return toNum(to as never) === 9 ? both(truthy, true) : both((s) => s, false);
    }
    case 'Not':
      return both((s) => (s === 'x' ? 'x' : s === 0 ? 1 : 0));
    case 'Equal': {
      const c = uniformValue(n.input(1 - index), shapes);
      return c === undefined ? [] : both((s) => (s === 'x' ? 'x' : s === c ? 1 : 0), true);
    }
    case 'Add': case 'Sub': case 'Mul': case 'Div': {
      const other = n.input(1 - index);
      const c = uniformValue(other, shapes);
      // A product with another 0/1 mask (T5's decoder multiplies the padding mask by the causal one) is an And.
      if (c === undefined && op === 'Mul' && other && isZeroOne(other)) return [[out, p]];
      if (c === undefined) return [];
      return both((s) => (s === 'x' ? 'x' : arith(op, index === 0 ? s : c, index === 0 ? c : s)), false);
    }
    case 'Where': {
      if (index !== 0) return [[out, p]];
      const a: Side = uniformValue(n.input(1), shapes) ?? 'x';
      const b: Side = uniformValue(n.input(2), shapes) ?? 'x';
      return both((s) => (s === 'x' ? undefined : s !== 0 ? a : b), false);
    }
    default:
      return [];
  }
}

function boolMeaning(p: Pair): MaskMeaning | undefined {
  const t = truthy(p.t);
  const f = truthy(p.f);
  if (t === 1 && f === 0) return 'keep';
  if (t === 0 && f === 1) return 'pad';
  return undefined;
}

function arith(op: string, a: number, b: number): number {
  switch (op) {
    case 'Add': return a + b;
    case 'Sub': return a - b;
    case 'Mul': return a * b;
    default: return a / b;
  }
}

/** The single value every element of `v` holds, when it is a constant (possibly reshaped, cast or expanded). */
export function uniformValue(v: Value | null, shapes: ShapeInfo, depth = 0): number | undefined {
  if (!v || depth > 8) return undefined;
  const c = v.constant;
  if (c) return c.size <= 4096 ? allSame(numbersOf(c)) : undefined;
  const p = v.producer;
  if (p && p.domain === '') {
    if (p.opType === 'ConstantOfShape') {
      const t = p.attr('value')?.t;
      return t ? allSame(numbersOf(new Tensor(t as never))) : 0;
    }
    if (['Expand', 'Reshape', 'Unsqueeze', 'Squeeze', 'Identity', 'Cast'].includes(p.opType)) {
      const x = uniformValue(p.input(0), shapes, depth + 1);
      if (x === undefined || p.opType !== 'Cast') return x;
      return toNum(p.attr('to')?.i as never) === 9 ? (x !== 0 ? 1 : 0) : x;
    }
  }
  const vals = shapes.values(v);
  return vals && vals.every((d) => typeof d === 'number') ? allSame(vals as number[]) : undefined;
}

/** The values, or none for element types without a numeric reading (strings, complex, 4-bit), where toNumbers throws. */
function numbersOf(t: Tensor): number[] {
  try {
    return t.toNumbers();
  } catch {
    return [];
  }
}

function allSame(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  return xs.every((x) => x === xs[0] || (Number.isNaN(x) && Number.isNaN(xs[0]))) ? xs[0] : undefined;
}
