// A fixture in onnxruntime's static QDQ format, as its quantizer writes it with a dedicated pair per consumer: every
// MatMul or Gemm reads its activation through QuantizeLinear -> DequantizeLinear (uint8) and its weight through a
// DequantizeLinear of int8 values (one scale per tensor). The scales are fixed rather than calibrated: the tests need
// the structure, and compare the quantized model with its own rewrites.
import * as path from 'node:path';
import { GraphBuilder } from '../../src/analysis/ir/builder';
import { loadModel } from '../../src/analysis/ir/load';
import { saveModel } from '../../src/analysis/ir/save';
import { fixture } from './fixtures';

export function qdqFixture(name: string, dir: string): string {
  const model = loadModel(fixture(name).model);
  const b = new GraphBuilder(model);
  const scalar = (what: string, dtype: 'float32' | 'int8' | 'uint8', x: number) =>
    b.initializer(b.uniqueName(what), [], dtype === 'float32' ? { dtype, data: [x] } : dtype === 'int8' ? { dtype, data: Int8Array.of(x) } : { dtype, data: Uint8Array.of(x) });
  for (const n of [...model.graph.nodes]) {
    if (n.opType !== 'MatMul' && n.opType !== 'Gemm') continue;
    for (const i of [0, 1]) {
      const v = n.input(i);
      const w = v?.initializer;
      if (!v || (w && w.dtype !== 'float32')) continue;
      if (w) {
        const data = w.toNumbers();
        const s = Math.max(1e-8, ...data.map(Math.abs)) / 127;
        const q = b.initializer(b.uniqueName(`${v.name}_int8`), w.dims, { dtype: 'int8', data: Int8Array.from(data, (x) => Math.round(x / s)) });
        b.setInput(n, i, b.op('DequantizeLinear', [q, scalar('w_scale', 'float32', s), scalar('w_zero', 'int8', 0)]));
      } else {
        const [s, z] = [scalar('a_scale', 'float32', 0.05), scalar('a_zero', 'uint8', 128)];
        b.setInput(n, i, b.op('DequantizeLinear', [b.op('QuantizeLinear', [v, s, z]), s, z]));
      }
    }
  }
  b.sort();
  const file = path.join(dir, `${name}.qdq.onnx`);
  saveModel(b.finish(), file);
  return file;
}
