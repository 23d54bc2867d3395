// A fixture copy with fixed shapes, as models exported without dynamic axes are: every symbolic dimension named in
// `sizes` becomes that number, in the inputs, the outputs and the declared value infos alike.
import * as path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { loadModel } from '../../src/analysis/ir/load';
import { saveModel } from '../../src/analysis/ir/save';
import { fixture } from './fixtures';

/** `sizes`: dimension name -> size, or feeds whose shapes give the inputs' dimensions. Returns the copy's path. */
export function pinFixture(name: string, dir: string, sizes: Record<string, number> | Record<string, ort.Tensor>, tag = 'pinned'): string {
  const model = loadModel(fixture(name).model);
  const fixed = new Map<string, number>();
  for (const [k, v] of Object.entries(sizes)) if (typeof v === 'number') fixed.set(k, v);
  for (const v of model.graph.inputs) {
    const feed = sizes[v.name];
    if (typeof feed !== 'object') continue;
    const dims = v.info?.type?.tensorType?.shape?.dim ?? [];
    dims.forEach((d, i) => { if (d.dimParam) fixed.set(d.dimParam, feed.dims[i]); });
  }
  for (const v of model.graph.values.values()) {
    for (const d of v.info?.type?.tensorType?.shape?.dim ?? []) {
      if (d.dimParam && fixed.has(d.dimParam)) {
        d.dimValue = fixed.get(d.dimParam);
        delete d.dimParam;
      }
    }
  }
  const file = path.join(dir, `${name}.${tag}.onnx`);
  saveModel(model, file);
  return file;
}
