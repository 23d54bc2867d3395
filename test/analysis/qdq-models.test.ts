// Models quantized by onnxruntime. Static QDQ format: quantize-dequantize pairs on every activation a MatMul reads (Q, K, V,
// the probabilities included) and int8 weights behind DequantizeLinear. The analysis walks through the pairs: the sites
// are those of the float model, self-attention stays self-attention although each projection reads its own pair. The
// mask forms apply, and importance's head masks; the forms that rebuild the core, fuse and the head rewrites refuse with
// the reason. Dynamic quantization (quantize_dynamic): the projections become DynamicQuantizeLinear -> MatMulInteger;
// the sites, their bindings and output projections are those of the float model, and the rules that rebuild the core
// from Q, K and V apply exactly; those that edit weights refuse.
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { rewriteModel, type RuleRequest } from '../../src/rewriters/pipeline';
import { dynamicQuantFixture, qdqFixture } from '../helpers/qdq';
import { feedsOf, fixture, maskedOutputs, maxAbsDiff, outputsOf, scratch } from '../rewriters/shared-prune-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = scratch('qdq-models'); });
afterAll(() => tmp.cleanup());

const describeSite = (s: ReturnType<typeof analyzeModel>['sites'][number]) => [s.kind, s.causal, s.heads, s.kvHeads, s.headDim, s.scale, s.maskType, s.position, s.form];

describe('QDQ-quantized models', () => {
  it.each(['gpt2-eager-ts-op17', 'llama-eager-ts-op17', 'bert-eager-ts-op17'])('%s: the sites of the float model; mask forms apply, the rest refuse with the reason', async (name) => {
    const file = qdqFixture(name, tmp.dir);
    const r = analyzeModel(file);
    expect(r.unmatched).toEqual([]);
    expect(r.sites.map(describeSite)).toEqual(analyzeModel(fixture(name).model).sites.map(describeSite));

    const out = path.join(tmp.dir, `${name}.window.onnx`);
    rewriteModel(file, [{ rule: 'window', params: { window: 4 } }], out);
    const [before, after] = [await outputsOf(file, feedsOf(name)), await outputsOf(out, feedsOf(name))];
    for (const k of Object.keys(before)) expect(maxAbsDiff(before[k], after[k]), k).toBeGreaterThan(1e-3);

    const fast = rewriteModel(file, [{ rule: 'window', params: { window: 4, impl: 'blocked' } } as RuleRequest], path.join(tmp.dir, `${name}.blocked.onnx`));
    expect(fast.warnings.join('\n')).toMatch(/blocked form not possible \(its probabilities pass through DequantizeLinear before ·V\); used the mask form/);
    expect(() => rewriteModel(file, [{ rule: 'fuse', params: {} }], path.join(tmp.dir, 'never.onnx'))).toThrow(/its probabilities pass through DequantizeLinear before ·V/);
    expect(() => rewriteModel(file, [{ rule: 'prune-heads', params: { heads: { 0: [1] } } }], path.join(tmp.dir, 'never.onnx'))).toThrow(/prune-heads: site 0: the weight of '.*' is not a constant the rewrite can read/);
    // Importance's head masks reach the heads through the pairs: the masked model loads and runs, and a zeroed head
    // changes its output. (Its outputs with ones need not be the quantized model's to the bit: onnxruntime fuses the
    // pairs around the multiplication differently.)
    const ones = await maskedOutputs(file, {}, feedsOf(name), tmp.dir);
    const zeroed = await maskedOutputs(file, { 1: [2] }, feedsOf(name), tmp.dir);
    for (const k of Object.keys(ones)) {
      expect(ones[k].every(Number.isFinite)).toBe(true);
      expect(maxAbsDiff(ones[k], zeroed[k]), k).toBeGreaterThan(1e-3);
    }
  });
});

describe('dynamically quantized models (MatMulInteger projections)', () => {
  it.each([
    ['llama-eager-ts-op17', false], ['bert-eager-ts-op17', false], ['vit-eager-ts-op17', false], ['llama-eager-ts-op17', true],
  ] as const)('%s (DynamicQuantizeMatMul: %s): the sites of the float model, bound; fuse and the fast forms exact; weight edits refuse', async (name, fusedQuant) => {
    const file = dynamicQuantFixture(name, tmp.dir, fusedQuant);
    const [r, float] = [analyzeModel(file), analyzeModel(fixture(name).model)];
    expect(r.unmatched).toEqual([]);
    // Each projection reads its own DynamicQuantizeLinear of the same activation: still self-attention.
    expect(r.sites.map(describeSite)).toEqual(float.sites.map(describeSite));
    expect(r.sites.map((s) => [s.binding?.heads, s.binding?.queryPositions, s.flops, s.projections.o?.node])).toEqual(
      float.sites.map((s) => [s.binding?.heads, s.binding?.queryPositions, s.flops, expect.stringMatching(/_quant$/)]),
    );
    const feeds = feedsOf(name);
    const before = await outputsOf(file, feeds);
    const requests: RuleRequest[][] = [[{ rule: 'fuse', params: {} }], [{ rule: 'window', params: { window: 4, impl: 'blocked' } } as RuleRequest]];
    const maskFile = path.join(tmp.dir, `${name}.dq-mask.onnx`);
    rewriteModel(file, [{ rule: 'window', params: { window: 4 } }], maskFile);
    const masked = await outputsOf(maskFile, feeds);
    for (const [i, req] of requests.entries()) {
      const out = path.join(tmp.dir, `${name}.dq-${i}.onnx`);
      const rep = rewriteModel(file, req, out);
      expect(rep.warnings.join('\n'), req[0].rule).not.toMatch(/not possible|used the mask form/);
      const got = await outputsOf(out, feeds);
      const want = req[0].rule === 'fuse' ? before : masked;
      for (const k of Object.keys(want)) expect(maxAbsDiff(got[k], want[k]), `${req[0].rule} ${k}`).toBeLessThan(1e-4);
    }
    expect(() => rewriteModel(file, [{ rule: 'prune-heads', params: { heads: { 0: [1] } } }], path.join(tmp.dir, 'never.onnx')))
      .toThrow(/prune-heads: site 0: projection '.*_quant' is (MatMulInteger|com.microsoft.DynamicQuantizeMatMul); only MatMul, Gemm and packed Attention weights can be edited/);
  });
});
