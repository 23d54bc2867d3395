// The opset upgrade on real exports and in the rewrite pipeline: the old-opset fixtures raised to 13 reproduce the
// manifest outputs and the original model's (within 1e-6), the opset-13/14 fixtures are left alone, a sparse rule on
// the opset-11 fixture no longer stops at the opset, rules that need no newer opset leave it alone, and the nodes that
// cannot be converted exactly are refused with the node named and the model untouched. The per-op conversions are
// tested one by one in opset-upgrade-ops.test.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attr, GraphBuilder } from '../../src/analysis/ir/builder';
import { loadModel } from '../../src/analysis/ir/load';
import { saveModel } from '../../src/analysis/ir/save';
import { rewriteInMemory } from '../../src/rewriters/pipeline';
import { OPSET_CHANGES } from '../../src/rewriters/opset/table';
import { OpsetUpgradeError, upgradeOpset } from '../../src/rewriters/opset/upgrade';
import { halfBits } from '../../src/rewriters/opset/values';
import { allRules } from '../../src/rewriters/registry';
import '../../src/rewriters/rules';
import { SiteOps } from '../../src/rewriters/sparse/ops';
import { manifestFeeds, runModel, tempDir, type Feeds } from '../analysis/helpers/ort';
import { fixture, fixtureNames } from '../helpers/fixtures';
import { oldModel } from './opset-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = tempDir('opset-upgrade'); });
afterAll(() => tmp.cleanup());

const OLD_EXPORTS = fixtureNames().filter((n) => /-op(9|1[0-4])$/.test(n));

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function reference(name: string): { feeds: Feeds; outputs: Record<string, Float32Array> } {
  const { dir, manifest } = fixture(name);
  const outputs: Record<string, Float32Array> = {};
  for (const o of manifest.outputs) outputs[o.name] = new Float32Array(new Uint8Array(fs.readFileSync(path.join(dir, o.file))).buffer);
  return { feeds: manifestFeeds(dir, manifest.inputs), outputs };
}

describe('old exports', () => {
  it('include the opset-11 and opset-12 fixtures', () => {
    expect(OLD_EXPORTS).toEqual(expect.arrayContaining(['nntransformer-seq2seq-op11', 'timmstyle-vit-op12']));
  });

  it.each(OLD_EXPORTS)('%s: raised to 13, it gives the outputs it gave (or is left alone from 13 on)', async (name) => {
    const model = loadModel(fixture(name).model);
    const from = model.opsets.get('')!;
    const nodes = [...model.graph.nodes];
    const up = upgradeOpset(model, 13);
    if (from >= 13) {
      expect(up).toEqual({ from, to: from, irVersion: { from: model.irVersion, to: model.irVersion }, converted: {} });
      expect(model.opsets.get('')).toBe(from);
      expect(model.graph.nodes.length === nodes.length && model.graph.nodes.every((n, i) => n === nodes[i])).toBe(true);
      return;
    }
    expect(up.from).toBe(from);
    expect(model.opsets.get('')).toBe(13);
    expect(model.irVersion).toBeGreaterThanOrEqual(7);
    // These exports hold Unsqueeze with an axes attribute: a bump alone would not load.
    expect(up.converted.Unsqueeze).toBeGreaterThan(0);
    const file = path.join(tmp.dir, `${name}-13.onnx`);
    saveModel(model, file);
    expect(loadModel(file).opsets.get('')).toBe(13);
    const { feeds, outputs } = reference(name);
    const original = await runModel(fixture(name).model, feeds);
    const upgraded = await runModel(file, feeds);
    for (const [o, ref] of Object.entries(outputs)) {
      expect(maxDiff(upgraded[o].data as Float32Array, ref), `${o} vs the manifest`).toBeLessThanOrEqual(1e-6);
      expect(maxDiff(upgraded[o].data as Float32Array, original[o].data as Float32Array), `${o} vs the original`).toBeLessThanOrEqual(1e-6);
    }
  });
});

