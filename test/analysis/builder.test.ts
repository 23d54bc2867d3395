import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attr, GraphBuilder } from '../../src/analysis/ir/builder';
import { graphProblems } from '../../src/analysis/ir/invariants';
import { f16bits, f32, i64 } from '../../src/analysis/ir/tensor-data';
import { loadModel } from '../../src/analysis/ir/load';
import { saveModel } from '../../src/analysis/ir/save';
import { ModelError } from '../../src/analysis/onnx/errors';
import { toNum } from '../../src/analysis/onnx/long';
import { float32Tensor, floats, runModel, tempDir } from './helpers/ort';

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => { tmp = tempDir('builder'); });
afterEach(() => tmp.cleanup());

/** y = Gather(Reshape(Cast32(Cast16(x) + h), [-1]), [2, 0]): float16 bits, int64 from number[] and BigInt64Array. */
function smallModel() {
  const b = GraphBuilder.create({ opsets: { '': 17 } });
  const x = b.input('x', 'float32', ['batch', 3]);
  // 1.5, 2.0 and -0.5 as IEEE half bit patterns.
  const h = b.initializer('h', [3], f16bits(Uint16Array.from([0x3e00, 0x4000, 0xb800])));
  const shape = b.initializer('shape', [1], i64([-1]));
  const idx = b.initializer('idx', [2], i64(BigInt64Array.from([2n, 0n])));
  const x16 = b.op('Cast', [x], { attrs: { to: attr.int(10) } });
  const sum = b.op('Add', [x16, h]);
  const back = b.op('Cast', [sum], { attrs: { to: attr.int(1) } });
  const flat = b.op('Reshape', [back, shape]);
  const y = b.op('Gather', [flat, idx], { attrs: { axis: attr.int(0) }, output: 'y' });
  b.output(y, 'float32', [2]);
  return b;
}

describe('GraphBuilder: models from scratch', () => {
  it('builds a model that saves, reloads with the same structure, and runs in onnxruntime', async () => {
    const model = smallModel().finish();
    expect(graphProblems(model.graph)).toEqual([]);
    const file = path.join(tmp.dir, 'small.onnx');
    saveModel(model, file);
    const back = loadModel(file);
    expect(back.irVersion).toBe(8);
    expect(back.opsets.get('')).toBe(17);
    expect(back.graph.nodes.map((n) => n.opType)).toEqual(['Cast', 'Add', 'Cast', 'Reshape', 'Gather']);
    expect(back.graph.inputs.map((v) => v.name)).toEqual(['x']);
    expect(back.graph.outputs.map((v) => v.name)).toEqual(['y']);
    expect(back.graph.values.get('shape')!.constant!.toNumbers()).toEqual([-1]);
    expect(back.graph.values.get('idx')!.constant!.toNumbers()).toEqual([2, 0]);
    expect(back.graph.values.get('h')!.constant!.toNumbers()).toEqual([1.5, 2, -0.5]);
    const dims = back.graph.inputs[0].info?.type?.tensorType?.shape?.dim ?? [];
    expect(dims.map((d) => d.dimParam || toNum(d.dimValue as never))).toEqual(['batch', 3]);

    const out = await runModel(file, { x: float32Tensor([1, 2, 4], [1, 3]) });
    expect(out.y.dims).toEqual([2]);
    expect([...floats(out.y)]).toEqual([3.5, 2.5]);
  });

  it('writes every attribute type and reads it back', () => {
    const b = GraphBuilder.create({ opsets: { '': 17, 'test.domain': 1 } });
    const x = b.input('x', 'float32', [2]);
    const n = b.node('Probe', [x], {
      domain: 'test.domain',
      attrs: {
        i: attr.int(-7),
        big: attr.int(2n ** 62n),
        is: attr.ints([1, -2, 3]),
        f: attr.float(0.25),
        fs: attr.floats([0.5, -1.5]),
        s: attr.string('héllo'),
        ss: attr.strings(['a', 'b']),
        t: attr.tensor([2], f32([3, 4])),
      },
    });
    b.output(n.outputs[0], 'float32');
    const file = path.join(tmp.dir, 'attrs.onnx');
    saveModel(b.finish(), file);
    const node = loadModel(file).graph.nodes[0];
    expect(node.domain).toBe('test.domain');
    expect(toNum(node.attr('i')!.i as never)).toBe(-7);
    expect(String(node.attr('big')!.i)).toBe(String(2n ** 62n));
    expect(node.attr('is')!.ints!.map((v) => toNum(v as never))).toEqual([1, -2, 3]);
    expect(node.attr('f')!.f).toBe(0.25);
    expect(node.attr('fs')!.floats).toEqual([0.5, -1.5]);
    expect(Buffer.from(node.attr('s')!.s!).toString('utf8')).toBe('héllo');
    expect(node.attr('ss')!.strings!.map((s) => Buffer.from(s).toString())).toEqual(['a', 'b']);
    expect(node.attr('t')!.type).toBe(4);
  });

  it('Constant nodes hold their tensor the way exporters write them', () => {
    const b = GraphBuilder.create();
    const c = b.constant([2], i64([4, -1]));
    expect(c.producer!.opType).toBe('Constant');
    expect(c.constant!.toNumbers()).toEqual([4, -1]);
  });

  it('refuses wrong element counts, taken names and unproduced inputs without changing the graph', () => {
    const b = GraphBuilder.create();
    const x = b.input('x', 'float32', [2]);
    expect(() => b.initializer('w', [2, 2], f32([1, 2, 3]))).toThrow(/3 float32 values for shape \[2, 2\]/);
    expect(() => b.input('x', 'float32', [2])).toThrow(/already exists/);
    expect(() => b.node('Relu', [x], { outputs: ['x'] })).toThrow(/already exists/);
    expect(() => b.node('Relu', ['nope'])).toThrow(/no value named 'nope'/);
    expect(b.graph.nodes).toHaveLength(0);
    expect(graphProblems(b.graph)).toEqual([]);
  });

  it('generates unique value and node names', () => {
    const b = GraphBuilder.create();
    const x = b.input('x', 'float32', [2]);
    expect(b.uniqueName('x')).toBe('x_1');
    const r1 = b.node('Relu', [x]);
    const r2 = b.node('Relu', [x]);
    const r3 = b.node('Relu', [x], { name: 'Relu' });
    expect(new Set([r1.name, r2.name, r3.name]).size).toBe(3);
    const names = [r1, r2, r3].map((n) => n.outputs[0].name);
    expect(new Set(names).size).toBe(3);
  });
});

