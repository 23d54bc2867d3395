// drop-attention: the residual stream passes through unchanged. On the hand-built fused fixtures with every site
// dropped the model is the identity; on every fixture, dropping a site equals zeroing all of its heads through the
// head-mask model with the site's output-projection bias zeroed (dropping removes the bias as well).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gapIt } from '../known-gaps';
import { loadModel } from '../../src/analysis/ir/load';
import { rewriteModel } from '../../src/rewriters/pipeline';
import { RuleError } from '../../src/rewriters/rule';
import { feedsOf, fixture, fixtureNames, maskedOutputs, maxAbsDiff, outputsOf, rewriteFixture, scratch, sitesOf } from './shared-prune-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = scratch('prune-drop'); });
afterAll(() => tmp.cleanup());

describe('drop-attention', () => {
  it.each(['fused-mha', 'fused-gqa', 'fused-onnx23', 'fused-contrib_attention'])('%s with both sites dropped is the identity y = x', async (name) => {
    const { file } = rewriteFixture(name, [{ rule: 'drop-attention', params: { sites: [0, 1] } }], tmp.dir, 'drop');
    const feeds = feedsOf(name);
    const { y } = await outputsOf(file, feeds);
    expect(maxAbsDiff(y, feeds.x.data as Float32Array)).toBe(0);
    // Nothing of the attention is left: no nodes but the output Identity, no weights.
    const g = loadModel(file).graph;
    expect(g.nodes.map((n) => n.opType)).toEqual(['Identity']);
    expect(g.initializers.size).toBe(0);
  });

  for (const name of fixtureNames()) gapIt('drop-last-site', name)(`${name}: dropping the last site equals zeroing all its heads`, async () => {
    const sites = sitesOf(fixture(name).model);
    const last = sites[sites.length - 1];
    const { file, report } = rewriteFixture(name, [{ rule: 'drop-attention', params: { sites: [last.id] } }], tmp.dir, 'drop-last');
    const feeds = feedsOf(name);
    // Dropping removes the output projection's bias too (zero in the transformers fixtures, drawn at random in the
    // torch.nn ones), so the reference zeroes it along with the heads.
    const want = await maskedOutputs(name, { [last.id]: Array.from({ length: last.heads! }, (_, h) => h) }, feeds, tmp.dir, { zeroOutputBias: [last.id] });
    const got = await outputsOf(file, feeds);
    const before = await outputsOf(fixture(name).model, feeds);
    for (const [out, w] of Object.entries(want)) {
      expect(maxAbsDiff(got[out], w), out).toBeLessThanOrEqual(1e-5);
      if (!out.startsWith('present')) expect(maxAbsDiff(before[out], w), `${out} did not change`).toBeGreaterThan(1e-5);
    }
    // The dropped site is gone; a site that only fed it goes too (nn.Transformer's encoder, once the decoder's
    // cross-attention, its only reader, is dropped).
    const after = sitesOf(file);
    expect(after.some((s) => s.anchors.softmax === last.anchors.softmax && s.anchors.fused === last.anchors.fused)).toBe(false);
    if (last.kind === 'self') expect(after.length).toBe(sites.length - 1);
    else expect(after.length).toBeLessThan(sites.length);
    const c = report.applied[0].changes[0];
    expect(c).toMatchObject({ site: last.id, flopsAfter: 0, bytesAfter: 0, after: { heads: 0, dropped: true } });
    expect(c.flopsBefore).toBeGreaterThan(0);
    expect(c.nodesRemoved).toBeGreaterThanOrEqual(3); // at least the core, the output projection and the residual Add
  });

  it('warns that a KV-cache site keeps computing its cache outputs', () => {
    const { report } = rewriteFixture('llama-past-eager-ts-op17', [{ rule: 'drop-attention', params: { sites: [0] } }], tmp.dir, 'warn');
    expect(report.warnings.join('\n')).toMatch(/drop-attention: site 0: .*cache outputs present\.0\.key/);
  });

  it('names the rule for unknown or repeated sites', () => {
    const model = fixture('gpt2-eager-ts-op17').model;
    const attempt = (sites: unknown) => () => rewriteModel(model, [{ rule: 'drop-attention', params: { sites } }], `${tmp.dir}/never.onnx`);
    expect(attempt([2])).toThrow(RuleError);
    expect(attempt([2])).toThrow(/drop-attention: site 2 does not exist \(the model has sites 0-1\)/);
    expect(attempt([1, 1])).toThrow(/drop-attention: site 1 is listed twice/);
    expect(attempt([])).toThrow(/drop-attention: name at least one site/);
  });
});