describe('in the rewrite pipeline', () => {
  const op11 = fixture('nntransformer-seq2seq-op11').model;

  it('--window 4 on the opset-11 export raises it to 13 instead of refusing, and the result runs', async () => {
    let result: ReturnType<typeof rewriteInMemory> | undefined;
    try {
      result = rewriteInMemory(op11, [{ rule: 'window', params: { window: 4 } }]);
    } catch (e) {
      // Other reasons (site layouts) may still stop it; the opset must not.
      expect((e as Error).message).not.toMatch(/opset/i);
      return;
    }
    const { model, report } = result;
    expect(model.opsets.get('')).toBe(13);
    expect(report.opsetUpgrade).toMatchObject({ from: 11, to: 13 });
    expect(report.warnings.some((w) => /opset was raised from 11 to 13 for window/.test(w))).toBe(true);
    expect(report.applied.map((a) => a.rule)).toEqual(['window']);
    const file = path.join(tmp.dir, 'op11-window.onnx');
    saveModel(model, file);
    const { feeds, outputs } = reference('nntransformer-seq2seq-op11');
    const out = await runModel(file, feeds);
    for (const [o, ref] of Object.entries(outputs)) {
      expect(out[o].dims.reduce((a, b) => a * b, 1)).toBe(ref.length);
      expect((out[o].data as Float32Array).every(Number.isFinite)).toBe(true);
    }
  });

  it('a rule whose nodes need no newer opset leaves it alone; with a sparse rule the model is raised once', () => {
    const alone = rewriteInMemory(op11, [{ rule: 'drop-attention', params: { sites: [1] } }]);
    expect(alone.model.opsets.get('')).toBe(11);
    expect(alone.report.opsetUpgrade).toBeUndefined();
    expect(alone.report.warnings.join('\n')).not.toMatch(/opset/);

    let both: ReturnType<typeof rewriteInMemory>;
    try {
      both = rewriteInMemory(op11, [{ rule: 'drop-attention', params: { sites: [1] } }, { rule: 'window', params: { window: 4 } }]);
    } catch (e) {
      expect((e as Error).message).not.toMatch(/opset/i);
      return;
    }
    expect(both.model.opsets.get('')).toBe(13);
    expect(both.report.warnings.filter((w) => /opset was raised/.test(w))).toEqual([expect.stringMatching(/from 11 to 13 for window,/)]);
  });

  it('every rule that writes nodes with SiteOps declares opset 13, and SiteOps refuses an older model', () => {
    const declared = Object.fromEntries(allRules().map((r) => [r.name, r.minOpset]));
    for (const name of ['window', 'sink', 'strided', 'power', 'neighborhood2d', 'block-topk', 'expand', 'share-attn']) {
      expect(declared[name], name).toBe(13);
    }
    for (const name of ['prune-heads', 'drop-attention', 'share-kv', 'gqa', 'dictionary']) expect(declared[name], name).toBeUndefined();
    expect(() => new SiteOps(oldModel(12), 'probe::test', 'float32')).toThrow(/opset 12; raise it to 13/);
  });
});

