// Symbolic shape and small-constant propagation: enough to read head counts, head sizes and sequence dims off the
// graph without running it. Dims are numbers, symbol names (from graph inputs), or null when unknown. Small integer
// tensors (the Shape -> Gather -> Concat -> Reshape chains exporters emit) carry their values, symbols included.
import { toNum } from '../onnx/long';
import { Tensor } from '../onnx/tensor';
import type { Graph, Node, Value } from './graph';
import type { Dim } from '../report/types';
import { einsumText, parseEinsum } from './einsum';
import { castTarget, integerOutput } from './element-kind';
import { isIntegerType } from '../onnx/dtypes';
import { MAX_VALUES, binary, castValues, padShape, broadcast, clampAxis, isCount, isNum, matmul, mulDim, normAxis, numList, prod, prodDims, reshape, sliceIndex, sumDims, unaryValues } from './shape-math';

export interface ValueFacts {
  shape?: Dim[];
  /** Element values for small int/float tensors (at most MAX_VALUES elements), symbols allowed. */
  values?: Dim[];
  /** The elements are integers or booleans (true), floats (false), or the graph does not say (absent). */
  integer?: boolean;
}


export class ShapeInfo {
  private readonly facts = new Map<Value, ValueFacts>();

  constructor(readonly graph: Graph) {
    for (const v of graph.inputs) this.facts.set(v, { shape: declaredShape(v), integer: declaredInteger(v) });
    for (const [, v] of graph.values) {
      const t = v.initializer;
      if (t && !v.isGraphInput) this.facts.set(v, { shape: t.dims, values: smallValues(() => t.toNumbers(), t.size, t.dataType), integer: isIntegerType(t.dataType) });
    }
    const get: Get = (v) => (v ? this.facts.get(v) ?? {} : {});
    for (const n of graph.nodes) {
      let out: ValueFacts[] = [];
      try {
        out = infer(n, get);
      } catch {
        out = [];
      }
      const integer = integerOutput(n, (v) => get(v).integer);
      n.outputs.forEach((v, i) => {
        const f = out[i] ?? {};
        if (!f.shape) {
          const d = declaredShape(v);
          if (d) f.shape = d;
        }
        f.integer = integer ?? declaredInteger(v);
        if (f.shape) f.shape = f.shape.map(dimOrUnknown);
        this.facts.set(v, f);
      });
    }
  }

  shape(v: Value | null | undefined): Dim[] | undefined {
    return v ? this.facts.get(v)?.shape : undefined;
  }

  values(v: Value | null | undefined): Dim[] | undefined {
    return v ? this.facts.get(v)?.values : undefined;
  }
}

function declaredInteger(v: Value): boolean | undefined {
  const t = v.info?.type?.tensorType?.elemType;
  return t ? isIntegerType(t) : undefined;
}

function declaredShape(v: Value): Dim[] | undefined {
  const dims = v.info?.type?.tensorType?.shape?.dim;
  if (!dims) return undefined;
  return dims.map((d) => dimOrUnknown(d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? toNum(d.dimValue as never) : null));
}

/**
 * A dimension is a count: a declared -1 or 2^63, or a product that overflowed 2^53, is unknown. Rewrites write known
 * dims into int64 constants, which must hold them exactly.
 */
function dimOrUnknown(d: Dim): Dim {
  return typeof d === 'number' && !(Number.isSafeInteger(d) && d >= 0) ? null : d;
}

function smallValues(read: () => number[], size: number, dataType: number): Dim[] | undefined {
  if (size > MAX_VALUES || dataType === 8) return undefined;
  try {
    return read();
  } catch {
    return undefined;
  }
}

type Get = (v: Value | null) => ValueFacts;

const UNARY = new Set([
  'Relu', 'Gelu', 'Tanh', 'Sigmoid', 'Neg', 'Sqrt', 'Erf', 'Cos', 'Sin', 'Not', 'Identity', 'Reciprocal', 'Exp', 'Log',
  'IsNaN', 'IsInf', 'Abs', 'FastGelu', 'BiasGelu', 'QuickGelu', 'Trilu', 'CumSum', 'Clip', 'Softmax', 'LogSoftmax', 'Dropout',
  'LayerNormalization', 'SimplifiedLayerNormalization', 'SkipLayerNormalization', 'SkipSimplifiedLayerNormalization',
  'RotaryEmbedding', 'RMSNormalization', 'Floor', 'Ceil', 'Round', 'Sign', 'Softplus', 'HardSigmoid', 'Silu', 'Mish',
  'BatchNormalization', 'InstanceNormalization', 'Elu', 'LeakyRelu',
]);
const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Max', 'Min', 'Mod', 'BitwiseAnd']);

