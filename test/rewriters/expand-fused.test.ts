// `expand` on every fused shared fixture: the written-out model gives the original's outputs (within 1e-4) on the
// manifest's inputs, and the analysis reads the same attention from it (heads, KV heads, head size, causality, kind)
// as a written-out (`unfused`) site whose Softmax carries the fused node's name.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { parseRewriteArgs } from '../../src/cli/rewrite';
import { FUSED_OPS } from '../../src/analysis/attention/fused';
import { attr, GraphBuilder } from '../../src/analysis/ir/builder';
import { ShapeInfo } from '../../src/analysis/ir/shapes';
import { loadModel } from '../../src/analysis/ir/load';
import { refusal } from '../../src/rewriters/expand/expand-fused';
import { fixture, fixtureNames } from '../helpers/fixtures';
import { manifestFeeds } from '../analysis/helpers/ort';
import { floatOutputs, maxAbsDiff, rewriteTo, synthesizedFeeds, tempDir } from './sparse-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = tempDir('expand-fused'); });
afterAll(() => tmp.cleanup());

const fusedFixtures = fixtureNames().filter((name) => analyzeModel(fixture(name).model).sites.some((s) => !!s.anchors.fused));

describe('expand', () => {
  it('is the CLI\'s --expand, before the rules that follow it', () => {
    expect(parseRewriteArgs(['m.onnx', '--expand', '--block-topk', '4,1', '-o', 'o.onnx']).requests)
      .toEqual([{ rule: 'expand', params: {} }, { rule: 'block-topk', params: { block: 4, k: 1 } }]);
  });

  it('covers the fused fixtures named in issue 4', () => {
    for (const f of ['fused-mha', 'fused-gqa', 'fused-onnx23', 'fused-contrib_attention', 'gpt2-sdpa-dynamo-op23']) expect(fusedFixtures).toContain(f);
  });

  it('refuses, with the reason, what it cannot reproduce exactly: rotary inside GroupQueryAttention, a cache in use', () => {
    const model = loadModel(fixture('fused-gqa').model);
    const b = new GraphBuilder(model);
    const gqa = model.graph.nodes.find((n) => n.opType === 'GroupQueryAttention')!;
    expect(refusal(gqa, new ShapeInfo(model.graph))).toBeNull();
    b.setAttribute(gqa, 'do_rotary', attr.int(1));
    expect(refusal(gqa, new ShapeInfo(model.graph))).toMatch(/rotary embedding inside the operator/);
    b.setAttribute(gqa, 'do_rotary', attr.int(0));
    b.setInput(gqa, 3, b.input('past_key', 'float32', [1, 2, 'past', 32]));
    expect(refusal(gqa, new ShapeInfo(model.graph))).toMatch(/reads a KV cache/);
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

describe('block-topk on fused sites (expanded first)', () => {
  it.each(fusedFixtures)('%s: the gather form gives the mask form\'s outputs, and both change the model', async (name) => {
    const { model } = fixture(name);
    // 13 tokens: not a multiple of the block, so the partial last block is exercised too.
    const feeds = synthesizedFeeds(model, 13, 0);
    const mask = rewriteTo(model, [{ rule: 'block-topk', params: { block: 4, k: 1 } }], tmp.dir, `${name}-topk-mask`);
    const gather = rewriteTo(model, [{ rule: 'block-topk', params: { block: 4, k: 1, impl: 'gather' } }], tmp.dir, `${name}-topk-gather`);
    const forms = analyzeModel(model).sites.map((s) => s.form);
    for (const r of [mask, gather]) {
      const changes = r.report.applied[0].changes;
      expect(changes.map((c) => c.after.expandedFrom)).toEqual(forms);
      expect(r.report.warnings).toEqual([]);
    }
    const original = await floatOutputs(model, feeds);
    const a = await floatOutputs(mask.file, feeds);
    const b = await floatOutputs(gather.file, feeds);
    for (const o of Object.keys(original)) {
      expect(maxAbsDiff(a[o], b[o]), o).toBeLessThan(1e-4);
      expect(maxAbsDiff(a[o], original[o]), `${o} changed`).toBeGreaterThan(1e-3);
    }
  });
});

describe('share-attn from a fused source without probability outputs (expanded first)', () => {
  it.each(['fused-mha', 'fused-contrib_attention'])('%s: 0:1 equals expanding everything first, and changes the model', async (name) => {
    const { model, dir, manifest } = fixture(name);
    const feeds = manifestFeeds(dir, manifest.inputs);
    const share = { rule: 'share-attn', params: { pairs: [[0, 1]] } };
    const direct = rewriteTo(model, [share], tmp.dir, `${name}-share`);
    // The reference path: both sites written out by `expand`, then the unfused share-attn.
    const viaExpand = rewriteTo(model, [{ rule: 'expand', params: {} }, share], tmp.dir, `${name}-expand-share`);
    expect(direct.report.applied[0].changes.map((c) => c.site)).toEqual([1]);
    const original = await floatOutputs(model, feeds);
    const a = await floatOutputs(direct.file, feeds);
    const b = await floatOutputs(viaExpand.file, feeds);
    for (const o of Object.keys(original)) {
      expect(maxAbsDiff(a[o], b[o]), o).toBeLessThan(1e-4);
      expect(maxAbsDiff(a[o], original[o]), `${o} changed`).toBeGreaterThan(1e-3);
    }
  });
});
