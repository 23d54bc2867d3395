// Weights stored as sparse initializers (GraphProto.sparse_initializer) are made dense at load: counted, read by the
// analysis, cut by the rewriters, and saved back sparse while unchanged. Broken or too large ones are refused in one line.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeLoaded } from '../../src/analysis/analyze';
import { loadModel } from '../../src/analysis/ir/load';
import { saveModel } from '../../src/analysis/ir/save';
import { ModelError } from '../../src/analysis/onnx/errors';
import { ModelProtoType } from '../../src/analysis/onnx/schema';
import { rewriteModel } from '../../src/rewriters/pipeline';
import { maxAbsDiff, outputsOf, scratch } from '../rewriters/shared-prune-helpers';
import { buildPackedAttention, PACKED } from './packed-qkv-variants';

const E = PACKED.hidden;
let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = scratch('sparse-init'); });
afterAll(() => tmp.cleanup());

type Proto = { graph: { initializer: Record<string, unknown>[]; sparseInitializer?: Record<string, unknown>[] } };

/** The packed-QKV model with about four fifths of its QKV weight zero, saved dense; the weight's non-zeros. */
function denseModel(file: string): { values: number[]; linear: number[]; dims: number[] } {
  const model = buildPackedAttention({ cut: 'split' });
  const w = model.graph.initializers.get('qkv.weight')!;
  const data = Float32Array.from(w.toNumbers(), (x) => (Math.abs(x) < 0.19 ? 0 : x));
  const dense = { name: 'qkv.weight', dims: w.dims, dataType: 1, rawData: new Uint8Array(data.buffer) };
  Object.assign(w.proto, dense, { floatData: [] });
  saveModel(model, file);
  const linear = [...data.keys()].filter((i) => data[i] !== 0);
  return { values: linear.map((i) => data[i]), linear, dims: w.dims };
}

/** The same file with the QKV weight moved into sparse_initializer, indices linear or as coordinates. */
function sparsify(from: string, to: string, mutate: (sp: Record<string, unknown>) => void = () => {}, coords = false): void {
  const { values, linear, dims } = denseInfo(from);
  const proto = ModelProtoType.decode(fs.readFileSync(from)) as unknown as Proto;
  proto.graph.initializer = proto.graph.initializer.filter((t) => t.name !== 'qkv.weight');
  const idx = coords ? linear.flatMap((i) => [Math.floor(i / dims[1]), i % dims[1]]) : linear;
  const sp: Record<string, unknown> = {
    values: { name: 'qkv.weight', dims: [values.length], dataType: 1, rawData: new Uint8Array(Float32Array.from(values).buffer) },
    indices: { name: 'qkv.weight_indices', dims: coords ? [values.length, 2] : [values.length], dataType: 7, rawData: new Uint8Array(BigInt64Array.from(idx.map(BigInt)).buffer) },
    dims,
  };
  mutate(sp);
  proto.graph.sparseInitializer = [sp];
  fs.writeFileSync(to, ModelProtoType.encode(proto as never).finish());
}

function denseInfo(file: string): { values: number[]; linear: number[]; dims: number[] } {
  const w = loadModel(file).graph.initializers.get('qkv.weight')!;
  const data = w.toNumbers();
  const linear = [...data.keys()].filter((i) => data[i] !== 0);
  return { values: linear.map((i) => data[i]), linear, dims: w.dims };
}

const feeds = () => ({ x: new ort.Tensor('float32', Float32Array.from({ length: 10 * E }, (_, i) => Math.sin(i * 0.7)), [2, 5, E]) });

