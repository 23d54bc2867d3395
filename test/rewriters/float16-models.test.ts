// Rules on models that already compute in float16: converted throughout (inputs, weights and Softmax in float16, as
// half-precision exports and onnxconverter-common give), or by `--precision fp16` (float32 inputs and outputs, the
// Softmax in float32 between casts, as transformers' Llama runs it in half precision). A mask must take the type of the
// scores it is added to, which need not be Q's; the fast forms and fuse must be reachable and match the mask form.
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rewriteModel, type RuleRequest } from '../../src/rewriters/pipeline';
import { float16Fixture } from '../helpers/float16';
import { halfToFloat } from '../../src/analysis/numeric/float16';
import { feedsOf, fixture, maskedOutputs, maxAbsDiff, outputsOf, runModel, scratch } from './shared-prune-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = scratch('float16-models'); });
afterAll(() => tmp.cleanup());

/** The fixture in float16 computation with float32 inputs, outputs and Softmax (`--precision fp16`). */
function mixed(name: string): string {
  const out = path.join(tmp.dir, `${name}.mixed.onnx`);
  rewriteModel(fixture(name).model, [], out, { precision: 'fp16' });
  return out;
}

function rewrite(file: string, request: RuleRequest, tag: string) {
  const out = path.join(tmp.dir, `${path.basename(file, '.onnx')}.${tag}.onnx`);
  return { out, report: rewriteModel(file, [request], out) };
}

/** The outputs as numbers (a float16 output's data holds the half-precision bits). */
async function numbers(file: string, name: string): Promise<Record<string, number[]>> {
  const r = await runModel(file, feedsOf(name));
  return Object.fromEntries(Object.entries(r).map(([k, t]) => [k, t.type === 'float16' ? Array.from(t.data as Uint16Array, halfToFloat) : Array.from(t.data as Float32Array)]));
}

async function diff(a: string, b: string, name: string): Promise<number> {
  const [x, y] = [await numbers(a, name), await numbers(b, name)];
  return Math.max(...Object.keys(x).map((k) => maxAbsDiff(x[k], y[k])));
}

const CASES = [
  ['float16 throughout', 'nnmha-decoder-op14'],
  ['float16 throughout', 'llama-sdpa-ts-op17'],
  ['float16 throughout', 'gpt2-eager-ts-op17'],
  ['--precision fp16 (Softmax in float32)', 'llama-eager-ts-op17'],
  ['--precision fp16 (Softmax in float32)', 'gpt2-eager-ts-op17'],
] as const;

describe('sparse rules and fuse on float16 models', () => {
  it.each(CASES)('%s: %s', async (kind, name) => {
    const file = kind === 'float16 throughout' ? float16Fixture(name, tmp.dir) : mixed(name);
    for (const [rule, params, fast] of [['window', { window: 4 }, 'blocked'], ['block-topk', { block: 4, k: 1 }, 'gather']] as const) {
      const mask = rewrite(file, { rule, params: { ...params, impl: 'mask' } } as RuleRequest, `${rule}-mask`);
      const quick = rewrite(file, { rule, params: { ...params, impl: fast } } as RuleRequest, `${rule}-${fast}`);
      expect(quick.report.warnings.join('\n'), `${rule}`).not.toMatch(/used the mask form/);
      expect(quick.report.applied[0].changes.every((c) => (c.after as { impl?: string }).impl === fast), `${rule} ${fast}`).toBe(true);
      // Both load and run; the pattern changes the outputs; the fast form gives the mask form's within float16 rounding.
      expect(await diff(file, mask.out, name), `${rule} changed nothing`).toBeGreaterThan(1e-2);
      expect(await diff(mask.out, quick.out, name), `${rule} ${fast} vs mask`).toBeLessThan(4e-3);
    }
    const fused = rewrite(file, { rule: 'fuse', params: {} }, 'fuse');
    expect(fused.report.applied[0].changes.length).toBeGreaterThan(0);
    expect(await diff(file, fused.out, name)).toBeLessThan(1e-2);
  });
});

describe('head masks (importance) on a float16 model', () => {
  it('the float32 mask inputs are cast to the site type: ones reproduce the model, a zero removes a head', async () => {
    const name = 'gpt2-eager-ts-op17';
    const file = float16Fixture(name, tmp.dir);
    const bits = async (f: Promise<Record<string, Float32Array>>) => Array.from(new Uint16Array((await f).logits.buffer));
    const original = await bits(outputsOf(file, feedsOf(name)));
    expect(await bits(maskedOutputs(file, {}, feedsOf(name), tmp.dir))).toEqual(original);
    expect(await bits(maskedOutputs(file, { 1: [2] }, feedsOf(name), tmp.dir))).not.toEqual(original);
  });
});

