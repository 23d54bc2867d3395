// Shared vocabulary of the matchers: a match is a value or a reason, never an exception, so the report can say why
// each Softmax was not claimed.
import type { Graph, Node, Value } from '../ir/graph';
import type { ShapeInfo } from '../ir/shapes';

export type Match<T> = { ok: true; value: T } | { ok: false; reason: string };

export const ok = <T>(value: T): Match<T> => ({ ok: true, value });
export const fail = <T = never>(reason: string): Match<T> => ({ ok: false, reason });

export interface Ctx {
  graph: Graph;
  shapes: ShapeInfo;
  order: Map<Node, number>;
}

/** The scalar value of a constant (or constant-folded) value, if it has exactly one element. */
export function scalarOf(ctx: Ctx, v: Value | null): number | undefined {
  if (!v) return undefined;
  const c = v.constant;
  if (c && c.size === 1) {
    try {
      return c.toNumbers()[0];
    } catch {
      return undefined;
    }
  }
  const vals = ctx.shapes.values(v);
  if (vals && vals.length === 1 && typeof vals[0] === 'number') {
    const shape = ctx.shapes.shape(v);
    if (!shape || shape.every((d) => d === 1)) return vals[0];
  }
  return undefined;
}

/**
 * Quantize-dequantize pairs on activations (onnxruntime's static QDQ format): they round a value to 8 bits and back,
 * keeping its layout and meaning, so the analysis walks through them like a Cast (data input 0).
 */
export const QDQ_OPS: ReadonlySet<string> = new Set(['QuantizeLinear', 'DequantizeLinear']);

/**
 * Products of an activation with a weight: plain, Gemm, 4-bit (MatMulNBits), onnxruntime's FusedMatMul, and the
 * integer forms dynamic quantization writes (MatMulInteger after DynamicQuantizeLinear, and what onnxruntime fuses
 * them into). The weight may be either operand; the callers check which one is constant.
 */
export const WEIGHT_PRODUCTS: ReadonlySet<string> = new Set(['MatMul', 'Gemm', 'MatMulNBits', 'MatMulInteger', 'FusedMatMul', 'DynamicQuantizeMatMul', 'MatMulIntegerToFloat']);

/** Ops whose later inputs are indices or sizes, not values that reach the output. */
const DATA_FIRST = new Set(['Slice', 'Reshape', 'Expand', 'Tile', 'Gather', 'Unsqueeze', 'Squeeze', 'Pad', 'Split']);

/**
 * True when a constant-like value is replicated to a size the inputs set: a learned query array expanded or tiled to
 * the batch (Perceiver's latents, SigLIP's pooling probe). It is then the data Q of an attention, where a weight (even
 * one sliced with ends read from a shape, as torch.nn slices its packed in_proj_weight) is not.
 */
export function expandedByInput(v: Value | null, depth = 12): boolean {
  const p = v?.producer;
  if (!p || depth === 0 || p.opType === 'Shape' || p.opType === 'Size') return false;
  if ((p.opType === 'Expand' || p.opType === 'Tile') && !isFixed(p.input(1))) return true;
  const data = DATA_FIRST.has(p.opType) ? [p.input(0)] : p.inputs;
  return data.some((i) => expandedByInput(i, depth - 1));
}

/**
 * A node with a subgraph (Loop, If, Scan) reads the values its body captures from the enclosing graph besides its
 * inputs: PyTorch 1.13 repeats K's heads for `repeat_interleave` in a Loop whose only inputs are a shape, a constant and
 * an empty sequence. Such an output is never taken for a constant.
 */
function hasSubgraph(n: Node): boolean {
  for (const a of n.attributes.values()) if (a.g || a.graphs?.length) return true;
  return false;
}

/** Computed from constants alone, a Shape of such a value included: nothing about the inputs, not even their sizes. */
export function isFixed(v: Value | null, depth = 12): boolean {
  if (!v || v.constant) return true;
  const p = v.producer;
  if (v.isGraphInput || !p || depth === 0 || hasSubgraph(p)) return false;
  return p.inputs.every((i) => isFixed(i, depth - 1));
}

/** True when the value is computed from constants only (weights, folded shapes): not part of the data path. */
export function isConstantLike(ctx: Ctx, v: Value | null, depth = 12): boolean {
  if (!v) return true;
  if (v.constant) return true;
  if (v.isGraphInput) return false;
  const p = v.producer;
  if (!p || depth === 0 || hasSubgraph(p)) return false;
  if (p.opType === 'Shape') return true;
  return p.inputs.every((i) => isConstantLike(ctx, i, depth - 1));
}

export function attrInt(n: Node, name: string): number | undefined {
  const a = n.attr(name);
  if (!a || a.i === undefined || a.i === null) return undefined;
  return typeof a.i === 'number' ? a.i : Number(String(a.i));
}

export function attrFloat(n: Node, name: string): number | undefined {
  const a = n.attr(name);
  return a && a.f !== undefined && a.f !== null ? a.f : undefined;
}

export function attrInts(n: Node, name: string): number[] | undefined {
  const a = n.attr(name);
  return a?.ints ? a.ints.map((x) => Number(String(x))) : undefined;
}
