// The schema goes beyond onnx-proto's (onnx 1.10): fields added since then must survive load and save, and subgraphs
// (If/Loop/Scan bodies) travel through unchanged while their reads of outer values count as uses.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadModel } from '../../src/analysis/ir/load';
import { saveModel } from '../../src/analysis/ir/save';
import { ModelProtoType } from '../../src/analysis/onnx/schema';
import { float32Tensor, runModel, tempDir } from './helpers/ort';

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => { tmp = tempDir('schema-fields'); });
afterEach(() => tmp.cleanup());

const FLOAT = 1;
const tensorType = (dims: number[]) => ({ tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } });
const f32 = (name: string, dims: number[], values: number[]) => ({ name, dims, dataType: FLOAT, rawData: new Uint8Array(Float32Array.from(values).buffer) });

/** y = If(cond, then: x * w, else: x + w), where both branches read x and w from the outer graph. */
function ifModel() {
  const branch = (op: string) => ({
    name: `${op}_branch`,
    node: [{ opType: op, input: ['x', 'w'], output: [`${op}_out`], name: `${op}_node` }],
    output: [{ name: `${op}_out`, type: tensorType([2]) }],
  });
  return {
    irVersion: 10,
    opsetImport: [{ domain: '', version: 19 }, { domain: 'local', version: 1 }],
    producerName: 'schema-fields.test',
    metadataProps: [{ key: 'author', value: 'test' }],
    graph: {
      name: 'g',
      input: [{ name: 'x', type: tensorType([2]) }, { name: 'cond', type: { tensorType: { elemType: 9, shape: { dim: [] } } } }],
      initializer: [f32('w', [2], [2, 3]), { name: 'f8', dims: [4], dataType: 17, rawData: new Uint8Array([1, 2, 3, 4]) }],
      node: [
        {
          opType: 'If', input: ['cond'], output: ['y'], name: 'choose',
          // IR 10 fields onnx-proto's schema would drop:
          overload: 'v1', metadataProps: [{ key: 'origin', value: 'schema test' }],
          attribute: [
            { name: 'then_branch', type: 5, g: branch('Mul') },
            { name: 'else_branch', type: 5, g: branch('Add') },
          ],
        },
      ],
      output: [{ name: 'y', type: tensorType([2]) }],
      metadataProps: [{ key: 'graph-note', value: 'kept' }],
    },
    functions: [
      {
        name: 'Scale', domain: 'local', overload: 'f32', input: ['a'], output: ['b'], attribute: [],
        attributeProto: [{ name: 'alpha', type: 1, f: 2 }],
        node: [{ opType: 'Identity', input: ['a'], output: ['b'] }],
        opsetImport: [{ domain: '', version: 19 }],
        valueInfo: [{ name: 'b', type: tensorType([2]) }],
        metadataProps: [{ key: 'fn', value: 'meta' }],
      },
    ],
  };
}

function write(file: string, model: object): void {
  fs.writeFileSync(file, ModelProtoType.encode(ModelProtoType.fromObject(model)).finish());
}

describe('fields newer than onnx-proto survive load and save', () => {
  it('keeps overload, metadata, function attribute_proto/value_info and float8 tensors', () => {
    const src = path.join(tmp.dir, 'in.onnx');
    const out = path.join(tmp.dir, 'out.onnx');
    write(src, ifModel());
    const m = loadModel(src);
    expect(m.unknownFields).toEqual([]);
    saveModel(m, out);
    const back = ModelProtoType.toObject(ModelProtoType.decode(fs.readFileSync(out)), { longs: Number, bytes: Array }) as Record<string, any>;
    expect(back.metadataProps).toEqual([{ key: 'author', value: 'test' }]);
    expect(back.graph.metadataProps).toEqual([{ key: 'graph-note', value: 'kept' }]);
    const node = back.graph.node[0];
    expect(node.overload).toBe('v1');
    expect(node.metadataProps).toEqual([{ key: 'origin', value: 'schema test' }]);
    const fn = back.functions[0];
    expect(fn.overload).toBe('f32');
    expect(fn.attributeProto[0]).toMatchObject({ name: 'alpha', f: 2 });
    expect(fn.valueInfo[0].name).toBe('b');
    expect(fn.metadataProps).toEqual([{ key: 'fn', value: 'meta' }]);
    const f8 = back.graph.initializer.find((t: { name: string }) => t.name === 'f8');
    expect(f8.dataType).toBe(17);
    expect(f8.rawData).toEqual([1, 2, 3, 4]);
  });

  it('counts a subgraph\'s reads of outer values as uses, and the saved If model runs the same', async () => {
    const src = path.join(tmp.dir, 'if.onnx');
    const out = path.join(tmp.dir, 'if-out.onnx');
    const model = ifModel();
    delete (model as { functions?: unknown }).functions;
    model.opsetImport = [{ domain: '', version: 19 }];
    model.graph.initializer = model.graph.initializer.filter((t) => t.name !== 'f8');
    write(src, model);
    const m = loadModel(src);
    const ifNode = m.graph.nodes[0];
    expect(ifNode.implicitInputs.map((v) => v.name).sort()).toEqual(['w', 'x']);
    expect(m.graph.values.get('x')!.uses.some((u) => u.node === ifNode && u.index === -1)).toBe(true);
    saveModel(m, out);
    const ort = await import('onnxruntime-node');
    for (const cond of [true, false]) {
      const feeds = { x: float32Tensor([1, 2], [2]), cond: new ort.Tensor('bool', [cond], []) };
      const a = await runModel(src, feeds);
      const b = await runModel(out, feeds);
      expect(Array.from(b.y.data as Float32Array)).toEqual(Array.from(a.y.data as Float32Array));
      expect(Array.from(b.y.data as Float32Array)).toEqual(cond ? [2, 6] : [3, 5]);
    }
  });
});

describe('external data outside the main initializers', () => {
  it('refuses an escaping location in a Constant node inside an If branch', () => {
    const src = path.join(tmp.dir, 'nested.onnx');
    const model = ifModel();
    delete (model as { functions?: unknown }).functions;
    const evil = { name: 'c', dims: [2], dataType: FLOAT, dataLocation: 1, externalData: [{ key: 'location', value: '../../etc/passwd' }] };
    const branch = model.graph.node[0].attribute[0].g as { node: object[] };
    branch.node.unshift({ opType: 'Constant', output: ['c'], name: 'evil', attribute: [{ name: 'value', type: 4, t: evil }] });
    write(src, model);
    expect(() => loadModel(src)).toThrow(/escapes the model's folder/);
  });
});
