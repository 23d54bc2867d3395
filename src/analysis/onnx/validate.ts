// Checks at the load boundary that everything later code relies on without looking again: a tensor's dims, element
// type and data agree (so reading it never runs past its bytes or allocates what its dims claim but its data does not
// hold), every node's domain has an opset import (so a rewrite that adds a node of that domain is well-formed), and
// nodes of the operators the analysis reads have the inputs and the output those operators require.
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
