// Model I/O: saving is exact on every shared fixture (onnxruntime outputs identical bit for bit, embedded, external
// and embedded again), and every kind of bad input ends in a ModelError that names the file and the problem.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectModelErrorNaming as expectModelError } from './helpers/model-error';
import { loadModel } from '../../src/analysis/ir/load';
import { saveModel } from '../../src/analysis/ir/save';
import { ModelProtoType, schemaRoot } from '../../src/analysis/onnx/schema';
import { fixture, fixtureNames } from '../helpers/fixtures';
import { manifestFeeds, runModel, tempDir, tensorBytes, type Feeds } from './helpers/ort';

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => { tmp = tempDir('model-io'); });
afterEach(() => tmp.cleanup());

type Outputs = Record<string, { dims: readonly number[]; type: string; bytes: Buffer }>;

async function outputsOf(file: string, feeds: Feeds): Promise<Outputs> {
  const out = await runModel(file, feeds);
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { dims: t.dims, type: t.type, bytes: Buffer.from(tensorBytes(t)) }]));
}

/** Asserts the same outputs, bit for bit. (Buffer.equals, not toEqual: a deep compare of megabytes takes seconds.) */
function expectIdentical(got: Outputs, want: Outputs): void {
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const [name, w] of Object.entries(want)) {
    const g = got[name];
    expect({ name, dims: g.dims, type: g.type }).toEqual({ name, dims: w.dims, type: w.type });
    const differing = g.bytes.equals(w.bytes) ? 0 : g.bytes.reduce((n, b, i) => n + (b !== w.bytes[i] ? 1 : 0), 0);
    expect(differing, `bytes differing in output '${name}'`).toBe(0);
  }
}

function listing(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

/** The (small, all-embedded) model used where any valid model will do. */
const SMALL = 'bert-eager-ts-op17';

describe('saving is exact on every fixture', () => {
  for (const name of fixtureNames()) {
    it(name, async () => {
      const fx = fixture(name);
      const feeds = manifestFeeds(fx.dir, fx.manifest.inputs);
      const reference = await outputsOf(fx.model, feeds);
      expect(Object.keys(reference).sort()).toEqual(fx.manifest.outputs.map((o) => o.name).sort());
      const model = loadModel(fx.model);

      // 1. Re-saved as it is (everything embedded).
      const plainDir = path.join(tmp.dir, 'plain');
      fs.mkdirSync(plainDir);
      const plain = saveModel(model, path.join(plainDir, 'model.onnx'));
      expect(plain.dataFile).toBeUndefined();
      expect(listing(plainDir)).toEqual(['model.onnx']); // no temporary file left behind
      expectIdentical(await outputsOf(plain.file, feeds), reference);

      // 2. Weights moved out to external data, then read back.
      const extDir = path.join(tmp.dir, 'external');
      fs.mkdirSync(extDir);
      const ext = saveModel(model, path.join(extDir, 'model.onnx'), { externalData: 'external' });
      expect(listing(extDir)).toEqual(['model.onnx', 'model.onnx.data']);
      expect(ext.dataBytes).toBeGreaterThan(0);
      expect(ext.bytes).toBeLessThan(fs.statSync(fx.model).size);
      const extModel = loadModel(ext.file);
      const moved = [...extModel.graph.initializers.values()].filter((t) => t.isExternal);
      expect(moved.length).toBeGreaterThan(0);
      for (const t of moved) {
        expect(Buffer.from(t.bytes()).equals(Buffer.from(model.graph.initializers.get(t.name)!.bytes()))).toBe(true);
      }
      expectIdentical(await outputsOf(ext.file, feeds), reference);

      // 3. Embedded again, from the external model.
      const embedDir = path.join(tmp.dir, 'embed');
      fs.mkdirSync(embedDir);
      const embedded = saveModel(loadModel(ext.file), path.join(embedDir, 'model.onnx'), { externalData: 'embed' });
      expect(listing(embedDir)).toEqual(['model.onnx']);
      expect([...loadModel(embedded.file).graph.initializers.values()].some((t) => t.isExternal)).toBe(false);
      expectIdentical(await outputsOf(embedded.file, feeds), reference);
    });
  }
});

// ---- crafting bad models ----

const NodeProtoType = schemaRoot.lookupType('onnx.NodeProto');

const floatInfo = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 2 }] } } } });

