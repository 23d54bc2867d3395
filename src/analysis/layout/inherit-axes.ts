// A variant takes the inputs of the model it was rewritten from, but its own analysis may not establish their layout:
// a compute-reducing form's blocked scores no longer carry the sequence axis that input-axes.ts follows, so a
// sequence-first model's variant would be fed [batch, sequence] inputs (and fail, or run a different model). Where a
// run times or compares variants against their reference, each variant input that matches a reference input (same
// name, dtype and rank) and has no layout of its own takes the reference's.
import type { InputInfo } from '../report/types';

export function withReferenceLayout(reference: InputInfo[], infos: InputInfo[]): InputInfo[] {
  return infos.map((info) => {
    const ref = reference.find((r) => r.name === info.name && r.dtype === info.dtype && r.shape.length === info.shape.length);
    if (!ref) return info;
    return {
      ...info,
      ...(info.axes === undefined && ref.axes ? { axes: ref.axes } : {}),
      ...(info.maskMeaning === undefined && ref.maskMeaning ? { maskMeaning: ref.maskMeaning } : {}),
    };
  });
}
