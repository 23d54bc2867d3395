// Conversion between host tensors and onnxruntime tensors. Both sides use the same typed-array conventions (bool as
// Uint8Array, float16 as raw bits), so this is a wrap, not a copy, except for float16 outputs that onnxruntime may
// hand back as a Float16Array where the runtime provides one.
import * as ort from 'onnxruntime-node';
import { floatToHalf } from '../../analysis/numeric/float16';
import { type HostTensor, type TensorArray, isDtype } from '../tensor';

export function toOrt(t: HostTensor): ort.Tensor {
  return new ort.Tensor(t.dtype, t.data as ort.Tensor.DataType, t.dims);
}

export function fromOrt(name: string, value: ort.OnnxValue): HostTensor {
  const t = value as ort.Tensor;
  if (!isDtype(t.type)) throw new Error(`output ${name}: dtype ${t.type} is not supported by the runtime client`);
  let data = t.data as unknown;
  if (t.type === 'float16' && !(data instanceof Uint16Array)) {
    const src = data as ArrayLike<number>;
    const bits = new Uint16Array(src.length);
    for (let i = 0; i < src.length; i++) bits[i] = floatToHalf(src[i]);
    data = bits;
  }
  if (!ArrayBuffer.isView(data)) throw new Error(`output ${name}: ${t.type} data is not a typed array`);
  return { dtype: t.type, dims: [...t.dims], data: data as TensorArray };
}