describe('sparse initializers', () => {
  it.each([false, true])('are made dense at load (coordinates: %s): counted, same outputs, saved back sparse', async (coords) => {
    const dense = path.join(tmp.dir, `dense-${coords}.onnx`);
    const sparse = path.join(tmp.dir, `sparse-${coords}.onnx`);
    const nnz = denseModel(dense).values.length;
    sparsify(dense, sparse, undefined, coords);
    if (!coords) expect(fs.statSync(sparse).size).toBeLessThan(fs.statSync(dense).size);
    const a = analyzeLoaded(loadModel(dense));
    const b = analyzeLoaded(loadModel(sparse));
    expect(b.model.parameterCount).toBe(a.model.parameterCount);
    expect(b.sites[0].binding).toEqual(a.sites[0].binding);
    // onnxruntime reads the sparse file as the dense one.
    const want = await outputsOf(dense, feeds());
    const got = await outputsOf(sparse, feeds());
    for (const k of Object.keys(want)) expect(maxAbsDiff(got[k], want[k])).toBe(0);
    // Saved unchanged, the weight stays sparse.
    const again = path.join(tmp.dir, `again-${coords}.onnx`);
    saveModel(loadModel(sparse), again);
    const proto = ModelProtoType.decode(fs.readFileSync(again)) as unknown as Proto;
    expect(proto.graph.sparseInitializer?.length).toBe(1);
    expect(proto.graph.initializer.some((t) => t.name === 'qkv.weight')).toBe(false);
    expect((proto.graph.sparseInitializer![0].values as { dims: unknown[] }).dims.map(Number)).toEqual([nnz]);
    const third = await outputsOf(again, feeds());
    for (const k of Object.keys(want)) expect(maxAbsDiff(third[k], want[k])).toBe(0);
  });

  it('a sparse weight is rewritten like a dense one (prune-heads), and written dense once changed', async () => {
    const dense = path.join(tmp.dir, 'prune-dense.onnx');
    const sparse = path.join(tmp.dir, 'prune-sparse.onnx');
    denseModel(dense);
    sparsify(dense, sparse);
    const request = [{ rule: 'prune-heads', params: { heads: { 0: [2] } } }];
    rewriteModel(dense, request, path.join(tmp.dir, 'prune-dense.out.onnx'));
    rewriteModel(sparse, request, path.join(tmp.dir, 'prune-sparse.out.onnx'));
    const want = await outputsOf(path.join(tmp.dir, 'prune-dense.out.onnx'), feeds());
    const got = await outputsOf(path.join(tmp.dir, 'prune-sparse.out.onnx'), feeds());
    for (const k of Object.keys(want)) expect(maxAbsDiff(got[k], want[k])).toBe(0);
    const proto = ModelProtoType.decode(fs.readFileSync(path.join(tmp.dir, 'prune-sparse.out.onnx'))) as unknown as Proto;
    expect(proto.graph.sparseInitializer ?? []).toEqual([]);
    expect(loadModel(path.join(tmp.dir, 'prune-sparse.out.onnx')).graph.initializers.get('qkv.weight')).toBeUndefined();
  });

  it.each([
    ['an index out of range', (sp: Record<string, unknown>) => { (sp.dims as number[])[1] = 4; }, /sparse initializer 'qkv.weight' has index \d+ outside its 128 entries/],
    ['a dense size over the limit', (sp: Record<string, unknown>) => { sp.dims = [2 ** 20, 2 ** 20]; }, /sparse initializer 'qkv.weight' would take \d+ bytes once dense \(more than \d+\); not supported/],
    ['no indices', (sp: Record<string, unknown>) => { delete sp.indices; }, /sparse initializer 'qkv.weight' has no values or no indices/],
    ['int32 indices', (sp: Record<string, unknown>) => { (sp.indices as Record<string, unknown>).dataType = 6; (sp.indices as Record<string, unknown>).rawData = new Uint8Array(0); (sp.indices as Record<string, unknown>).int32Data = []; }, /needs \d+ values but holds 0|int32 indices/],
  ])('%s is a one-line error', (name, mutate, message) => {
    const dense = path.join(tmp.dir, 'bad-dense.onnx');
    const file = path.join(tmp.dir, `bad-${name.replace(/\W+/g, '-')}.onnx`);
    denseModel(dense);
    sparsify(dense, file, mutate);
    let err: unknown;
    try {
      loadModel(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ModelError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('\n');
  });
});
