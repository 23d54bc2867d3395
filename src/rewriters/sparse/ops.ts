// A thin layer over GraphBuilder for the sparse rules (and the expansion of fused operators): every node and constant
// is named `<anchor>::<rule>/<what>` (so detection and the profiler attribute it to the site). Operators are written in
// their opset-13 form only (Unsqueeze, Squeeze, ReduceSum and Split take axes and sizes as inputs; Range, GatherElements,
// ScatterElements, TopK with largest/sorted, LessOrEqual and integer Min/Max are there too): rules that use SiteOps
// declare `minOpset: SITE_OPS_OPSET` and the pipeline raises an older model to it first (opset/upgrade.ts). Integer
// tensors are int64 throughout: Shape, Range and the index operators all use it.
import { attr, type Attr, type GraphBuilder, type Input } from '../../analysis/ir/builder';
import type { Value } from '../../analysis/ir/graph';
import type { TensorData } from '../../analysis/ir/tensor-data';
import { floatTypeOf } from './values';

export type FloatType = 'float32' | 'float16';

/** ONNX TensorProto element type numbers for the types the rules create. */
export const ONNX_TYPE = { float32: 1, int32: 6, int64: 7, bool: 9, float16: 10 } as const;

/**
 * The value added outside a pattern. Not −∞ itself: a row with every key masked would then soft-max to NaN, and a NaN
 * key or value reaches every later query through 0·NaN. The lowest finite value gives exactly the same probabilities
 * wherever the row has one visible key (exp underflows to 0), which every pattern here guarantees for real queries.
 */
export const NEG_FLOAT32 = -3.4028234663852886e38;
const NEG_FLOAT16_BITS = 0xfbff; // -65504, the lowest finite half

/** The ONNX opset whose operator forms SiteOps writes. */
export const SITE_OPS_OPSET = 13;

export class SiteOps {
  constructor(
    readonly b: GraphBuilder,
    /** `<anchor>::<rule>`. */
    readonly prefix: string,
    /** Element type of the site's scores and activations. */
    readonly float: FloatType,
  ) {
    const opset = b.model.opsets.get('') ?? 0;
    // A rule without `minOpset`, or a caller outside the pipeline, would write nodes the model's opset does not have.
    if (opset < SITE_OPS_OPSET) throw new Error(`${prefix}: the model is at ONNX opset ${opset}; raise it to ${SITE_OPS_OPSET} first (Rule.minOpset)`);
  }

  name(what: string): string {
    return `${this.prefix}/${what}`;
  }

  op(type: string, inputs: readonly Input[], what: string, attrs?: Record<string, Attr>, domain?: string): Value {
    return this.b.op(type, inputs, { name: this.name(what), ...(attrs ? { attrs } : {}), ...(domain ? { domain } : {}) });
  }

  // ---- constants (initializers, so that they cost no kernel time) ----

  /** Large constants (mask bands, key offsets) are shared by every site that needs the same one. */
  const(what: string, dims: readonly number[], data: TensorData): Value {
    return this.b.sharedInitializer(this.name(what), dims, data);
  }
  i64(values: readonly number[], what = 'i64'): Value {
    return this.const(what, [values.length], { dtype: 'int64', data: values });
  }
  scalarI64(v: number, what = 'k'): Value {
    return this.const(what, [], { dtype: 'int64', data: [v] });
  }
  /** A float constant in the site's float type (or `float`). */
  floats(values: readonly number[], dims: readonly number[], what = 'f', float = this.float): Value {
    if (float === 'float32') return this.const(what, dims, { dtype: 'float32', data: values });
    return this.const(what, dims, { dtype: 'float16', data: Uint16Array.from(values, toHalfBits) });
  }
  scalarF(v: number, what = 'f', float = this.float): Value {
    return this.floats([v], [], what, float);
  }
  zeroF(float = this.float): Value {
    return this.scalarF(0, 'zero', float);
  }
  negF(float = this.float): Value {
    return float === 'float32' ? this.scalarF(NEG_FLOAT32, 'neg', float) : this.const('neg', [], { dtype: 'float16', data: Uint16Array.of(NEG_FLOAT16_BITS) });
  }

  // ---- shapes ----

