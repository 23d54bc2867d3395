// The arithmetic of symbolic dims and small constant values that shape propagation (shapes.ts) applies node by node:
// broadcasting, MatMul and Reshape shapes, element-wise ops on values that may be symbols, axis normalisation.
import { toNum } from '../onnx/long';
import type { Node } from './graph';
import type { Dim } from '../report/types';
import type { ValueFacts } from './shapes';
import type { CastTarget } from './element-kind';

/** Element values are carried for tensors of at most this many elements. */
export const MAX_VALUES = 64;

/** Scalar math that exporters use to compute scales from shapes (1/sqrt(head_dim)). */
export function unaryValues(op: string, v: Dim[] | undefined): Dim[] | undefined {
  const f = { Sqrt: Math.sqrt, Reciprocal: (x: number) => 1 / x, Neg: (x: number) => -x, Exp: Math.exp, Log: Math.log, Abs: Math.abs }[op];
  if (!f || !v || !v.every(isNum)) return undefined;
  return (v as number[]).map(f);
}

export function isNum(d: unknown): d is number {
  return typeof d === 'number' && Number.isFinite(d);
}
/** A length small enough to hold values for (a declared or computed dim may be negative or 2^40). */
export function isCount(d: unknown): d is number {
  return isNum(d) && Number.isInteger(d) && d >= 0 && d <= MAX_VALUES;
}
export function numList(v: Dim[] | undefined): number[] | undefined {
  return v && v.every(isNum) ? (v as number[]) : undefined;
}
/**
 * An axis in [-rank, rank) made non-negative. Anything else makes the node invalid: this throws, and the node's
 * outputs get no facts (an axis of 2^31 used as an array index would make a sparse array of that length).
 */
export function normAxis(a: number, rank: number): number {
  const x = a < 0 ? a + rank : a;
  if (!Number.isInteger(x) || x < 0 || x >= rank) throw new RangeError(`axis ${a} outside a rank-${rank} shape`);
  return x;
}
export function clampAxis(a: number, rank: number): number {
  const x = a < 0 ? a + rank : a;
  return Math.min(Math.max(x, 0), rank);
}
export function sliceIndex(i: number, dim: number, step: number): number {
  let x = i < 0 ? i + dim : i;
  return step > 0 ? Math.min(Math.max(x, 0), dim) : Math.min(Math.max(x, -1), dim - 1);
}
export function prod(a: number[]): number {
  return a.reduce((x, y) => x * y, 1);
}
export function sumDims(ds: Dim[]): Dim {
  return ds.every(isNum) ? (ds as number[]).reduce((a, b) => a + b, 0) : ds.length === 1 ? ds[0] : null;
}
export function mulDim(a: Dim, b: Dim): Dim {
  if (isNum(a) && isNum(b)) return a * b;
  if (a === 1) return b;
  if (b === 1) return a;
  return null;
}
export function prodDims(ds: Dim[]): Dim {
  return ds.reduce<Dim>((a, b) => mulDim(a, b), 1);
}

export function broadcast(a: Dim[] | undefined, b: Dim[] | undefined): Dim[] | undefined {
  if (!a || !b) return undefined;
  const r = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    // Missing leading dims broadcast as 1; a present-but-unknown dim (null) stays unknown.
    const ia = a.length - r + i;
    const ib = b.length - r + i;
    const x = ia < 0 ? 1 : a[ia];
    const y = ib < 0 ? 1 : b[ib];
    out.push(x === 1 ? y : y === 1 ? x : x === y ? x : isNum(x) ? x : isNum(y) ? y : x);
  }
  return out;
}

export function matmul(a: Dim[] | undefined, b: Dim[] | undefined, n: Node): Dim[] | undefined {
  if (!a || !b) return undefined;
  if (n.opType === 'MatMulNBits') return [...a.slice(0, -1), toNum(n.attr('N')?.i as never)];
  const aa = a.length === 1 ? [1, a[0]] : a;
  const bb = b.length === 1 ? [b[0], 1] : b;
  const batch = broadcast(aa.slice(0, -2), bb.slice(0, -2)) ?? [];
  const out = [...batch, aa[aa.length - 2], bb[bb.length - 1]];
  if (a.length === 1) out.splice(out.length - 2, 1);
  if (b.length === 1) out.splice(out.length - 1, 1);
  return out;
}

/** Values after a Cast: truncated toward zero into integers, 0/1 into booleans; dropped when the target is unknown. */
export function castValues(v: Dim[] | undefined, to: CastTarget): Dim[] | undefined {
  if (!v || to === 'float') return v;
  if (to === undefined) return undefined;
  // A symbol is a dimension: a positive integer.
  return v.map((x) => (to === 'bool' ? (x === null ? null : x === 0 ? 0 : 1) : isNum(x) ? Math.trunc(x) : x));
}