function ints(n: Node, name: string): number[] | undefined {
  const a = n.attr(name);
  return a?.ints ? a.ints.map((x) => toNum(x as never)) : undefined;
}
function int(n: Node, name: string, dflt: number): number {
  const a = n.attr(name);
  return a && a.i !== undefined && a.i !== null ? toNum(a.i as never) : dflt;
}

function infer(n: Node, get: Get): ValueFacts[] {
  const x = get(n.input(0));
  const op = n.opType;
  if (op === 'Constant') {
    const t = n.constantTensor();
    return t ? [{ shape: t.dims, values: smallValues(() => t.toNumbers(), t.size, t.dataType) }] : [];
  }
  if (op === 'SkipLayerNormalization' || op === 'SkipSimplifiedLayerNormalization') {
    // outputs: normalized, mean, inv_std_var, input_skip_bias_sum; the first and last keep the input's shape
    return [{ shape: x.shape }, {}, {}, { shape: x.shape }];
  }
  if (UNARY.has(op)) {
    const vals = op === 'Identity' ? x.values : unaryValues(op, x.values);
    return [{ shape: x.shape, values: vals }];
  }
  if (op === 'Cast' || op === 'CastLike') return [{ shape: x.shape, values: castValues(x.values, castTarget(n, (v) => get(v).integer)) }];
  // Quantize-dequantize pairs keep the shape (the values are rounded, so they are not carried).
  if ((op === 'QuantizeLinear' || op === 'DequantizeLinear') && n.domain === '') return [{ shape: x.shape }];
  if (BINARY.has(op)) return [binary(op, x, get(n.input(1)))];
  switch (op) {
    case 'Shape': {
      if (!x.shape) return [{ shape: [null] }];
      const r = x.shape.length;
      const start = clampAxis(int(n, 'start', 0), r);
      const end = clampAxis(int(n, 'end', r), r);
      const vals = x.shape.slice(start, end);
      return [{ shape: [vals.length], values: vals }];
    }
    case 'Size': return [{ shape: [], values: x.shape && x.shape.every(isNum) ? [prod(x.shape as number[])] : undefined }];
    case 'Gather': {
      const idx = get(n.input(1));
      const axis = int(n, 'axis', 0);
      let shape: Dim[] | undefined;
      if (x.shape && idx.shape) {
        const a = normAxis(axis, x.shape.length);
        shape = [...x.shape.slice(0, a), ...idx.shape, ...x.shape.slice(a + 1)];
      }
      let values: Dim[] | undefined;
      if (x.values && idx.values && x.shape?.length === 1) {
        values = idx.values.map((i) => (typeof i === 'number' ? x.values![i < 0 ? i + x.values!.length : i] ?? null : null));
      }
      return [{ shape, values }];
    }
    case 'Unsqueeze': {
      const axes = ints(n, 'axes') ?? numList(get(n.input(1)).values);
      if (!x.shape || !axes) return [{ values: x.values }];
      const r = x.shape.length + axes.length;
      const norm = axes.map((a) => normAxis(a, r)).sort((a, b) => a - b);
      const shape = [...x.shape];
      for (const a of norm) shape.splice(a, 0, 1);
      return [{ shape, values: x.values }];
    }
    case 'Squeeze': {
      const axes = ints(n, 'axes') ?? numList(get(n.input(1)).values);
      if (!x.shape) return [{ values: x.values }];
      const drop = axes ? new Set(axes.map((a) => normAxis(a, x.shape!.length))) : new Set(x.shape.map((d, i) => (d === 1 ? i : -1)));
      return [{ shape: x.shape.filter((_, i) => !drop.has(i)), values: x.values }];
    }
    case 'Concat': {
      const parts = n.inputs.map((v) => get(v));
      const axis = int(n, 'axis', 0);
      let shape: Dim[] | undefined;
      if (parts.every((p) => p.shape)) {
        const r = parts[0].shape!.length;
        const a = normAxis(axis, r);
        shape = [...parts[0].shape!];
        shape[a] = sumDims(parts.map((p) => p.shape![a]));
      }
      // Shape vectors: a part with unknown values but a known length still places the parts after it.
      const values =
        shape?.length === 1 && parts.every((p) => p.values || (p.shape?.length === 1 && isCount(p.shape[0])))
          ? parts.flatMap((p) => p.values ?? new Array<Dim>(p.shape![0] as number).fill(null))
          : undefined;
      return [{ shape, values }];
    }
    case 'GatherElements': return [{ shape: get(n.input(1)).shape }];
    case 'ScatterElements': case 'ScatterND': return [{ shape: x.shape }];
    case 'Pad': return [{ shape: padShape(x.shape, n.input(1) ? get(n.input(1)).values : ints(n, 'pads'), n.input(3) ? get(n.input(3)).values : undefined) }];
    case 'Reshape': return [{ shape: reshape(x.shape, get(n.input(1)).values, int(n, 'allowzero', 0) === 1), values: x.values }];
    case 'Flatten': {
      if (!x.shape) return [{}];
      const a = normAxis(int(n, 'axis', 1), x.shape.length + 1);
      return [{ shape: [prodDims(x.shape.slice(0, a)), prodDims(x.shape.slice(a))] }];
    }
    case 'Transpose': {
      if (!x.shape) return [{}];
      const perm = ints(n, 'perm') ?? x.shape.map((_, i) => x.shape!.length - 1 - i);
      if (perm.length !== x.shape.length) return [{}]; // the input is not of the rank the perm was written for
      return [{ shape: perm.map((p) => x.shape![p] ?? null) }];
    }
    case 'MatMul': case 'MatMulInteger': case 'MatMulNBits': case 'DynamicQuantizeMatMul': case 'MatMulIntegerToFloat':
      return [{ shape: matmul(x.shape, get(n.input(1)).shape, n) }];
    case 'DynamicQuantizeLinear': return [{ shape: x.shape }, { shape: [] }, { shape: [] }];
    case 'FusedMatMul': {
      const t = (s: Dim[] | undefined, flag: string) => (s && s.length >= 2 && int(n, flag, 0) ? [...s.slice(0, -2), s[s.length - 1], s[s.length - 2]] : s);
      return [{ shape: matmul(t(x.shape, 'transA'), t(get(n.input(1)).shape, 'transB'), n) }];
    }
    case 'Einsum': return [{ shape: einsum(n, n.inputs.map((v) => get(v).shape)) }];
    case 'Gemm': {
      const b = get(n.input(1)).shape;
      if (!x.shape || !b) return [{}];
      const m = int(n, 'transA', 0) ? x.shape[1] : x.shape[0];
      const nn = int(n, 'transB', 0) ? b[0] : b[1];
      return [{ shape: [m, nn] }];
    }
    case 'Where': {
      const s = broadcast(broadcast(x.shape, get(n.input(1)).shape), get(n.input(2)).shape);
      const c = x.values;
      const a = get(n.input(1)).values;
      const b = get(n.input(2)).values;
      let values: Dim[] | undefined;
      if (c && a && b && s?.length === 1) {
        const len = s[0];
        if (typeof len === 'number') values = Array.from({ length: len }, (_, i) => {
          const ci = c[c.length === 1 ? 0 : i];
          if (ci === null || typeof ci === 'string') return null;
          return ci ? a[a.length === 1 ? 0 : i] : b[b.length === 1 ? 0 : i];
        });
      }
      return [{ shape: s, values }];
    }
    case 'Expand': {
      const target = get(n.input(1)).values;
      return [{ shape: target ? broadcast(x.shape, target) : undefined }];
    }
    case 'ConstantOfShape': {
      const target = get(n.input(0)).values;
      const count = target && target.every(isNum) ? prod(target as number[]) : undefined;
      let values: Dim[] | undefined;
      if (count !== undefined && count <= MAX_VALUES) {
        const t = n.attr('value')?.t;
        const fill = t ? new Tensor(t as never).toNumbers()[0] : 0;
        values = new Array<Dim>(count).fill(fill);
      }
      return [{ shape: target ?? undefined, values }];
    }
    case 'Range': {
      const [s, l, d] = [0, 1, 2].map((i) => get(n.input(i)).values?.[0]);
      if (isNum(s) && isNum(l) && isNum(d) && d !== 0) return [{ shape: [Math.max(0, Math.ceil((l - s) / d))] }];
      if (s === 0 && d === 1 && typeof l === 'string') return [{ shape: [l] }];
      return [{ shape: [null] }];
    }
    case 'Slice': {
      const starts = get(n.input(1)).values ?? ints(n, 'starts');
      const ends = get(n.input(2)).values ?? ints(n, 'ends');
      const axes = n.input(3) ? get(n.input(3)).values : ints(n, 'axes');
      const steps = n.input(4) ? get(n.input(4)).values : undefined;
      if (!x.shape || !starts || !ends) return [{}];
      const shape = [...x.shape];
      let values: Dim[] | undefined;
      starts.forEach((st, i) => {
        const a = normAxis(Number(axes?.[i] ?? i), shape.length);
        const dim = shape[a];
        const step = Number(steps?.[i] ?? 1);
        if (isNum(dim) && isNum(st) && isNum(ends[i])) {
          const [b, e] = [sliceIndex(st, dim, step), sliceIndex(ends[i] as number, dim, step)];
          shape[a] = Math.max(0, Math.ceil((e - b) / step));
          if (x.values && x.shape!.length === 1 && step > 0) values = x.values.slice(b, e).filter((_, k) => k % step === 0);
        } else shape[a] = null;
      });
      return [{ shape, values }];
    }
    case 'Split': {
      if (!x.shape) return n.outputs.map(() => ({}));
      const a = normAxis(int(n, 'axis', 0), x.shape.length);
      const sizes = numList(get(n.input(1)).values) ?? ints(n, 'split');
      const dim = x.shape[a];
      return n.outputs.map((_, i) => {
        const s = [...x.shape!];
        s[a] = sizes ? sizes[i] : isNum(dim) ? dim / n.outputs.length : null;
        return { shape: s };
      });
    }
    case 'ReduceMean': case 'ReduceSum': case 'ReduceMax': case 'ReduceMin': case 'ReduceL2': case 'ReduceProd': {
      if (!x.shape) return [{}];
      const axes = ints(n, 'axes') ?? numList(get(n.input(1)).values) ?? x.shape.map((_, i) => i);
      const keep = int(n, 'keepdims', 1) === 1;
      const set = new Set(axes.map((a) => normAxis(a, x.shape!.length)));
      return [{ shape: x.shape.flatMap((d, i) => (set.has(i) ? (keep ? [1] : []) : [d])) }];
    }
    case 'Tile': {
      const reps = get(n.input(1)).values;
      if (!x.shape || !reps) return [{}];
      return [{ shape: x.shape.map((d, i) => mulDim(d, reps[i] ?? 1)) }];
    }
    case 'Conv': case 'ConvTranspose': case 'MaxPool': case 'AveragePool': return [{ shape: convShape(n, x.shape, get(n.input(1)).shape) }];
    case 'GlobalAveragePool': case 'GlobalMaxPool': return [{ shape: x.shape ? [...x.shape.slice(0, 2), ...x.shape.slice(2).map(() => 1)] : undefined }];
    case 'Attention': return [fusedOutput(n, get)];
    case 'MultiHeadAttention': case 'GroupQueryAttention': case 'PackedAttention': case 'PackedMultiHeadAttention':
    case 'DecoderMaskedMultiHeadAttention': case 'SparseAttention':
      return [fusedOutput(n, get)];
    default: return [];
  }
}

