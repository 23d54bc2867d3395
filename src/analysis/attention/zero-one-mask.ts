// GPT-2 as transformers wrote it before version 3 masks its scores with a 0/1 causal buffer b twice:
// `w * b - 1e4 * (1 - b)`. Where b is 1 the score passes; where it is 0 the product is 0 and then −10⁴, to which the
// softmax gives no weight, as it would to the score minus 10⁴. So the product by b belongs to the mask (it hides the
// same keys as the term after it), not to the scale: read alone it would be a factor per position.
import type { Node, Value } from '../ir/graph';
import { scalarOf, type Ctx } from './match';

/** Ops that select, move or retype a tensor's elements without computing new values. */
const SELECTING = new Set(['Slice', 'Reshape', 'Unsqueeze', 'Squeeze', 'Expand', 'Identity', 'Transpose', 'Gather', 'Flatten']);
/** Ops whose output is boolean. */
const BOOLEAN = new Set(['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf']);
const LARGEST_READ = 1 << 22;

/**
 * The largest value still read as "hidden": exporters use −∞, the lowest finite float or −10⁴ (older GPT-2); all give
 * exp(·) = 0 next to any visible key, so adding them and writing them in place of the score give the same probabilities.
 */
export const MASK_VALUE_LIMIT = -1e4;

/** The 0/1 tensor m when `term` is c·(1 − m) or (1 − m)·c, and c. */
function complementOf(ctx: Ctx, term: Value): { mask: Value; c: number } | undefined {
  const p = term.producer;
  if (!p || p.opType !== 'Mul' || p.domain !== '') return undefined;
  for (const [i, j] of [[0, 1], [1, 0]]) {
    const c = scalarOf(ctx, p.input(i));
    const sub: Node | null | undefined = p.input(j)?.producer;
    if (c === undefined || !sub || sub.opType !== 'Sub' || sub.domain !== '' || scalarOf(ctx, sub.input(0)) !== 1) continue;
    const mask = sub.input(1);
    if (mask) return { mask, c };
  }
  return undefined;
}

/**
 * The 0/1 tensor whose zeros a term added to the scores (`Add`) or subtracted from them (`Sub`) hides: the term is
 * ∓c·(1 − m) with c at least 10⁴ and m holds only zeros and ones.
 */
export function keysHiddenBy(ctx: Ctx, op: 'Add' | 'Sub', term: Value): Value | undefined {
  const found = complementOf(ctx, term);
  if (!found) return undefined;
  const hides = op === 'Sub' ? -found.c <= MASK_VALUE_LIMIT : found.c <= MASK_VALUE_LIMIT;
  return hides && isZeroOne(found.mask) ? found.mask : undefined;
}

/** Whether `v` holds only zeros and ones: a boolean cast to a number, or selected from a constant that does. */
export function isZeroOne(v: Value, depth = 12): boolean {
  for (let cur: Value | null = v, i = 0; cur && i < depth; i++) {
    const c = cur.initializer ?? (cur.producer?.opType === 'Constant' ? cur.constant : undefined);
    if (c) return c.size <= LARGEST_READ && zerosAndOnes(c);
    const p: Node | null = cur.producer;
    if (!p || p.domain !== '') return false;
    if (p.opType === 'Cast' && isBoolean(p.input(0))) return true;
    if (p.opType !== 'Cast' && !SELECTING.has(p.opType)) return false;
    cur = p.input(0);
  }
  return false;
}

/** Whether `v` is boolean: declared so, a boolean constant, or a comparison's output (moved or selected since). */
function isBoolean(v: Value | null, depth = 12): boolean {
  const declared = v?.info?.type?.tensorType?.elemType;
  if (declared !== undefined && declared !== null) return Number(declared) === 9;
  const c = v?.initializer ?? v?.constant;
  if (c) return c.dtype === 'bool';
  const p = v?.producer;
  if (!p || p.domain !== '' || depth === 0) return false;
  return BOOLEAN.has(p.opType) || (SELECTING.has(p.opType) && isBoolean(p.input(0), depth - 1));
}

function zerosAndOnes(t: { toNumbers(): number[] }): boolean {
  try {
    return t.toNumbers().every((x) => x === 0 || x === 1);
  } catch {
    return false;
  }
}