describe('GraphBuilder: external data', () => {
  it('references a data file without reading it, saves the reference, and onnxruntime reads it', async () => {
    const dataFile = path.join(tmp.dir, 'weights.bin');
    const b = GraphBuilder.create();
    const x = b.input('x', 'float32', [4]);
    // The data file does not exist yet: creating the reference must not touch it.
    const w = b.externalInitializer('w', 'float32', [4], { file: dataFile, offset: 64 });
    const y = b.op('Mul', [x, w], { output: 'y' });
    b.output(y, 'float32', [4]);
    const model = b.finish();
    expect(model.externalFiles).toEqual([dataFile]);

    const bytes = Buffer.alloc(64 + 16, 0xff);
    Buffer.from(Float32Array.from([1, -2, 0.5, 10]).buffer).copy(bytes, 64);
    fs.writeFileSync(dataFile, bytes);

    const file = path.join(tmp.dir, 'ext.onnx');
    const result = saveModel(model, file);
    // Same folder: the reference is kept, no new data file.
    expect(result.dataFile).toBeUndefined();
    expect(fs.readdirSync(tmp.dir).sort()).toEqual(['ext.onnx', 'weights.bin']);
    const back = loadModel(file);
    const t = back.graph.initializers.get('w')!;
    expect(t.external).toMatchObject({ location: 'weights.bin', offset: 64, length: 16 });
    expect(t.toNumbers()).toEqual([1, -2, 0.5, 10]);
    const out = await runModel(file, { x: float32Tensor([1, 1, 2, 3], [4]) });
    expect([...floats(out.y)]).toEqual([1, -2, 1, 30]);
  });

  it('copies referenced data into a new data file when saving outside the data file\'s folder', () => {
    const dataFile = path.join(tmp.dir, 'weights.bin');
    fs.writeFileSync(dataFile, Buffer.from(Float32Array.from([7, 8]).buffer));
    const b = GraphBuilder.create();
    const x = b.input('x', 'float32', [2]);
    const w = b.externalInitializer('w', 'float32', [2], { file: dataFile });
    b.output(b.op('Add', [x, w]), 'float32', [2]);
    const sub = path.join(tmp.dir, 'out');
    fs.mkdirSync(sub);
    const result = saveModel(b.finish(), path.join(sub, 'm.onnx'));
    expect(result.dataFile).toBe(path.join(sub, 'm.onnx.data'));
    expect(loadModel(path.join(sub, 'm.onnx')).graph.initializers.get('w')!.toNumbers()).toEqual([7, 8]);
  });

  it('refuses a length that does not match the shape, and saving over the data file', () => {
    const b = GraphBuilder.create();
    expect(() => b.externalInitializer('w', 'float32', [4], { file: path.join(tmp.dir, 'w.bin'), length: 12 })).toThrow(/takes 16 bytes/);
    const dataFile = path.join(tmp.dir, 'w.bin');
    fs.writeFileSync(dataFile, Buffer.alloc(16));
    const x = b.input('x', 'float32', [4]);
    b.output(b.op('Add', [x, b.externalInitializer('w', 'float32', [4], { file: dataFile })]), 'float32', [4]);
    expect(() => saveModel(b.finish(), dataFile)).toThrow(ModelError);
  });
});