/** Output shape of an Einsum equation (`bhqd,bhkd->bhqk`, `...qd,...kd->...qk`): each label's size from its operands. */
function einsum(n: Node, shapes: (Dim[] | undefined)[]): Dim[] | undefined {
  const text = einsumText(n);
  if (!text) return undefined;
  // An operand of unknown shape has as many axes as its labels (unless an ellipsis hides how many).
  const terms = text.replace(/\s+/g, '').split('->')[0].split(',');
  if (shapes.some((s, i) => !s && terms[i]?.includes('...'))) return undefined;
  const eq = parseEinsum(text, shapes.map((s, i) => s?.length ?? terms[i]?.length ?? 0));
  if (!eq) return undefined;
  const dims = new Map<string, Dim>();
  eq.inputs.forEach((labels, i) => {
    if (!shapes[i]) return;
    labels.forEach((c, k) => {
      const prev = dims.get(c);
      if (prev === undefined || prev === null || prev === 1) dims.set(c, shapes[i]![k]);
    });
  });
  return eq.output.map((c) => dims.get(c) ?? null);
}

/** Conv/pooling output: [N, C_out, spatial...] from kernel, strides, pads and dilations. */
function convShape(n: Node, x: Dim[] | undefined, w: Dim[] | undefined): Dim[] | undefined {
  if (!x || x.length < 3) return undefined;
  const spatial = x.length - 2;
  const isConv = n.opType === 'Conv' || n.opType === 'ConvTranspose';
  const kernel = ints(n, 'kernel_shape') ?? (w ? (w.slice(2) as number[]) : undefined);
  if (!kernel) return undefined;
  const strides = ints(n, 'strides') ?? new Array(spatial).fill(1);
  const dil = ints(n, 'dilations') ?? new Array(spatial).fill(1);
  const pads = ints(n, 'pads') ?? new Array(2 * spatial).fill(0);
  const auto = n.attr('auto_pad')?.s ? new TextDecoder().decode(n.attr('auto_pad')!.s!) : 'NOTSET';
  const out: Dim[] = [x[0], isConv ? (n.opType === 'ConvTranspose' ? null : w?.[0] ?? null) : x[1]];
  for (let i = 0; i < spatial; i++) {
    const d = x[2 + i];
    const k = (kernel[i] - 1) * dil[i] + 1;
    // A hostile file's zero stride or empty kernel has no output length.
    if (!(strides[i] >= 1) || !(k >= 1)) { out.push(null); continue; }
    if (typeof d === 'string' && n.opType !== 'ConvTranspose') { out.push(convSymbol(d, auto, k, pads[i] + pads[i + spatial], strides[i])); continue; }
    if (!isNum(d) || n.opType === 'ConvTranspose') { out.push(null); continue; }
    if (auto === 'SAME_UPPER' || auto === 'SAME_LOWER') { out.push(Math.ceil(d / strides[i])); continue; }
    out.push(Math.floor((d + pads[i] + pads[i + spatial] - k) / strides[i]) + 1);
  }
  return out;
}