function encodeModel(graph: Record<string, unknown>, irVersion = 8): Uint8Array {
  const obj = { irVersion, opsetImport: [{ domain: '', version: 17 }], producerName: 'test', graph: { name: 'g', ...graph } };
  return ModelProtoType.encode(ModelProtoType.fromObject(obj)).finish();
}

function write(name: string, bytes: Uint8Array | string): string {
  const file = path.join(tmp.dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bytes);
  return file;
}

/** A fixture re-encoded with one change to its decoded ModelProto. */
function editedFixture(edit: (proto: Record<string, unknown>) => void): Uint8Array {
  const proto = ModelProtoType.decode(fs.readFileSync(fixture(SMALL).model)) as unknown as Record<string, unknown>;
  edit(proto);
  return ModelProtoType.encode(proto as never).finish();
}

/** Protobuf varint bytes. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

describe('bad input: a ModelError that names the file and the problem', () => {
  it('zero-length file', () => {
    const file = write('empty.onnx', '');
    expectModelError(() => loadModel(file), 'empty', file, /empty/);
  });

  it('a missing file and a folder', () => {
    const missing = path.join(tmp.dir, 'nope.onnx');
    expectModelError(() => loadModel(missing), 'not-found', missing, /not found/);
    expectModelError(() => loadModel(tmp.dir), 'not-onnx', tmp.dir, /directory/);
  });

  it('random bytes', () => {
    // A fixed generator, so the bytes (and the failure) are the same on every run.
    let s = 12345;
    const bytes = Uint8Array.from({ length: 4096 }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 24));
    const file = write('random.onnx', bytes);
    expectModelError(() => loadModel(file), ['not-onnx', 'truncated'], file, /not (protobuf|an ONNX model)|truncated/);
  });

  it('a text file', () => {
    const file = write('notes.onnx', '# Attention Lens\nThis is a README, not a model.\n');
    expectModelError(() => loadModel(file), ['not-onnx', 'truncated'], file, /not (protobuf|an ONNX model)|truncated/);
  });

  it('a truncated model (the first half of a fixture)', () => {
    const bytes = fs.readFileSync(fixture(SMALL).model);
    const file = write('half.onnx', bytes.subarray(0, bytes.length >> 1));
    expectModelError(() => loadModel(file), 'truncated', file, /truncated/);
  });

  it('a truncated model is said in one line of plain words, without the protobuf reader\'s offsets', () => {
    const bytes = fs.readFileSync(fixture(SMALL).model);
    for (const n of [10, 1000, bytes.length >> 1, bytes.length - 1]) {
      const file = write(`cut-${n}.onnx`, bytes.subarray(0, n));
      const e = (() => {
        try {
          loadModel(file);
        } catch (x) {
          return x as Error;
        }
        throw new Error(`a ${n}-byte prefix loaded`);
      })();
      expect(e.message).toBe(`${file}: the file ends in the middle of the model after ${n} bytes: it is truncated (an interrupted download or copy?) or not an ONNX model`);
      expect(e.message).not.toMatch(/index out of range|protobuf|wire type|\n/);
    }
  });

  it('a graph cycle', () => {
    const file = write('cycle.onnx', encodeModel({
      node: [
        { name: 'A', opType: 'Relu', input: ['b'], output: ['a'] },
        { name: 'B', opType: 'Relu', input: ['a'], output: ['b'] },
        { name: 'C', opType: 'Add', input: ['x', 'a'], output: ['y'] },
      ],
      input: [floatInfo('x')],
      output: [floatInfo('y')],
    }));
    const err = expectModelError(() => loadModel(file), 'graph-cycle', file, /cycle/);
    expect(err.message).toMatch(/'A'/);
    expect(err.message).toMatch(/'B'/);
  });

  it('a node input that nothing produces', () => {
    const file = write('dangling.onnx', encodeModel({
      node: [{ name: 'A', opType: 'Add', input: ['x', 'ghost'], output: ['y'] }],
      input: [floatInfo('x')],
      output: [floatInfo('y')],
    }));
    expectModelError(() => loadModel(file), 'graph-dangling', file, /'A'.*'ghost'/);
  });

  for (const ir of [99, 2]) {
    it(`an unsupported IR version (${ir})`, () => {
      const file = write(`ir${ir}.onnx`, editedFixture((p) => { p.irVersion = ir; }));
      expectModelError(() => loadModel(file), 'ir-version', file, new RegExp(`unsupported IR version ${ir}`));
    });
  }

  it('the unedited re-encoding used above loads (so the failures are the edits\' doing)', () => {
    const file = write('same.onnx', editedFixture(() => {}));
    expect(loadModel(file).graph.nodes.length).toBeGreaterThan(0);
  });
});

describe('external data that is missing or escapes the model\'s folder', () => {
  /** A fixture saved with external data into `sub/`, with the data file's location rewritten to `location`. */
  function externalWithLocation(location: string): { file: string; data: Buffer } {
    const sub = path.join(tmp.dir, 'sub');
    fs.mkdirSync(sub, { recursive: true });
    const saved = saveModel(loadModel(fixture(SMALL).model), path.join(sub, 'orig.onnx'), { externalData: 'external' });
    const data = fs.readFileSync(saved.dataFile!);
    const proto = ModelProtoType.decode(fs.readFileSync(saved.file)) as unknown as { graph: { initializer: { externalData: { key: string; value: string }[] }[] } };
    for (const t of proto.graph.initializer) for (const kv of t.externalData) if (kv.key === 'location') kv.value = location;
    fs.rmSync(saved.file);
    fs.rmSync(saved.dataFile!);
    const file = path.join(sub, 'model.onnx');
    fs.writeFileSync(file, ModelProtoType.encode(proto as never).finish());
    return { file, data };
  }

  it('a reference to a file inside the folder loads (the control case)', () => {
    const { file, data } = externalWithLocation('weights/w.bin');
    write('sub/weights/w.bin', data);
    const model = loadModel(file);
    expect(model.externalFiles).toEqual([path.join(tmp.dir, 'sub', 'weights', 'w.bin')]);
  });

  it('a missing external data file', () => {
    const { file } = externalWithLocation('gone.bin');
    expectModelError(() => loadModel(file), 'external-missing', file, /'gone\.bin'.*does not exist/);
  });

  it('a location with ../ is refused, even when the file exists', () => {
    const { file, data } = externalWithLocation('../x.bin');
    write('x.bin', data);
    expectModelError(() => loadModel(file), 'external-escape', file, /'\.\.\/x\.bin'.*escapes the model's folder/);
  });

  it('an absolute location is refused, even inside the folder', () => {
    const target = path.join(tmp.dir, 'sub', 'abs.bin');
    const { file, data } = externalWithLocation(target);
    write('sub/abs.bin', data);
    expectModelError(() => loadModel(file), 'external-escape', file, /escapes the model's folder/);
  });

  it('a symlink inside the folder that points outside it is refused', () => {
    const { file, data } = externalWithLocation('link.bin');
    const outside = write('outside.bin', data);
    fs.symlinkSync(outside, path.join(tmp.dir, 'sub', 'link.bin'));
    expectModelError(() => loadModel(file), 'external-escape', file, /'link\.bin'.*resolves outside/);
  });
});

