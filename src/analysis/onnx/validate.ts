// Checks at the load boundary that everything later code relies on without looking again: a tensor's dims, element
// type and data agree (so reading it never runs past its bytes or allocates what its dims claim but its data does not
// hold), every node's domain has an opset import (so a rewrite that adds a node of that domain is well-formed), nodes
// of the operators the analysis reads have the inputs and the output those operators require, and the head counts of
// fused attention operators are what their kernels accept.
// A file that fails is a ModelError naming the tensor or node, the way onnxruntime would refuse it.
import { byteSize, dtypeName } from './dtypes';
import { ModelError } from './errors';
import { toNum, type IntLike } from './long';
import type { TensorProtoLike } from './tensor';

type TypedField = 'floatData' | 'int32Data' | 'int64Data' | 'doubleData' | 'uint64Data' | 'stringData';

/** Where each element type keeps its values when not in raw_data, and how many entries one element takes. */
const TYPED: Record<number, [TypedField, number]> = {
  1: ['floatData', 1], 2: ['int32Data', 1], 3: ['int32Data', 1], 4: ['int32Data', 1], 5: ['int32Data', 1],
  6: ['int32Data', 1], 7: ['int64Data', 1], 8: ['stringData', 1], 9: ['int32Data', 1], 10: ['int32Data', 1],
  11: ['doubleData', 1], 12: ['uint64Data', 1], 13: ['uint64Data', 1], 14: ['floatData', 2], 15: ['doubleData', 2],
  16: ['int32Data', 1], 17: ['int32Data', 1], 18: ['int32Data', 1], 19: ['int32Data', 1], 20: ['int32Data', 1],
  24: ['int32Data', 1],
  // 4- and 2-bit types pack several elements per int32_data entry; their typed form is not checked.
};

/** Element count of a tensor whose dims are checked here; throws a ModelError for negative or unsafe dims. */
export function checkTensorShape(t: TensorProtoLike, file: string): number {
  const name = t.name ?? '';
  const dims = (t.dims ?? []).map((d) => toNum(d as IntLike));
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new ModelError('bad-tensor', file, `tensor '${name}' has invalid dims [${dims.join(', ')}]`);
  }
  const count = dims.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(count)) throw new ModelError('bad-tensor', file, `tensor '${name}' has ${count} elements, more than any file can hold`);
  const type = t.dataType ?? 0;
  if (dtypeName(type) === `type${type}`) throw new ModelError('bad-tensor', file, `tensor '${name}' has unknown element type ${type}`);
  return count;
}

/**
 * Checks an embedded tensor's data against its dims and type, and returns the bytes its data must take (undefined for
 * strings). External tensors are checked against their reference by the caller.
 */
export function checkTensorData(t: TensorProtoLike, file: string): number | undefined {
  const count = checkTensorShape(t, file);
  const type = t.dataType ?? 0;
  const bytes = byteSize(type, count);
  if (t.dataLocation === 1) {
    if (bytes === undefined) throw new ModelError('bad-tensor', file, `tensor '${t.name ?? ''}' is ${dtypeName(type)}, which cannot be stored as external data`);
    return bytes;
  }
  const dims = `[${(t.dims ?? []).map((d) => toNum(d as IntLike)).join(', ')}]`;
  const raw = t.rawData?.length ?? 0;
  if (raw > 0) {
    if (bytes === undefined) throw new ModelError('bad-tensor', file, `tensor '${t.name ?? ''}' is ${dtypeName(type)}, which cannot be stored as raw_data`);
    if (raw !== bytes) throw new ModelError('bad-tensor', file, `tensor '${t.name ?? ''}' (${dtypeName(type)} ${dims}) needs ${bytes} bytes of data but holds ${raw}`);
    return bytes;
  }
  const typed = TYPED[type];
  if (typed) {
    const [field, per] = typed;
    const have = (t[field] as unknown[] | null | undefined)?.length ?? 0;
    if (have !== count * per) throw new ModelError('bad-tensor', file, `tensor '${t.name ?? ''}' (${dtypeName(type)} ${dims}) needs ${count * per} values but holds ${have}`);
  } else if (count > 0 && (bytes ?? 0) > 0 && !(t.int32Data?.length)) {
    throw new ModelError('bad-tensor', file, `tensor '${t.name ?? ''}' (${dtypeName(type)} ${dims}) holds no data`);
  }
  return bytes;
}

