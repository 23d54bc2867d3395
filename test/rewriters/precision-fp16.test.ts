// `--precision fp16` (issue 9): float16 weights and computation with the float32 interface kept, softmax and
// normalisation in float32. On fixtures of each kind (eager and SDPA Llama, GPT-2 with its tanh GELU, BERT, ViT,
// the trained byte model, KV caches, fused operators) the converted model loads and runs in onnxruntime's CPU
// provider, takes and returns float32 under the same names, is about half the size, and stays close to the float32
// model: measured max |Δ| (24 tokens) 6e-4 to 4.6e-3 on outputs of magnitude up to 4 (logits, hidden states, KV
// caches), 2.5e-2 on the trained model's logits (magnitude 11), so the bound below is 5e-3 of the output's largest
// magnitude (at least 1).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { saveModel } from '../../src/analysis/ir/save';
import type { SiteInfo } from '../../src/analysis/report/types';
import { rewriteInMemory } from '../../src/rewriters/pipeline';
import { fixture } from '../helpers/fixtures';
import { floatOutputs, synthesizedFeeds, tempDir } from './sparse-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = tempDir('precision-fp16'); });
afterAll(() => tmp.cleanup());

const FIXTURES = [
  'llama-eager-ts-op17', 'llama-sdpa-ts-op17', 'gpt2-eager-ts-op17', 'bert-eager-ts-op17', 'vit-eager-ts-op17',
  'bytelm-llama-trained', 'gpt2-past-eager-ts-op17', 'llama-past-sdpa-ts-op17', 'fused-gqa', 'llama-eager-ts-op17-ortfused',
];

describe('fp16 conversion keeps the outputs close', () => {
  it.each(FIXTURES)('%s', async (name) => {
    const model = fixture(name).model;
    const hash = crypto.createHash('sha256').update(fs.readFileSync(model)).digest('hex');
    const { model: converted, report } = rewriteInMemory(model, [], { precision: 'fp16' });
    const file = path.join(tmp.dir, `${name}.fp16.onnx`);
    saveModel(converted, file);
    const p = report.precision!;
    expect(p.convertedConstants).toBeGreaterThan(0);
    expect(p.bytesAfter * 2).toBe(p.bytesBefore);
    expect(fs.statSync(file).size).toBeLessThan(0.6 * fs.statSync(model).size + 64 * 1024);
    // Softmax stays float32 wherever it is written out.
    const softmaxes = converted.graph.nodes.filter((n) => n.opType === 'Softmax').length;
    expect(p.keptFloat32.Softmax ?? 0).toBe(softmaxes);

    const feeds = synthesizedFeeds(model, 24, 5);
    const want = await floatOutputs(model, feeds);
    const got = await floatOutputs(file, feeds);
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
    for (const [k, a] of Object.entries(want)) {
      const b = got[k];
      expect(b.length).toBe(a.length);
      let err = 0;
      let scale = 1;
      for (let i = 0; i < a.length; i++) {
        err = Math.max(err, Number.isFinite(b[i]) ? Math.abs(a[i] - b[i]) : Infinity);
        scale = Math.max(scale, Math.abs(a[i]));
      }
      expect(err, `${name} ${k}: max |Δ| against float32`).toBeLessThan(5e-3 * scale);
      expect(err, `${name} ${k}: float16 changed nothing?`).toBeGreaterThan(0);
    }
    expect(crypto.createHash('sha256').update(fs.readFileSync(model)).digest('hex')).toBe(hash);
    // The converted model is still analysable (benchmarks profile it): the same sites, through the Clip and Cast
    // pairs the conversion puts before each cast down.
    const site = (s: SiteInfo) => [s.kind, s.causal, s.heads, s.kvHeads, s.headDim, s.position, s.maskType, s.form];
    const [before, after] = [analyzeModel(model), analyzeModel(file)];
    expect(after.sites.map(site)).toEqual(before.sites.map(site));
    expect(after.unmatched.length).toBe(before.unmatched.length);
  });

  it('combines with a rule: blocked window then float16', async () => {
    const model = fixture('llama-eager-ts-op17').model;
    const feeds = synthesizedFeeds(model, 24, 0);
    const { model: m32 } = rewriteInMemory(model, [{ rule: 'window', params: { window: 5, impl: 'blocked', rows: 4 } }]);
    const { model: m16 } = rewriteInMemory(model, [{ rule: 'window', params: { window: 5, impl: 'blocked', rows: 4 } }], { precision: 'fp16' });
    const [f32, f16] = [path.join(tmp.dir, 'w32.onnx'), path.join(tmp.dir, 'w16.onnx')];
    saveModel(m32, f32);
    saveModel(m16, f16);
    const [a, b] = [(await floatOutputs(f32, feeds)).logits, (await floatOutputs(f16, feeds)).logits];
    let err = 0;
    for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i] - b[i]));
    expect(err).toBeLessThan(5e-3);
  });
});

describe('rewrite --precision', () => {
  it('parses alone or after rules, and names a bad value', async () => {
    const { parseRewriteArgs } = await import('../../src/cli/rewrite');
    expect(parseRewriteArgs(['m.onnx', '--precision', 'fp16', '-o', 'x.onnx'])).toMatchObject({ requests: [], precision: 'fp16' });
    expect(parseRewriteArgs(['m.onnx', '--window', '8', '--precision', 'fp16', '-o', 'x.onnx']).requests).toHaveLength(1);
    expect(() => parseRewriteArgs(['m.onnx', '--precision', 'fp8', '-o', 'x.onnx'])).toThrow("--precision must be one of fp32, fp16, got 'fp8'");
    expect(() => parseRewriteArgs(['m.onnx', '-o', 'x.onnx'])).toThrow(/no rule given/);
    expect(() => parseRewriteArgs(['m.onnx', '--window', '8', '--impl', 'auto', '--ep', 'tpu', '-o', 'x.onnx'])).toThrow(/--ep: unknown provider 'tpu'/);
  });
});