describe('fields this schema does not know', () => {
  it('an unknown ModelProto field: the model loads, saving refuses and writes nothing', () => {
    const bytes = fs.readFileSync(fixture(SMALL).model);
    // Field 99, varint 1, appended at the end of the top-level message (protobuf allows fields in any order).
    const file = write('in/unknown.onnx', Buffer.concat([bytes, Buffer.from([...varint((99 << 3) | 0), 1])]));
    const model = loadModel(file);
    expect(model.unknownFields).toEqual([{ path: 'ModelProto', fieldNumber: 99 }]);
    expect(model.graph.nodes.length).toBeGreaterThan(0);
    const outDir = path.join(tmp.dir, 'out');
    fs.mkdirSync(outDir);
    expectModelError(() => saveModel(model, path.join(outDir, 'm.onnx')), 'unknown-fields', file, /would drop.*ModelProto field #99/);
    expect(listing(outDir)).toEqual([]);
  });

  it('an unknown NodeProto field deep in the graph is found too', () => {
    const node = NodeProtoType.encode(NodeProtoType.fromObject({ name: 'R', opType: 'Relu', input: ['x'], output: ['y'] })).finish();
    // Field 50, length-delimited "hi", inside the node.
    const nodeWithUnknown = Buffer.concat([node, Buffer.from([...varint((50 << 3) | 2), 2, 0x68, 0x69])]);
    const rest = encodeModel({ input: [floatInfo('x')], output: [floatInfo('y')] });
    const graphRest = (ModelProtoType.decode(rest) as unknown as { graph: Record<string, unknown> }).graph;
    const graphBytes = Buffer.concat([
      schemaRoot.lookupType('onnx.GraphProto').encode(graphRest as never).finish(),
      protobuf.Writer.create().uint32((1 << 3) | 2).bytes(nodeWithUnknown).finish(),
    ]);
    const modelNoGraph = ModelProtoType.encode(ModelProtoType.fromObject({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }] })).finish();
    const file = write('node-unknown.onnx', Buffer.concat([modelNoGraph, protobuf.Writer.create().uint32((7 << 3) | 2).bytes(graphBytes).finish()]));
    const model = loadModel(file);
    expect(model.graph.nodes.map((n) => n.opType)).toEqual(['Relu']);
    expect(model.unknownFields).toEqual([{ path: 'ModelProto.graph.node', fieldNumber: 50 }]);
    expectModelError(() => saveModel(model, path.join(tmp.dir, 'out.onnx')), 'unknown-fields', file, /ModelProto\.graph\.node field #50/);
    expect(fs.existsSync(path.join(tmp.dir, 'out.onnx'))).toBe(false);
  });
});

