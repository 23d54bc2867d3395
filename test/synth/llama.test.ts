import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { analyzeLoaded, analyzeModel } from '../../src/analysis/analyze';
import { graphProblems } from '../../src/analysis/ir/invariants';
import { loadModel } from '../../src/analysis/ir/load';
import { saveModel } from '../../src/analysis/ir/save';
import { buildLlama, llamaParameterCount, type LlamaConfig } from '../../src/synth/llama';
import { floats, int64Tensor, runModel, tempDir } from '../analysis/helpers/ort';
import { fixture } from '../helpers/fixtures';
import { referenceLogits } from './llama-reference';

const tiny: LlamaConfig = { layers: 2, hidden: 64, heads: 4, kvHeads: 2, headDim: 16, intermediate: 96, vocab: 101, seed: 7 };
const ids = [5, 17, 99, 0, 42, 8, 63];

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => { tmp = tempDir('llama'); });
afterEach(() => tmp.cleanup());

function opCounts(model: ReturnType<typeof buildLlama>['model']): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of model.graph.nodes) counts[n.opType] = (counts[n.opType] ?? 0) + 1;
  return counts;
}

async function logits(file: string, tokens: number[], mask = tokens.map(() => 1)) {
  const out = await runModel(file, {
    input_ids: int64Tensor(tokens, [1, tokens.length]),
    attention_mask: int64Tensor(mask, [1, tokens.length]),
  });
  return out.logits;
}