/** Opset versions are positive; every node's domain must be imported (the main graph's nodes: what the tool edits). */
export function checkOpsets(opsets: Map<string, number>, nodes: { name: string; domain: string; qualifiedOp: string }[], file: string): void {
  for (const [domain, version] of opsets) {
    if (!Number.isSafeInteger(version) || version < 1) {
      throw new ModelError('bad-opset', file, `opset import for domain '${domain || 'ai.onnx'}' has invalid version ${version}`);
    }
  }
  for (const n of nodes) {
    if (opsets.has(n.domain)) continue;
    const declared = [...opsets.keys()].map((d) => `'${d || 'ai.onnx'}'`).join(', ') || 'none';
    throw new ModelError('bad-opset', file, `node '${n.name}' (${n.qualifiedOp}) is in domain '${n.domain || 'ai.onnx'}', which the model does not import (opset imports: ${declared})`);
  }
}

/**
 * Inputs every version of these operators requires (the smallest count over opsets, so no valid model is refused):
 * the matchers read `inputs[1]` of an Add or `outputs[0]` of a Softmax without asking whether it is there, as they may
 * in a model onnxruntime would load. Keys are `domain.op` ('' for ONNX).
 */
const MIN_INPUTS: Record<string, number> = Object.fromEntries([
  ...['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Mod', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor',
    'BitShift', 'BitwiseAnd', 'BitwiseOr', 'BitwiseXor', 'PRelu', 'MatMul', 'MatMulInteger', 'Gemm', 'Gather', 'GatherElements',
    'GatherND', 'Expand', 'Tile', 'CumSum', 'Conv', 'ConvTranspose', 'LayerNormalization'].map((op) => [`.${op}`, 2]),
  ...['Where', 'Range', 'ScatterND', 'ScatterElements', 'Attention'].map((op) => [`.${op}`, 3]),
  ...['Softmax', 'LogSoftmax', 'Transpose', 'Reshape', 'Concat', 'Split', 'Slice', 'Squeeze', 'Unsqueeze', 'Cast', 'Shape', 'Size',
    'Identity', 'Trilu', 'ConstantOfShape', 'Einsum', 'Flatten', 'Dropout', 'Neg', 'Sqrt', 'Exp', 'Tanh', 'Erf', 'Sigmoid',
    'Relu', 'Not', 'IsNaN', 'Reciprocal', 'ReduceMean', 'ReduceSum', 'ReduceMax'].map((op) => [`.${op}`, 1]),
  ['com.microsoft.FusedMatMul', 2], ['com.microsoft.Attention', 2], ['com.microsoft.MultiHeadAttention', 1],
  ['com.microsoft.GroupQueryAttention', 1], ['com.microsoft.SkipLayerNormalization', 3],
]);

/** Required inputs present (not omitted with ''), and a first output, for the operators above. */
export function checkNodeArity(
  nodes: { name: string; domain: string; opType: string; qualifiedOp: string; inputs: unknown[]; outputs: { name: string }[] }[],
  file: string,
): void {
  for (const n of nodes) {
    const need = MIN_INPUTS[`${n.domain}.${n.opType}`];
    if (need === undefined) continue;
    for (let i = 0; i < need; i++) {
      if (n.inputs[i]) continue;
      const why = i < n.inputs.length ? `its input ${i} is empty` : `it has ${n.inputs.length} input(s)`;
      throw new ModelError('bad-node', file, `node '${n.name}' (${n.qualifiedOp}) needs at least ${need} input(s), but ${why}`);
    }
    if (!n.outputs[0]?.name) throw new ModelError('bad-node', file, `node '${n.name}' (${n.qualifiedOp}) has no output`);
  }
}

const ATTR_TYPE_NAMES: Record<number, string> = { 0: 'UNDEFINED', 1: 'FLOAT', 2: 'INT', 3: 'STRING', 4: 'TENSOR', 5: 'GRAPH', 6: 'FLOATS', 7: 'INTS', 8: 'STRINGS' };
const INT = 2;
const FLOAT = 1;
const INTS = 7;