describe('GraphBuilder: editing', () => {
  it('inserts a node after a value and redirects its other uses (except the new node)', async () => {
    const b = smallModel();
    const back = b.graph.nodes.find((n) => n.opType === 'Cast' && n.outputs[0].uses[0].node.opType === 'Reshape')!.outputs[0];
    const doubled = b.op('Mul', [back, b.constant([], f32([2]))]);
    b.replaceAllUses(back, doubled, { except: [doubled.producer!] });
    const model = b.finish();
    expect(graphProblems(model.graph)).toEqual([]);
    // Sorted: the new Constant and Mul sit before the Reshape that now reads them.
    const order = model.graph.nodes.map((n) => n.opType);
    expect(order.indexOf('Mul')).toBeLessThan(order.indexOf('Reshape'));
    const file = path.join(tmp.dir, 'edited.onnx');
    saveModel(model, file);
    const out = await runModel(file, { x: float32Tensor([1, 2, 4], [1, 3]) });
    expect([...floats(out.y)]).toEqual([7, 5]);
  });

  it('replaces a graph output and keeps the output name', async () => {
    const b = smallModel();
    const y = b.graph.outputs[0];
    const neg = b.op('Neg', [y]);
    const renamed = b.replaceAllUses(y, neg, { graphOutputs: true });
    expect(renamed.name).toBe('y');
    expect(b.graph.outputs).toEqual([renamed]);
    expect(renamed.producer!.opType).toBe('Neg');
    const model = b.finish();
    expect(graphProblems(model.graph)).toEqual([]);
    const file = path.join(tmp.dir, 'neg.onnx');
    saveModel(model, file);
    const out = await runModel(file, { x: float32Tensor([1, 2, 4], [1, 3]) });
    expect([...floats(out.y)]).toEqual([-3.5, -2.5]);
  });

  it('renames values and initializers, updating producers, uses and the initializer list', () => {
    const b = smallModel();
    const h = b.renameValue(b.graph.values.get('h')!, 'bias16');
    expect(b.graph.values.has('h')).toBe(false);
    expect(b.graph.initializers.has('bias16')).toBe(true);
    expect(h.initializer!.name).toBe('bias16');
    expect(h.uses[0].node.inputs[h.uses[0].index]).toBe(h);
    expect(() => b.renameValue(h, 'x')).toThrow(/taken/);
    expect(graphProblems(b.finish().graph)).toEqual([]);
  });

  it('removes nodes only when nothing reads them, and dead subgraphs in one call', () => {
    const b = smallModel();
    const x = b.graph.values.get('x')!;
    const a = b.node('Relu', [x]);
    const c = b.node('Sigmoid', [a.outputs[0]]);
    expect(() => b.removeNode(a)).toThrow(/still read by/);
    const gatherNode = b.graph.outputs[0].producer!;
    expect(() => b.removeNode(gatherNode)).toThrow(/graph output/);
    b.removeNodes([a, c]);
    expect(b.graph.nodes).not.toContain(a);
    expect(b.graph.values.has(a.outputs[0].name)).toBe(false);
    expect(x.uses.every((u) => u.node !== a)).toBe(true);
    expect(graphProblems(b.finish().graph)).toEqual([]);
  });

  it('removes unused initializers and graph inputs, and dead code with removeUnused', () => {
    const b = smallModel();
    const spare = b.initializer('spare', [1], f32([0]));
    const extra = b.input('extra', 'float32', [1]);
    const deadA = b.node('Relu', [extra]);
    b.node('Abs', [deadA.outputs[0]]);
    expect(() => b.removeValue(extra)).toThrow(/still reads it/);
    expect(b.removeUnused()).toEqual({ nodes: 2, initializers: 1 });
    expect(b.graph.initializers.has(spare.name)).toBe(false);
    b.removeValue(extra);
    expect(b.graph.inputs.map((v) => v.name)).toEqual(['x']);
    expect(b.finish().graph.nodes).toHaveLength(5);
    expect(graphProblems(b.graph)).toEqual([]);
  });

  it('re-sorts after edits and reports a cycle as a ModelError', () => {
    const b = GraphBuilder.create();
    const x = b.input('x', 'float32', [2]);
    const r = b.op('Relu', [x]);
    const s = b.op('Sigmoid', [r]);
    const n = b.op('Neg', [x]); // appended last
    b.replaceAllUses(r, n); // now Sigmoid reads Neg, which comes after it
    b.output(s, 'float32', [2]);
    expect(b.finish().graph.nodes.map((v) => v.opType)).toEqual(['Relu', 'Neg', 'Sigmoid']);

    // Make Neg read Sigmoid's output: Neg -> Sigmoid -> Neg.
    const neg = n.producer!;
    b.replaceAllUses(x, s, { except: [r.producer!] });
    expect(neg.inputs[0]).toBe(s);
    expect(() => b.sort()).toThrow(ModelError);
    expect(() => b.sort()).toThrow(/cycle/);
  });

  it('graphProblems notices a broken producer/use link', () => {
    const b = smallModel();
    b.finish();
    const v = b.graph.values.get('h')!;
    v.uses.length = 0; // break it by hand
    expect(graphProblems(b.graph).join('\n')).toMatch(/does not list its use/);
  });
});
