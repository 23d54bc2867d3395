// `expand` on every fused shared fixture: the written-out model gives the original's outputs (within 1e-4) on the
// manifest's inputs, and the analysis reads the same attention from it (heads, KV heads, head size, causality, kind)
// as a written-out (`unfused`) site whose Softmax carries the fused node's name.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { parseRewriteArgs } from '../../src/cli/rewrite';
import { FUSED_OPS, ROTARY_INSIDE } from '../../src/analysis/attention/fused';
import { saveModel } from '../../src/analysis/ir/save';
import { expandSkipReason } from '../../src/rewriters/expand/expand-rule';
import * as path from 'node:path';
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

  it('skips a site only when its operator rotates Q and K itself; a rotation before the operator (fuse\'s) expands', async () => {
    // do_rotary on GroupQueryAttention: the report says so, and a rule that needs the written-out site skips it.
    const model = loadModel(fixture('fused-gqa').model);
    const b = new GraphBuilder(model);
    for (const n of model.graph.nodes.filter((x) => x.opType === 'GroupQueryAttention')) b.setAttribute(n, 'do_rotary', attr.int(1));
    const file = path.join(tmp.dir, 'gqa-do-rotary.onnx');
    saveModel(b.finish(), file);
    const sites = analyzeModel(file).sites;
    expect(sites.every((s) => s.notes.includes(ROTARY_INSIDE))).toBe(true);
    expect(sites.map(expandSkipReason)).toEqual(sites.map(() => 'com.microsoft.GroupQueryAttention: its rotary embedding is applied inside the operator'));
    // `fuse` puts the rotation before GroupQueryAttention (RotaryEmbedding): block-topk expands the site again and
    // computes what it computes on the original.
    const llama = fixture('llama-eager-ts-op17');
    const fused = rewriteTo(llama.model, [{ rule: 'fuse', params: {} }], tmp.dir, 'llama-fused-rope');
    const fusedSites = analyzeModel(fused.file).sites;
    expect(fusedSites.every((s) => s.position === 'rope' && expandSkipReason(s) === null)).toBe(true);
    const step = { rule: 'block-topk', params: { block: 4, k: 1, impl: 'gather' } };
    const after = rewriteTo(fused.file, [step], tmp.dir, 'llama-fused-topk');
    expect(loadModel(after.file).graph.nodes.some((n) => n.opType === 'RotaryEmbedding')).toBe(true);
    const direct = rewriteTo(llama.model, [step], tmp.dir, 'llama-topk');
    const feeds = manifestFeeds(llama.dir, llama.manifest.inputs);
    const [a, c] = [await floatOutputs(direct.file, feeds), await floatOutputs(after.file, feeds)];
    for (const o of Object.keys(a)) expect(maxAbsDiff(c[o], a[o]), o).toBeLessThan(1e-4);
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