/** Attributes of the fused attention operators that detection and the rewrites read, with their ONNX types. */
const ATTENTION_ATTRS: Record<string, Record<string, number>> = {
  'com.microsoft.Attention': { num_heads: INT, unidirectional: INT, do_rotary: INT, qkv_hidden_sizes: INTS, scale: FLOAT },
  'com.microsoft.PackedAttention': { num_heads: INT, qkv_hidden_sizes: INTS, scale: FLOAT },
  'com.microsoft.MultiHeadAttention': { num_heads: INT, unidirectional: INT, scale: FLOAT },
  'com.microsoft.PackedMultiHeadAttention': { num_heads: INT, scale: FLOAT },
  'com.microsoft.DecoderMaskedMultiHeadAttention': { num_heads: INT, scale: FLOAT },
  'com.microsoft.GroupQueryAttention': { num_heads: INT, kv_num_heads: INT, local_window_size: INT, do_rotary: INT, scale: FLOAT, softcap: FLOAT },
  'com.microsoft.SparseAttention': { num_heads: INT, kv_num_heads: INT, do_rotary: INT, scale: FLOAT },
  '.Attention': { q_num_heads: INT, kv_num_heads: INT, is_causal: INT, scale: FLOAT, softcap: FLOAT },
};
const HEAD_COUNTS = ['num_heads', 'q_num_heads', 'kv_num_heads'];
/** Per-head tables are built from these counts; the largest models have 128 heads. */
const MAX_HEADS = 65536;

interface AttrLike { name?: string | null; type?: number | null; i?: unknown; ints?: unknown[] | null }

/**
 * The attributes above have their ONNX type, and head counts are positive with the KV heads dividing the query heads
 * (what onnxruntime's kernels require). protobufjs reads an INT that is absent as 0, so an attribute given as FLOAT
 * would otherwise read as 0 heads, and a rewrite would divide by it.
 */
export function checkAttributes(
  nodes: { name: string; domain: string; opType: string; qualifiedOp: string; attributes: Map<string, AttrLike> }[],
  file: string,
): void {
  for (const n of nodes) {
    if (n.domain === '' && n.opType === 'Transpose') checkPerm(n, file);
    const spec = ATTENTION_ATTRS[`${n.domain}.${n.opType}`];
    if (!spec) continue;
    const bad = (detail: string) => new ModelError('bad-node', file, `node '${n.name}' (${n.qualifiedOp}): ${detail}`);
    for (const [name, type] of Object.entries(spec)) {
      const a = n.attributes.get(name);
      if (a && (a.type ?? 0) !== type) throw bad(`attribute '${name}' is ${ATTR_TYPE_NAMES[a.type ?? 0] ?? `type ${a.type}`}; it must be ${ATTR_TYPE_NAMES[type]}`);
    }
    const heads = new Map<string, number>();
    for (const name of HEAD_COUNTS) {
      const a = n.attributes.get(name);
      if (!a) continue;
      const v = toNum(a.i as IntLike);
      if (!Number.isSafeInteger(v) || v < 1 || v > MAX_HEADS) throw bad(`${name} is ${v}; it must be a whole number from 1 to ${MAX_HEADS}`);
      heads.set(name, v);
    }
    const q = heads.get('num_heads') ?? heads.get('q_num_heads');
    const kv = heads.get('kv_num_heads');
    if (q !== undefined && kv !== undefined && q % kv !== 0) throw bad(`kv_num_heads ${kv} does not divide the ${q} query heads`);
  }
}

/**
 * A Transpose's perm is a permutation of 0..n-1 (onnxruntime refuses anything else). The layout walk indexes the input's
 * axes with it, so an entry of 7 or -1 would read an axis that is not there.
 */
function checkPerm(n: { name: string; qualifiedOp: string; attributes: Map<string, AttrLike> }, file: string): void {
  const a = n.attributes.get('perm');
  if (!a) return;
  const perm = (a.ints ?? []).map((x) => toNum(x as IntLike));
  const ok = a.type === INTS && perm.every((p) => Number.isInteger(p) && p >= 0 && p < perm.length) && new Set(perm).size === perm.length;
  if (!ok) throw new ModelError('bad-node', file, `node '${n.name}' (${n.qualifiedOp}): perm [${perm.join(', ')}] is not a permutation of its axes`);
}
