// `expand` on every fused shared fixture: the written-out model gives the original's outputs (within 1e-4) on the
// manifest's inputs, and the analysis reads the same attention from it (heads, KV heads, head size, causality, kind)
// as a written-out (`unfused`) site whose Softmax carries the fused node's name.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { FUSED_OPS } from '../../src/analysis/attention/fused';
import { loadModel } from '../../src/analysis/onnx/load';
import { fixture, fixtureNames } from '../helpers/fixtures';
import { manifestFeeds } from '../analysis/helpers/ort';
import { floatOutputs, maxAbsDiff, rewriteTo, tempDir } from './sparse-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = tempDir('expand-fused'); });
afterAll(() => tmp.cleanup());

const fusedFixtures = fixtureNames().filter((name) => analyzeModel(fixture(name).model).sites.some((s) => !!s.anchors.fused));

describe('expand', () => {
  it('covers the fused fixtures named in issue 4', () => {
    for (const f of ['fused-mha', 'fused-gqa', 'fused-onnx23', 'fused-contrib_attention', 'gpt2-sdpa-dynamo-op23']) expect(fusedFixtures).toContain(f);
  });

  it.each(fusedFixtures)('%s: same outputs, same attention read back as unfused sites', async (name) => {
    const { model, dir, manifest } = fixture(name);
    const before = analyzeModel(model);
    const { file } = rewriteTo(model, [{ rule: 'expand', params: {} }], tmp.dir, name);
    const feeds = manifestFeeds(dir, manifest.inputs);
    const original = await floatOutputs(model, feeds);
    const expanded = await floatOutputs(file, feeds);
    for (const o of Object.keys(original)) expect(maxAbsDiff(expanded[o], original[o]), o).toBeLessThan(1e-4);

    const graph = loadModel(file).graph;
    expect(graph.nodes.some((n) => FUSED_OPS.has(`${n.domain || 'onnx'}.${n.opType}`))).toBe(false);
    const after = analyzeModel(file);
    expect(after.sites.length).toBe(before.sites.length);
    for (const s of before.sites) {
      const e = after.sites.find((x) => x.anchors.softmax === s.anchors.fused);
      expect(e, `site of ${s.anchors.fused}`).toBeDefined();
      expect(e!.form).toBe('unfused');
      expect({ heads: e!.heads, kvHeads: e!.kvHeads, headDim: e!.headDim, causal: e!.causal, kind: e!.kind })
        .toEqual({ heads: s.heads, kvHeads: s.kvHeads, headDim: s.headDim, causal: s.causal, kind: s.kind });
    }
  });
});