/**
 * A convolution's output length over an open input length: the same symbol where it keeps the length, else one named
 * after the computation, so that two readings of it (a Shape of the features, the features themselves) agree. Audio
 * encoders cut their frames with strided convolutions before attending over them (wav2vec 2.0, Whisper's stem).
 */
function convSymbol(d: string, auto: string, k: number, pad: number, stride: number): Dim {
  if (auto === 'SAME_UPPER' || auto === 'SAME_LOWER') return stride === 1 ? d : `ceil(${d}/${stride})`;
  if (auto !== 'NOTSET' && auto !== 'VALID') return null;
  const cut = auto === 'VALID' ? k - 1 : k - 1 - pad;
  const shifted = (by: number) => (by === 0 ? d : `${d}${by > 0 ? '-' : '+'}${Math.abs(by)}`);
  return stride === 1 ? shifted(cut) : `floor((${shifted(cut + 1)})/${stride})+1`;
}

/** Output shape of fused attention operators: [batch, sequence, heads * v head size] (ONNX Attention with 4-D inputs keeps 4-D). */
function fusedOutput(n: Node, get: Get): ValueFacts {
  const q = get(n.input(0)).shape;
  if (!q) return {};
  if (n.domain === '' && q.length === 4) {
    const v = get(n.input(2)).shape;
    return { shape: [q[0], q[1], q[2], v ? v[3] : null] };
  }
  if (n.opType === 'Attention' && n.domain === 'com.microsoft') {
    const w = get(n.input(1)).shape;
    const sizes = ints(n, 'qkv_hidden_sizes');
    return { shape: [q[0], q[1], sizes ? sizes[2] : w && isNum(w[1]) ? w[1] / 3 : null] };
  }
  const v = get(n.input(2)).shape;
  const width = n.domain === '' && v?.length === 3 ? onnxAttentionWidth(n, v[2]) : q[2];
  return { shape: [q[0], q[1], n.opType === 'GroupQueryAttention' || n.opType === 'SparseAttention' ? q[2] : width] };
}

/** ONNX Attention with 3-D inputs gives q_num_heads heads of V's head size (V holds kv_num_heads of them). */
function onnxAttentionWidth(n: Node, vWidth: Dim): Dim {
  const qHeads = n.attr('q_num_heads')?.i;
  const kvHeads = n.attr('kv_num_heads')?.i;
  if (qHeads === undefined || qHeads === null || kvHeads === undefined || kvHeads === null) return vWidth;
  const [hq, hkv] = [Number(String(qHeads)), Number(String(kvHeads))];
  if (hq === hkv) return vWidth;
  return isNum(vWidth) && hkv > 0 ? (vWidth / hkv) * hq : null;
}