/** Element-wise ops on small values: integer shape arithmetic, with symbols treated as positive unknowns. */
export function binary(op: string, a: ValueFacts, b: ValueFacts): ValueFacts {
  const shape = broadcast(a.shape, b.shape);
  let values: Dim[] | undefined;
  if (a.values && b.values && shape && shape.length <= 1) {
    const len = Math.max(a.values.length, b.values.length);
    const integer = a.integer ?? b.integer;
    values = Array.from({ length: len }, (_, i) => elem(op, a.values![a.values!.length === 1 ? 0 : i], b.values![b.values!.length === 1 ? 0 : i], integer));
  }
  return { shape, values };
}

/** One element of a binary op. `integer`: the operands' element type is an integer type (both share one). */
function elem(op: string, x: Dim, y: Dim, integer: boolean | undefined): Dim {
  if (isNum(x) && isNum(y)) {
    switch (op) {
      case 'Add': return x + y;
      case 'Sub': return x - y;
      case 'Mul': return x * y;
      case 'Div': return divide(x, y, integer);
      case 'Pow': return integer === true && y < 0 ? null : finite(x ** y);
      case 'Equal': return x === y ? 1 : 0;
      case 'Less': return x < y ? 1 : 0;
      case 'Greater': return x > y ? 1 : 0;
      case 'Max': return Math.max(x, y);
      case 'Min': return Math.min(x, y);
      default: return null;
    }
  }
  // A symbol stands for a dimension: it never equals a non-positive number, and equals itself.
  if (op === 'Equal') {
    if (typeof x === 'string' && x === y) return 1;
    if ((typeof x === 'string' && isNum(y) && y <= 0) || (typeof y === 'string' && isNum(x) && x <= 0)) return 0;
  }
  if (op === 'Mul' && (x === 1 || y === 1)) return x === 1 ? y : x;
  if ((op === 'Add' || op === 'Sub') && y === 0) return x;
  return null;
}

/**
 * Integer division truncates toward zero, float division does not. Where the graph does not say which (an untyped
 * input), only a quotient that both agree on is known: 1 / 8 could be 0 or 0.125.
 */
function divide(x: number, y: number, integer: boolean | undefined): Dim {
  if (y === 0) return null;
  const q = x / y;
  if (integer === true) return Math.trunc(q);
  if (integer === false || Number.isInteger(q)) return finite(q);
  return null;
}

function finite(x: number): Dim {
  return Number.isFinite(x) ? x : null;
}

/** Pad's output shape: each axis grows by its two pads; an axis with an unknown pad is unknown (the rank stays). */
export function padShape(x: Dim[] | undefined, pads: Dim[] | undefined, axesIn: Dim[] | undefined): Dim[] | undefined {
  if (!x) return undefined;
  const axes = axesIn ? numList(axesIn)?.map((a) => normAxis(a, x.length)) : x.map((_, i) => i);
  if (!axes || !pads || pads.length !== 2 * axes.length) return x.map(() => null);
  const out = [...x];
  axes.forEach((a, i) => {
    const [b, e] = [pads[i], pads[i + axes.length]];
    out[a] = b === 0 && e === 0 ? x[a] : isNum(b) && isNum(e) && isNum(x[a]) ? x[a] + b + e : null;
  });
  return out;
}

export function reshape(input: Dim[] | undefined, target: Dim[] | undefined, allowzero: boolean): Dim[] | undefined {
  if (!target) return undefined;
  const out = target.map((d, i) => (d === 0 && !allowzero ? input?.[i] ?? null : d));
  const minus = out.indexOf(-1);
  if (minus >= 0) {
    out[minus] = null;
    if (input) {
      // Cancel symbols that appear on both sides, then divide the numeric products.
      const syms = new Map<string, number>();
      let num = 1;
      let known = true;
      for (const d of input) {
        if (isNum(d)) num *= d;
        else if (typeof d === 'string') syms.set(d, (syms.get(d) ?? 0) + 1);
        else known = false;
      }
      let den = 1;
      out.forEach((d, i) => {
        if (i === minus) return;
        if (isNum(d)) den *= d;
        else if (typeof d === 'string' && (syms.get(d) ?? 0) > 0) syms.set(d, syms.get(d)! - 1);
        else known = false;
      });
      const leftover = [...syms.entries()].filter(([, c]) => c > 0);
      if (known && den !== 0) {
        if (leftover.length === 0) out[minus] = num / den;
        else if (leftover.length === 1 && leftover[0][1] === 1 && num === den) out[minus] = leftover[0][0];
      }
    }
  }
  return out;
}