describe('saving never overwrites its input and is atomic', () => {
  it('refuses to save over the input model, under any spelling of its path', () => {
    const file = write('in/model.onnx', fs.readFileSync(fixture(SMALL).model));
    const before = fs.readFileSync(file);
    const model = loadModel(file);
    expectModelError(() => saveModel(model, file), 'write-refused', file, /overwrite the input model/);
    expectModelError(() => saveModel(model, path.join(tmp.dir, 'in', '.', '..', 'in', 'model.onnx')), 'write-refused', file, /overwrite/);
    fs.symlinkSync(file, path.join(tmp.dir, 'alias.onnx'));
    expectModelError(() => saveModel(model, path.join(tmp.dir, 'alias.onnx')), 'write-refused', 'alias.onnx', /overwrite/);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(listing(path.join(tmp.dir, 'in'))).toEqual(['model.onnx']);
  });

  it('refuses to save over the input\'s external data, as the model or as the new data file', () => {
    const dir = path.join(tmp.dir, 'ext');
    fs.mkdirSync(dir);
    const saved = saveModel(loadModel(fixture(SMALL).model), path.join(dir, 'model.onnx'), { externalData: 'external' });
    const dataBefore = fs.readFileSync(saved.dataFile!);
    const model = loadModel(saved.file);
    expectModelError(() => saveModel(model, saved.dataFile!), 'write-refused', saved.dataFile!, /overwrite/);
    expectModelError(
      () => saveModel(model, path.join(dir, 'other.onnx'), { externalData: 'external', dataFile: path.basename(saved.dataFile!) }),
      'write-refused', 'other.onnx', /external data file/,
    );
    expect(fs.readFileSync(saved.dataFile!).equals(dataBefore)).toBe(true);
    expect(listing(dir)).toEqual(['model.onnx', 'model.onnx.data']);
  });

  it('a save that fails while writing leaves no output and no temporary file', () => {
    const dir = path.join(tmp.dir, 'ext');
    fs.mkdirSync(dir);
    const saved = saveModel(loadModel(fixture(SMALL).model), path.join(dir, 'model.onnx'), { externalData: 'external' });
    const model = loadModel(saved.file); // weights stay lazy: nothing read yet
    fs.rmSync(saved.dataFile!); // ... so they cannot be read when the save copies them
    const outDir = path.join(tmp.dir, 'out');
    fs.mkdirSync(outDir);
    expectModelError(() => saveModel(model, path.join(outDir, 'copy.onnx'), { externalData: 'external' }), 'external-missing', saved.dataFile!, /moved or deleted/);
    expect(listing(outDir)).toEqual([]);
  });

  it('a save into a folder that does not exist is refused', () => {
    const model = loadModel(fixture(SMALL).model);
    const out = path.join(tmp.dir, 'missing', 'm.onnx');
    expectModelError(() => saveModel(model, out), 'write-refused', out, /folder does not exist/);
  });

  it('overwrites an earlier output atomically: a reader sees the old or the new file, and no temporary file remains', () => {
    const model = loadModel(fixture(SMALL).model);
    const out = path.join(tmp.dir, 'm.onnx');
    fs.writeFileSync(out, 'old contents');
    const inode = fs.statSync(out).ino;
    saveModel(model, out);
    // Replaced by rename, not rewritten in place: a new inode, complete contents.
    expect(fs.statSync(out).ino).not.toBe(inode);
    expect(loadModel(out).graph.nodes.length).toBe(model.graph.nodes.length);
    expect(listing(tmp.dir)).toEqual(['m.onnx']);
  });
});