function maxAbsDiffAt(a: Float32Array, b: Float32Array, from: number, to: number): number {
  let m = 0;
  for (let i = from; i < to; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('synthetic Llama', () => {
  it('builds a tiny 2-layer model that saves, loads, runs in onnxruntime and matches a direct implementation', async () => {
    const { model, parameters } = buildLlama(tiny);
    expect(graphProblems(model.graph)).toEqual([]);
    expect(parameters).toBe(llamaParameterCount(tiny));
    const weightElements = [...model.graph.initializers.values()].reduce((a, t) => a + t.size, 0);
    expect(weightElements).toBe(parameters);

    const file = path.join(tmp.dir, 'tiny.onnx');
    saveModel(model, file);
    const loaded = loadModel(file);
    expect(loaded.graph.nodes.length).toBe(model.graph.nodes.length);
    expect(loaded.graph.inputs.map((v) => v.name)).toEqual(['input_ids', 'attention_mask']);

    const out = await logits(file, ids);
    expect(out.dims).toEqual([1, ids.length, tiny.vocab]);
    const got = floats(out);
    expect(got.every(Number.isFinite)).toBe(true);

    const ref = referenceLogits(loaded, tiny, ids, ids.map(() => 1));
    const scale = Math.max(...ref.map((row) => Math.max(...row.map(Math.abs))));
    let worst = 0;
    ref.forEach((row, s) => row.forEach((v, j) => { worst = Math.max(worst, Math.abs(v - got[s * tiny.vocab + j])); }));
    expect(scale).toBeGreaterThan(1e-3); // the logits are not trivially zero
    expect(worst / scale).toBeLessThan(1e-4);
  });

  it('is causal: changing the last token leaves every earlier position\'s logits unchanged', async () => {
    const file = path.join(tmp.dir, 'tiny.onnx');
    saveModel(buildLlama(tiny).model, file);
    const a = floats(await logits(file, ids));
    const changed = [...ids.slice(0, -1), 77];
    const b = floats(await logits(file, changed));
    const V = tiny.vocab;
    const S = ids.length;
    expect(maxAbsDiffAt(a, b, 0, (S - 1) * V)).toBe(0);
    expect(maxAbsDiffAt(a, b, (S - 1) * V, S * V)).toBeGreaterThan(0);
  });

  it('applies the padding mask (a masked key is invisible to later positions)', async () => {
    const { model } = buildLlama(tiny);
    const file = path.join(tmp.dir, 'tiny.onnx');
    saveModel(model, file);
    const mask = [1, 1, 0, 1, 1, 1, 1];
    const got = floats(await logits(file, ids, mask));
    const ref = referenceLogits(model, tiny, ids, mask);
    const scale = Math.max(...ref.map((row) => Math.max(...row.map(Math.abs))));
    let worst = 0;
    ref.forEach((row, s) => row.forEach((v, j) => { worst = Math.max(worst, Math.abs(v - got[s * tiny.vocab + j])); }));
    expect(worst / scale).toBeLessThan(1e-4);
    // And it matters: the unmasked run differs after the masked position.
    const plain = floats(await logits(file, ids));
    expect(maxAbsDiffAt(got, plain, 3 * tiny.vocab, ids.length * tiny.vocab)).toBeGreaterThan(0);
  });

  it('writes attention the way the TorchScript exporter does: one Softmax per layer, repeat_kv only for grouped-query', () => {
    const gqa = opCounts(buildLlama(tiny).model);
    expect(gqa.Softmax).toBe(tiny.layers);
    expect(gqa.LessOrEqual).toBe(1);
    expect(gqa.Range).toBe(2);
    // 7 projections + 2 attention MatMuls per layer, lm_head, and the rotary frequencies.
    expect(gqa.MatMul).toBe(tiny.layers * 9 + 2);
    // rotary (1) + repeat_kv for k and v in every layer.
    expect(gqa.Expand).toBe(1 + 2 * tiny.layers);
    expect(gqa.Neg).toBe(2 * tiny.layers);

    const mha = opCounts(buildLlama({ ...tiny, kvHeads: tiny.heads }).model);
    expect(mha.Expand).toBe(1);
    expect(mha.Softmax).toBe(tiny.layers);
  });

  it('reads to the analysis exactly like the exported fixture of the same shape (llama-eager-ts-op17)', () => {
    // The fixture: 2 layers, hidden 128, 4 query heads and 2 KV heads of 32, MLP 128, vocabulary 256.
    const same: LlamaConfig = { layers: 2, hidden: 128, heads: 4, kvHeads: 2, headDim: 32, intermediate: 128, vocab: 256 };
    const exported = analyzeModel(fixture('llama-eager-ts-op17').model);
    const synthetic = analyzeLoaded(buildLlama(same).model);
    // Everything but names: kind, causal, heads, scale, mask type, position scheme, form, projection layouts, span.
    const shape = (s: (typeof exported.sites)[number]) => ({
      ...s,
      nodes: s.nodes.length,
      anchors: undefined,
      projections: Object.fromEntries(Object.entries(s.projections ?? {}).map(([k, p]) => [k, (p as { layout?: string })?.layout])),
      // The head map, without the projection node names it refers to.
      binding: s.binding && JSON.parse(JSON.stringify(s.binding, (key, v) => (key === 'node' ? undefined : v))),
      // The mask's own build differs by exporter detail (node count); both have one.
      maskBuild: (s.maskBuild?.length ?? 0) > 0,
    });
    expect(synthetic.sites.map(shape)).toEqual(exported.sites.map(shape));
    expect(synthetic.unmatched).toEqual([]);
  });

  it('with externalData, points every weight into one sparse file that is never written', async () => {
    const dataFile = path.join(tmp.dir, 'weights.bin');
    const synth = buildLlama({ ...tiny, externalData: { file: dataFile } });
    const st = fs.statSync(dataFile);
    expect(st.size).toBe(synth.dataBytes);
    expect(st.size).toBeGreaterThanOrEqual(synth.parameters * 4);
    // Sparse: (next to) no blocks allocated.
    expect(st.blocks * 512).toBeLessThan(st.size / 10);
    const tensors = [...synth.model.graph.initializers.values()];
    expect(tensors.every((t) => t.external?.file === dataFile)).toBe(true);

    const file = path.join(tmp.dir, 'ext.onnx');
    const saved = saveModel(synth.model, file);
    expect(saved.dataFile).toBeUndefined(); // referenced in place, not copied
    expect(saved.bytes).toBeLessThan(200_000);
    const loaded = loadModel(file);
    expect(loaded.externalFiles).toEqual([fs.realpathSync(dataFile)]);
    // The weights are zeros, so the logits are too; what matters is that onnxruntime accepts every reference.
    const out = floats(await logits(file, ids));
    expect(out.every((v) => v === 0)).toBe(true);
  });

  it('refuses a bad config and an existing data file, creating nothing', () => {
    expect(() => buildLlama({ ...tiny, kvHeads: 3 })).toThrow(/multiple of kvHeads/);
    expect(() => buildLlama({ ...tiny, headDim: 15 })).toThrow(/even/);
    expect(() => buildLlama({ ...tiny, layers: 32, hidden: 4096, intermediate: 11008, vocab: 32000, heads: 32, kvHeads: 8, headDim: 128 })).toThrow(/externalData/);
    const dataFile = path.join(tmp.dir, 'exists.bin');
    fs.writeFileSync(dataFile, 'keep me');
    expect(() => buildLlama({ ...tiny, externalData: { file: dataFile } })).toThrow(/EEXIST/);
    expect(fs.readFileSync(dataFile, 'utf8')).toBe('keep me');
  });
});
