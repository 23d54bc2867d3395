// A fixture in onnxruntime's static QDQ format, as its quantizer writes it with a dedicated pair per consumer: every
// MatMul or Gemm reads its activation through QuantizeLinear -> DequantizeLinear (uint8) and its weight through a
// DequantizeLinear of int8 values (one scale per tensor). The scales are fixed rather than calibrated: the tests need
// the structure, and compare the quantized model with its own rewrites.
import * as path from 'node:path';
import { attr, GraphBuilder } from '../../src/analysis/ir/builder';
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

/**
 * A fixture as onnxruntime's quantize_dynamic writes it (int8 weights, per tensor): every MatMul with a float weight
 * becomes DynamicQuantizeLinear of its activation -> MatMulInteger -> Cast -> Mul by the two scales. Each MatMul gets
 * its own DynamicQuantizeLinear (the quantizer may share one per activation; one each is the harder case: Q, K and V
 * then read different tensors of the same activation). `fused`: as onnxruntime's optimizer saves that, one
 * com.microsoft DynamicQuantizeMatMul per MatMul.
 */
export function dynamicQuantFixture(name: string, dir: string, fused = false): string {
  const model = loadModel(fixture(name).model);
  const b = new GraphBuilder(model);
  if (fused) b.setOpset('com.microsoft', 1);
  for (const n of [...model.graph.nodes]) {
    const w = n.opType === 'MatMul' ? n.input(1)?.initializer : undefined;
    if (!w || w.dtype !== 'float32' || w.dims.length !== 2) continue;
    const data = w.toNumbers();
    const s = Math.max(1e-8, ...data.map(Math.abs)) / 127;
    const q = b.initializer(b.uniqueName(`${n.input(1)!.name}_quantized`), w.dims, { dtype: 'int8', data: Int8Array.from(data, (x) => Math.round(x / s)) });
    const ws = b.initializer(b.uniqueName('w_scale'), [], { dtype: 'float32', data: [s] });
    const wz = b.initializer(b.uniqueName('w_zero'), [], { dtype: 'int8', data: Int8Array.of(0) });
    const x = n.input(0)!;
    if (fused) {
      b.replaceAllUses(n.outputs[0], b.op('DynamicQuantizeMatMul', [x, q, ws, wz], { domain: 'com.microsoft', name: b.uniqueNodeName(`${n.name}_quant`) }), { graphOutputs: true });
      continue;
    }
    const dq = b.node('DynamicQuantizeLinear', [x], { name: b.uniqueNodeName(`${n.name}_quantize`), outputs: ['q', 'scale', 'zero'].map((o) => b.uniqueName(`${x.name}_${o}`)) });
    const product = b.op('MatMulInteger', [dq.outputs[0], q, dq.outputs[2], wz], { name: b.uniqueNodeName(`${n.name}_quant`) });
    const y = b.op('Mul', [b.op('Cast', [product], { attrs: { to: attr.int(1) } }), b.op('Mul', [dq.outputs[1], ws])]);
    b.replaceAllUses(n.outputs[0], y, { graphOutputs: true });
  }
  b.removeUnused();
  b.sort();
  const file = path.join(dir, `${name}.dynamic-int8${fused ? '-fused' : ''}.onnx`);
  saveModel(b.finish(), file);
  return file;
}
