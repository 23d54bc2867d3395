// A fixture converted to float16 throughout, as onnxconverter-common's convert_float_to_float16 does without
// keep_io_types (and as models exported in half precision are): float32 inputs, outputs, weights, constants, fills and
// casts all become float16. Only for tests: it converts what the fixtures hold, not every operator's attributes.
import * as path from 'node:path';
import { GraphBuilder } from '../../src/analysis/ir/builder';
import { loadModel } from '../../src/analysis/ir/load';
import { saveModel } from '../../src/analysis/ir/save';
import { floatToHalf } from '../../src/analysis/numeric/float16';
import { DataType } from '../../src/analysis/onnx/dtypes';
import { fixture } from './fixtures';

export function float16Fixture(name: string, dir: string): string {
  const model = loadModel(fixture(name).model);
  const b = new GraphBuilder(model);
  const g = model.graph;
  const half = (xs: number[]) => ({ dtype: 'float16' as const, data: Uint16Array.from(xs, floatToHalf) });
  for (const v of g.values.values()) {
    const t = v.info?.type?.tensorType;
    if (t?.elemType === DataType.FLOAT) t.elemType = DataType.FLOAT16;
  }
  for (const v of [...g.values.values()]) {
    const c = v.isGraphInput ? undefined : v.initializer ?? (v.producer?.opType === 'Constant' ? v.constant : undefined);
    if (c?.dtype === 'float32') b.replaceAllUses(v, b.initializer(b.uniqueName(`${v.name}_fp16`), c.dims, half(c.toNumbers())));
  }
  for (const n of g.nodes) {
    const to = n.attr('to');
    if (n.opType === 'Cast' && to && Number(String(to.i)) === DataType.FLOAT) to.i = DataType.FLOAT16;
    const fill = n.opType === 'ConstantOfShape' ? (n.attr('value')?.t as { dataType?: number; rawData?: Uint8Array; floatData?: number[]; int32Data?: number[] } | undefined) : undefined;
    if (fill && (fill.dataType ?? DataType.FLOAT) === DataType.FLOAT) {
      const raw = fill.rawData?.length ? new Float32Array(Uint8Array.from(fill.rawData).buffer)[0] : fill.floatData?.[0] ?? 0;
      Object.assign(fill, { dataType: DataType.FLOAT16, rawData: undefined, floatData: [], int32Data: [floatToHalf(raw)] });
    }
  }
  b.removeUnused();
  const file = path.join(dir, `${name}.fp16.onnx`);
  saveModel(b.finish(), file);
  return file;
}
