// The small PyTorch exports in test/models, rewritten and run: what the exporter tests share.
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';
import { rewriteModel, type RuleRequest } from '../../../src/rewriters/pipeline';
import { maxAbsDiff, outputsOf, type Feeds } from '../../rewriters/shared-prune-helpers';

export const model = (name: string) => path.join(__dirname, '..', '..', 'models', `${name}.onnx`);

/** Token ids (i·7 + 3) mod 50 as a [b, t] batch. */
export const ids = (b: number, t: number): Feeds => ({ input_ids: new ort.Tensor('int64', BigInt64Array.from({ length: b * t }, (_, i) => BigInt((i * 7 + 3) % 50)), [b, t]) });

/** Rewrites a test model into `dir` and runs the result on `feeds`. */
export async function rewritten(dir: string, name: string, tag: string, requests: RuleRequest[], feeds: Feeds) {
  const out = path.join(dir, `${name}.${tag}.onnx`);
  const report = rewriteModel(model(name), requests, out);
  return { report, outputs: await outputsOf(out, feeds) };
}

/**
 * The compute-reducing form of each sparse rule gives the mask form's outputs, to float rounding, and was written on
 * every site but `fallbacks` (the sites known to keep the mask form, 0 by default). `keep` picks the output elements
 * compared (all by default): a padding query whose pattern holds only padding keys has no key to attend to, and what
 * each form computes there is undefined (docs/rewrite-benchmarks.md).
 */
export async function expectFastFormsExact(dir: string, name: string, feeds: Feeds, rules: [string, Record<string, unknown>, string, number?][], keep = (_i: number) => true): Promise<void> {
  const kept = (a: Float32Array) => a.filter((_, i) => keep(i));
  for (const [rule, params, fast, fallbacks = 0] of rules) {
    const slow = await rewritten(dir, name, `${rule}-mask`, [{ rule, params: { ...params, impl: 'mask' } }], feeds);
    const quick = await rewritten(dir, name, `${rule}-${fast}`, [{ rule, params: { ...params, impl: fast } }], feeds);
    expect(quick.report.warnings.filter((w) => /used the mask form/.test(w)), `${rule} ${fast}`).toHaveLength(fallbacks);
    for (const [k, v] of Object.entries(slow.outputs)) expect(maxAbsDiff(kept(quick.outputs[k]), kept(v)), `${rule} ${fast}: ${k}`).toBeLessThan(1e-5);
  }
}
