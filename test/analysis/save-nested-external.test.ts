// Regression test (found by the fuzzer): a Constant whose value lives in external data kept its reference, relative to
// the input's folder, when the model was saved elsewhere; the output then failed to load ("external data file ...
// does not exist"). Saving now embeds such nested tensors; the graph's initializers are handled as before.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ModelError } from '../../src/analysis/onnx/errors';
import { loadModel } from '../../src/analysis/ir/load';
import { saveModel } from '../../src/analysis/ir/save';
import { ModelProtoType } from '../../src/analysis/onnx/schema';
import { tempDir } from './helpers/ort';

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => { tmp = tempDir('nested-ext'); });
afterEach(() => tmp.cleanup());

const info = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 2 }] } } } });

/** y = x + k, where k is a Constant whose float32 [2] value is read from in/k.bin at offset 4. */
function writeInput(): { file: string; data: string } {
  const dir = path.join(tmp.dir, 'in');
  fs.mkdirSync(dir);
  const data = path.join(dir, 'k.bin');
  fs.writeFileSync(data, new Uint8Array(Float32Array.from([9, 1.5, -2]).buffer));
  const value = { name: 'k', dims: [2], dataType: 1, dataLocation: 1, externalData: [{ key: 'location', value: 'k.bin' }, { key: 'offset', value: '4' }, { key: 'length', value: '8' }] };
  const proto = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'g',
      node: [
        { name: 'c', opType: 'Constant', output: ['k'], attribute: [{ name: 'value', type: 4, t: value }] },
        { name: 'add', opType: 'Add', input: ['x', 'k'], output: ['y'] },
      ],
      input: [info('x')],
      output: [info('y')],
    },
  };
  const file = path.join(dir, 'model.onnx');
  fs.writeFileSync(file, ModelProtoType.encode(ModelProtoType.fromObject(proto)).finish());
  return { file, data };
}

describe('saving a model whose Constant values are external data', () => {
  it('embeds them, so the output loads from its own folder and holds the same values', () => {
    const input = writeInput();
    const before = fs.readFileSync(input.file);
    const model = loadModel(input.file);
    expect(model.externalFiles).toEqual([input.data]);
    const outDir = path.join(tmp.dir, 'out');
    fs.mkdirSync(outDir);
    const saved = saveModel(model, path.join(outDir, 'model.onnx'));
    const back = loadModel(saved.file);
    expect(back.externalFiles).toEqual([]);
    const k = back.graph.nodeByName('c')!.constantTensor()!;
    expect(k.isExternal).toBe(false);
    expect(k.toNumbers()).toEqual([1.5, -2]);
    // The loaded model (and the input file) are not changed by the save.
    expect(fs.readFileSync(input.file).equals(before)).toBe(true);
    expect((model.graph.nodeByName('c')!.attr('value')!.t as { dataLocation?: number }).dataLocation).toBe(1);
    expect(fs.readdirSync(outDir)).toEqual(['model.onnx']);
  });

  it('a nested data file deleted after loading fails the save with a ModelError, leaving no output', () => {
    const input = writeInput();
    const model = loadModel(input.file);
    fs.rmSync(input.data);
    const outDir = path.join(tmp.dir, 'out');
    fs.mkdirSync(outDir);
    let caught: unknown;
    try {
      saveModel(model, path.join(outDir, 'model.onnx'), { externalData: 'external', threshold: 0 });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ModelError);
    expect((caught as ModelError).code).toBe('external-missing');
    expect((caught as ModelError).message).toMatch(/'k\.bin' for tensor 'k' does not exist/);
    expect(fs.readdirSync(outDir)).toEqual([]);
  });
});