describe('refusals name the node and leave the model as it was', () => {
  function refused(b: GraphBuilder, pattern: RegExp): void {
    const model = b.finish();
    const before = { opset: model.opsets.get(''), nodes: model.graph.nodes.length, inputs: model.graph.nodes.map((n) => n.inputs.length) };
    expect(() => upgradeOpset(model, 13)).toThrow(OpsetUpgradeError);
    expect(() => upgradeOpset(model, 13)).toThrow(pattern);
    expect({ opset: model.opsets.get(''), nodes: model.graph.nodes.length, inputs: model.graph.nodes.map((n) => n.inputs.length) }).toEqual(before);
  }

  it('a Dropout whose mask is read (its type and inference value change)', () => {
    const b = oldModel(11);
    const x = b.input('x', 'float32', [2, 3]);
    // An Unsqueeze first: planned for conversion, it must not be edited when a later node refuses.
    const u = b.op('Unsqueeze', [x], { attrs: { axes: attr.ints([0]) } });
    const d = b.node('Dropout', [u], { name: 'drop', attrs: { ratio: attr.float(0.1) }, outputs: 2 });
    b.output(d.outputs[0], 'float32');
    b.output(d.outputs[1], 'bool');
    refused(b, /Dropout 'drop': its mask output .* is used/);
  });

  it('nearest Resize-10 whose scales are only known at run time, or enlarge one axis and shrink another', () => {
    const b = oldModel(10);
    const x = b.input('x', 'float32', [1, 1, 4, 4]);
    b.output(b.op('Resize', [x, b.input('scales', 'float32', [4])], { name: 'runtime' }), 'float32');
    refused(b, /Resize 'runtime': .* only known at run time/);
    const c = oldModel(10);
    const y = c.input('x', 'float32', [1, 1, 4, 4]);
    c.output(c.op('Resize', [y, c.initializer('s', [4], { dtype: 'float32', data: [1, 1, 2, 0.5] })], { name: 'mixed' }), 'float32');
    refused(c, /Resize 'mixed': its scales \[1, 1, 2, 0.5\] enlarge some axes and shrink others/);
  });

  it('Resize with tf_half_pixel_for_nn, which 13 dropped', () => {
    const b = oldModel(11);
    const x = b.input('x', 'float32', [1, 1, 2, 2]);
    const roi = b.initializer('roi', [0], { dtype: 'float32', data: [] });
    const s = b.initializer('s', [4], { dtype: 'float32', data: [1, 1, 2, 2] });
    b.output(b.op('Resize', [x, roi, s], { name: 'tf', attrs: { coordinate_transformation_mode: attr.string('tf_half_pixel_for_nn') } }), 'float32');
    refused(b, /Resize 'tf': coordinate_transformation_mode tf_half_pixel_for_nn/);
  });

  it('a node that needs converting inside a subgraph, and model-local functions', () => {
    const b = oldModel(11);
    const x = b.input('x', 'float32', [2]);
    const cond = b.input('c', 'bool', []);
    const branch = (name: string) => ({
      name, node: [{ name: `${name}_unsqueeze`, opType: 'Unsqueeze', domain: '', input: ['x'], output: [`${name}_y`], attribute: [{ name: 'axes', type: 7, ints: [0] }] }],
      output: [{ name: `${name}_y`, type: { tensorType: { elemType: 1 } } }],
    });
    const node = b.node('If', [cond], { name: 'if', outputs: ['y'] });
    node.attributes.set('then_branch', { name: 'then_branch', type: 5, g: branch('then') });
    node.attributes.set('else_branch', { name: 'else_branch', type: 5, g: branch('else') });
    b.output('y', 'float32');
    refused(b, /Unsqueeze 'then_unsqueeze' inside a subgraph of If 'if'/);

    const f = oldModel(11);
    f.output(f.op('Relu', [f.input('x', 'float32', [2])]), 'float32');
    f.model.proto.functions = [{ name: 'local_fn', domain: 'local', opsetImport: [{ domain: '', version: 11 }], node: [] }];
    refused(f, /model-local function 'local_fn' imports ONNX opset 11/);
  });

  it('opsets older than 9', () => {
    const b = GraphBuilder.create({ opsets: { '': 8 }, irVersion: 3 });
    b.output(b.op('Relu', [b.input('x', 'float32', [2])]), 'float32');
    refused(b, /opset 8 is older than 9/);
  });
});

