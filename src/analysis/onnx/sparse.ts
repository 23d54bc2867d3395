// Sparse initializers (GraphProto.sparse_initializer): a SparseTensorProto holds the non-zero values, their indices
// (linear [nnz], or coordinates [nnz, rank]) and the dense shape. They are made dense at load, so the analysis counts
// them and the rewriters read and cut them like any weight; one too large to hold densely is refused with a reason.
import { byteSize, DataType, dtypeName } from './dtypes';
import { ModelError } from './errors';
import { toNum, type IntLike } from './long';
import type { Tensor, TensorProtoLike } from './tensor';

export interface SparseTensorProtoLike {
  values?: TensorProtoLike | null;
  indices?: TensorProtoLike | null;
  dims?: IntLike[] | null;
}

/** The largest dense tensor a sparse initializer may become (bytes). */
export const DENSE_LIMIT = 512 * 2 ** 20;

/** The dense TensorProto of a sparse one; `tensor` turns a TensorProto into a checked Tensor (external data too). */
export function densify(sp: SparseTensorProtoLike, file: string, tensor: (t: TensorProtoLike) => Tensor): TensorProtoLike {
  const fail = (what: string) => new ModelError('bad-tensor', file, `sparse initializer '${sp.values?.name ?? ''}' ${what}`);
  if (!sp.values || !sp.indices) throw fail('has no values or no indices');
  const values = tensor(sp.values);
  const indices = tensor(sp.indices);
  const name = values.name;
  if (!name) throw fail('has no name (its values tensor names it)');
  const dims = (sp.dims ?? []).map((d) => toNum(d));
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw fail(`has dims [${dims.join(', ')}]`);
  const count = dims.reduce((a, b) => a * b, 1);
  const per = byteSize(values.dataType, 1);
  if (!per || byteSize(values.dataType, 2) !== 2 * per) throw fail(`holds ${dtypeName(values.dataType)} values, which cannot be made dense here`);
  const bytes = count * per;
  if (!Number.isSafeInteger(bytes) || bytes > DENSE_LIMIT) throw fail(`would take ${bytes} bytes once dense (more than ${DENSE_LIMIT}); not supported`);
  const nnz = values.dims.length === 1 ? values.dims[0] : -1;
  if (nnz < 0) throw fail(`has values of shape [${values.dims.join(', ')}], not one axis`);
  if (indices.dataType !== DataType.INT64) throw fail(`has ${dtypeName(indices.dataType)} indices, not int64`);
  const linear = linearIndices(indices, nnz, dims);
  if (typeof linear === 'string') throw fail(linear);
  const src = values.bytes();
  const out = new Uint8Array(bytes);
  linear.forEach((at, i) => out.set(src.subarray(i * per, (i + 1) * per), at * per));
  return { name, dims: dims.map(String), dataType: values.dataType, rawData: out };
}

/** Each non-zero's position in the dense tensor (row-major), or why the indices are wrong. */
function linearIndices(indices: Tensor, nnz: number, dims: number[]): number[] | string {
  const flat = indices.toNumbers();
  const count = dims.reduce((a, b) => a * b, 1);
  const rank = dims.length;
  let out: number[];
  if (indices.dims.length === 1 && indices.dims[0] === nnz) out = flat;
  else if (indices.dims.length === 2 && indices.dims[0] === nnz && indices.dims[1] === rank) {
    out = [];
    for (let i = 0; i < nnz; i++) {
      let at = 0;
      for (let a = 0; a < rank; a++) {
        const c = flat[i * rank + a];
        if (!(Number.isSafeInteger(c) && c >= 0 && c < dims[a])) return `has coordinate ${c} outside axis ${a} of size ${dims[a]}`;
        at = at * dims[a] + c;
      }
      out.push(at);
    }
  } else return `has indices of shape [${indices.dims.join(', ')}] for ${nnz} values of a rank-${rank} tensor`;
  const bad = out.find((x) => !(Number.isSafeInteger(x) && x >= 0 && x < count));
  return bad === undefined ? out : `has index ${bad} outside its ${count} entries`;
}