  shape(v: Value, what = 'shape'): Value {
    return this.op('Shape', [v], what);
  }
  /** Dimension `axis` of a shape vector, as an int64 scalar. */
  dim(shapeVec: Value, axis: number, what = 'dim'): Value {
    return this.op('Gather', [shapeVec, this.scalarI64(axis, 'axis')], what, { axis: attr.int(0) });
  }
  /** A scalar as a one-element vector (for Concat into shapes). */
  vec(scalar: Value, what = 'vec'): Value {
    return this.unsqueeze(scalar, [0], what);
  }
  unsqueeze(v: Value, axes: number[], what = 'unsqueeze'): Value {
    return this.op('Unsqueeze', [v, this.i64(axes, 'axes')], what);
  }
  squeeze(v: Value, axes: number[], what = 'squeeze'): Value {
    return this.op('Squeeze', [v, this.i64(axes, 'axes')], what);
  }
  concat(vs: Value[], axis: number, what = 'concat'): Value {
    return vs.length === 1 ? vs[0] : this.op('Concat', vs, what, { axis: attr.int(axis) });
  }
  /** A shape vector from parts: numbers become constants, scalars become one-element vectors, vectors stay. */
  shapeOf(parts: (number | Value)[], what = 'target'): Value {
    const vecs: Value[] = [];
    let run: number[] = [];
    const flush = () => {
      if (run.length) vecs.push(this.i64(run, 'dims'));
      run = [];
    };
    for (const p of parts) {
      if (typeof p === 'number') run.push(p);
      else {
        flush();
        vecs.push(p);
      }
    }
    flush();
    return this.concat(vecs, 0, what);
  }
  reshape(v: Value, shape: Value, what = 'reshape'): Value {
    return this.op('Reshape', [v, shape], what);
  }
  transpose(v: Value, perm: number[], what = 'transpose'): Value {
    return this.op('Transpose', [v], what, { perm: attr.ints(perm) });
  }
  /** Slice along one axis; bounds are numbers or int64 scalars. */
  slice(v: Value, axis: number, start: number | Value, end: number | Value, what = 'slice'): Value {
    const bound = (x: number | Value, w: string) => (typeof x === 'number' ? this.i64([x], w) : this.vec(x, w));
    return this.op('Slice', [v, bound(start, 'start'), bound(end, 'end'), this.i64([axis], 'axes')], what);
  }
  reduceSum(v: Value, axes: number[], keepdims: boolean, what = 'sum'): Value {
    return this.op('ReduceSum', [v, this.i64(axes, 'axes')], what, { keepdims: attr.int(keepdims ? 1 : 0) });
  }
  /** int64 [0, 1, ..., n-1] (n an int64 scalar), optionally shifted by `start`. */
  range(n: Value, what = 'range', start?: Value): Value {
    const s = start ?? this.scalarI64(0, 'zero_i');
    const limit = start ? this.op('Add', [start, n], `${what}_end`) : n;
    return this.op('Range', [s, limit, this.scalarI64(1, 'one_i')], what);
  }
  /** Zeros of the site's float type with a runtime shape. */
  zeros(shape: Value, what = 'zeros'): Value {
    const value = this.float === 'float32' ? attr.tensor([1], { dtype: 'float32', data: [0] }) : attr.tensor([1], { dtype: 'float16', data: Uint16Array.of(0) });
    return this.op('ConstantOfShape', [shape], what, { value });
  }
  cast(v: Value, to: keyof typeof ONNX_TYPE, what = 'cast'): Value {
    return this.op('Cast', [v], what, { to: attr.int(ONNX_TYPE[to]) });
  }
  toFloat(v: Value, what = 'tofloat'): Value {
    return this.cast(v, this.float, what);
  }
  /** 0 where `visible`, the masking value elsewhere, in the site's float type (or `float`). */
  additive(visible: Value, what = 'bias', float = this.float): Value {
    return this.op('Where', [visible, this.zeroF(float), this.negF(float)], what);
  }
  /**
   * The scores with the masking value added outside `visible`, in the scores' own type: a model in float16 may cast
   * them to float32 for its Softmax (transformers' Llama does), so Q's type is not theirs.
   */
  masked(scores: Value, visible: Value, what = 'add'): Value {
    return this.op('Add', [scores, this.additive(visible, 'bias', floatTypeOf(scores))], what);
  }
  /** ceil(a / b) for int64 scalars a ≥ 0 and a constant b > 0. */
  ceilDiv(a: Value, b: number, what = 'ceildiv'): Value {
    return this.op('Div', [this.op('Add', [a, this.scalarI64(b - 1)], `${what}_add`), this.scalarI64(b)], what);
  }
}

function toHalfBits(x: number): number {
  // Correct for the constants the rules use (0, ±1, small integers, -65504); not a general converter.
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  const mant = (u >>> 13) & 0x3ff;
  if (x === 0) return sign;
  if (exp >= 31) return sign | 0x7bff;
  if (exp <= 0) return sign;
  return sign | (exp << 10) | mant;
}