describe('the per-op table', () => {
  // Every (operator, version) of the ONNX changelog at opsets 10 to 13 whose operator existed before that version:
  // raising a model past it needs a decision.
  const CHANGELOG = `Abs-13 Add-13 ArgMax-11 ArgMax-12 ArgMax-13 ArgMin-11 ArgMin-12 ArgMin-13 AveragePool-10 AveragePool-11 Cast-13
    Ceil-13 Clip-11 Clip-12 Clip-13 Compress-11 Concat-11 Concat-13 Constant-11 Constant-12 Constant-13 Conv-11
    ConvTranspose-11 DepthToSpace-11 DepthToSpace-13 DequantizeLinear-13 Div-13 Dropout-10 Dropout-12 Dropout-13 Equal-11
    Equal-13 Erf-13 Exp-13 Expand-13 Flatten-11 Flatten-13 Floor-13 Gather-11 Gather-13 GatherElements-13 GatherND-12
    GatherND-13 Gemm-11 Gemm-13 Greater-13 Hardmax-11 Hardmax-13 Identity-13 If-11 If-13 IsNaN-13 LRN-13 Less-13 Log-13
    LogSoftmax-11 LogSoftmax-13 Loop-11 Loop-13 LpPool-11 MatMul-13 Max-12 Max-13 MaxPool-10 MaxPool-11 MaxPool-12
    MaxUnpool-11 Mean-13 MeanVarianceNormalization-13 Min-12 Min-13 Mod-13 Mul-13 Neg-13 NegativeLogLikelihoodLoss-13
    NonMaxSuppression-11 NonZero-13 OneHot-11 Pad-11 Pad-13 Pow-12 Pow-13 QuantizeLinear-13 Reciprocal-13 ReduceL1-11
    ReduceL1-13 ReduceL2-11 ReduceL2-13 ReduceLogSum-11 ReduceLogSum-13 ReduceLogSumExp-11 ReduceLogSumExp-13 ReduceMax-11
    ReduceMax-12 ReduceMax-13 ReduceMean-11 ReduceMean-13 ReduceMin-11 ReduceMin-12 ReduceMin-13 ReduceProd-11 ReduceProd-13
    ReduceSum-11 ReduceSum-13 ReduceSumSquare-11 ReduceSumSquare-13 Relu-13 Reshape-13 Resize-11 Resize-13 Scan-11
    Scatter-11 ScatterElements-13 ScatterND-13 Shape-13 Sigmoid-13 Sign-13 Size-13 Slice-10 Slice-11 Slice-13 Softmax-11
    Softmax-13 SoftmaxCrossEntropyLoss-13 SpaceToDepth-13 Split-11 Split-13 Sqrt-13 Squeeze-11 Squeeze-13 Sub-13 Sum-13
    Tanh-13 Tile-13 Transpose-13 TopK-10 TopK-11 Unsqueeze-11 Unsqueeze-13 Upsample-10`.split(/\s+/).filter(Boolean);

  it('decides every operator version of the changelog from 10 to 13, once, with a reason', () => {
    const keys = OPSET_CHANGES.map((c) => `${c.op}-${c.at}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys).toEqual(expect.arrayContaining(CHANGELOG));
    for (const c of OPSET_CHANGES) {
      expect(c.at, `${c.op}-${c.at}`).toBeGreaterThanOrEqual(10);
      expect(c.at, `${c.op}-${c.at}`).toBeLessThanOrEqual(13);
      expect(c.why.length, `${c.op}-${c.at}`).toBeGreaterThan(10);
    }
    const converted = OPSET_CHANGES.filter((c) => c.how !== 'same').map((c) => `${c.op}-${c.at}`).sort();
    expect(converted).toEqual([
      'Clip-11', 'Dropout-10', 'Dropout-12', 'Hardmax-13', 'LogSoftmax-13', 'Pad-11', 'ReduceSum-13', 'Resize-11', 'Resize-13',
      'Scatter-11', 'Slice-10', 'Softmax-13', 'Split-13', 'Squeeze-13', 'TopK-10', 'Unsqueeze-13', 'Upsample-10',
    ]);
  });

  it('writes float16 scalars (Clip and Pad values) rounded to nearest, ties to even', () => {
    expect([1, -2, 0.1, 65504, 65520, 2 ** -24, 3 * 2 ** -25, 1e-8, -0, Infinity].map(halfBits)).toEqual([
      0x3c00, 0xc000, 0x2e66, 0x7bff, 0x7c00, 0x0001, 0x0002, 0x0000, 0x8000, 0x7c00,
    ]);
  });
});
