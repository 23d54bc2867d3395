// `fuse` on every shared fixture with written-out attention: each self-attention (and cross-attention) site becomes a
// fused operator, read back as such by the analysis with the same heads, KV heads, head size, causality and kind; the
// fused model gives the original's outputs and the manifest's (PyTorch) outputs within 1e-4, KV-cache outputs
// included, on the manifest's inputs and on a padded batch of two. The torch.nn fixtures that fold heads into the
// batch are re-laid out by the pipeline first and fused like the others.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { FUSED_OPS } from '../../src/analysis/attention/fused';
import { loadModel } from '../../src/analysis/ir/load';
import { parseRewriteArgs } from '../../src/cli/rewrite';
import { chooseOp } from '../../src/rewriters/fuse/choose';
import { RuleError } from '../../src/rewriters/rule';
import { fixture, fixtureNames } from '../helpers/fixtures';
import { manifestFeeds, runModel } from '../analysis/helpers/ort';
import { paddedBatchFeeds, softcappedAttention } from './fuse-helpers';
import { floatOutputs, maxAbsDiff, rewriteTo, tempDir } from './sparse-helpers';
import * as ort from 'onnxruntime-node';
import { Rng } from '../../src/analysis/numeric/random';
import * as path from 'node:path';
import { saveModel } from '../../src/analysis/ir/save';
import { buildAttentionVariant } from '../analysis/attention-variants';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = tempDir('fuse'); });
afterAll(() => tmp.cleanup());

const written = (form: string) => form === 'unfused' || form === 'sdpa-decomposed';
const candidates = fixtureNames().filter((name) => analyzeModel(fixture(name).model).sites.some((s) => written(s.form)));

// Every fixture with written-out attention, torch.nn's heads-in-batch layouts included (the pipeline re-lays them
// out first).
const fusable = candidates;

/**
 * Exports that onnxruntime's optimizer gave a com.microsoft RotaryEmbedding reading position_ids [1, S]: the original
 * model fails at batch 2, fused or not.
 */
const BATCH_ONE_ONLY: Record<string, RegExp> = {
  'llama-eager-ts-op17-ortfused': /position_ids' dimension 0 should be of size batch_size/,
  'llama-sdpa-ts-op17-ortfused': /position_ids' dimension 0 should be of size batch_size/,
};

const isFused = (form: string) => FUSED_OPS.has(form);

describe('fuse: command line', () => {
  it('is --fuse, with its target and operator as modifiers in any order', () => {
    expect(parseRewriteArgs(['m.onnx', '--fuse', '-o', 'o.onnx']).requests).toEqual([{ rule: 'fuse', params: {} }]);
    expect(parseRewriteArgs(['m.onnx', '--fuse-op', 'MultiHeadAttention', '--fuse', '--fuse-target', 'cuda', '-o', 'o.onnx']).requests)
      .toEqual([{ rule: 'fuse', params: { target: 'cuda', op: 'MultiHeadAttention' } }]);
    expect(() => parseRewriteArgs(['m.onnx', '--fuse', '--fuse-target', 'tpu', '-o', 'o.onnx'])).toThrow(/--fuse-target\): one of cpu, cuda/);
    expect(() => parseRewriteArgs(['m.onnx', '--fuse-op', 'Attention', '--window', '4', '-o', 'o.onnx'])).toThrow(/--fuse-op goes with --fuse/);
  });
});

describe('fuse on the shared fixtures', () => {
  it('covers the written-out fixtures: every eager and SDPA export, torch.nn and timm ones included', () => {
    expect(fusable.length).toBeGreaterThanOrEqual(20);
    for (const f of ['llama-eager-ts-op17', 'llama-past-sdpa-ts-op17', 'gpt2-past-eager-ts-op17', 'bart-sdpa-ts-op17', 'vit-eager-ts-op17', 'bert-sdpa-ts-op17-ortfused', 'llama-long-eager-ts-op17', 'timmstyle-vit-op12', 'nnmha-decoder-op14', 'nntransformer-seq2seq-op11']) {
      expect(fusable).toContain(f);
    }
  });

  it.each(fusable)('%s: every site fused, same attention read back, outputs within 1e-4 of the original and of PyTorch', async (name) => {
    const { model, dir, manifest } = fixture(name);
    const before = analyzeModel(model);
    const { file, report } = rewriteTo(model, [{ rule: 'fuse', params: {} }], tmp.dir, name);
    // Nothing refused; the only notes are the exact preparations (another layout re-laid out, an older opset raised).
    expect(report.warnings.filter((w) => !/standard layout first|opset was raised/.test(w))).toEqual([]);

    const after = analyzeModel(file);
    expect(after.sites.map((s) => s.form).every(isFused), after.sites.map((s) => s.form).join(', ')).toBe(true);
    expect(after.sites.length).toBe(before.sites.length);
    for (const s of before.sites) {
      // The operator carries the Softmax's name, so the site keeps its anchor.
      const f = after.sites.find((x) => x.anchors.fused === s.anchors.softmax);
      expect(f, `site of ${s.anchors.softmax}`).toBeDefined();
      expect({ heads: f!.heads, headDim: f!.headDim, kind: f!.kind }).toEqual({ heads: s.heads, headDim: s.headDim, kind: s.kind });
      // GroupQueryAttention is causal by definition; MultiHeadAttention carries causality in its attention_bias.
      if (f!.form === 'com.microsoft.GroupQueryAttention') expect(s.causal).toBe(true);
    }
    // Grouped KV heads survive where the operator takes them (GroupQueryAttention); MultiHeadAttention gets them repeated.
    const gqa = after.sites.filter((s) => s.form === 'com.microsoft.GroupQueryAttention');
    for (const s of gqa) expect(s.kvHeads).toBe(before.sites.find((b) => b.anchors.softmax === s.anchors.fused)!.kvHeads);

    const feeds = manifestFeeds(dir, manifest.inputs);
    const original = await floatOutputs(model, feeds);
    const fused = await floatOutputs(file, feeds);
    const torch = manifestFeeds(dir, manifest.outputs);
    for (const o of Object.keys(original)) {
      expect(maxAbsDiff(fused[o], original[o]), `${o} vs the original`).toBeLessThan(1e-4);
      if (torch[o]?.type === 'float32') expect(maxAbsDiff(fused[o], torch[o].data as Float32Array), `${o} vs PyTorch`).toBeLessThan(1e-4);
    }
  });

  it.each(Object.keys(BATCH_ONE_ONLY))('%s: the original itself runs at batch 1 only (so it has no padded-batch check)', async (name) => {
    const { model, dir, manifest } = fixture(name);
    await expect(runModel(model, paddedBatchFeeds(dir, manifest.inputs, 3))).rejects.toThrow(BATCH_ONE_ONLY[name]);
  });

  it.each(fusable.filter((n) => !BATCH_ONE_ONLY[n] && fixture(n).manifest.inputs.some((i) => /mask/i.test(i.name))))(
    '%s: a batch of two with a right-padded row gives the original\'s outputs',
    async (name) => {
      const { model, dir, manifest } = fixture(name);
      const { file } = rewriteTo(model, [{ rule: 'fuse', params: {} }], tmp.dir, `${name}-padded`);
      const feeds = paddedBatchFeeds(dir, manifest.inputs, 3);
      const original = await floatOutputs(model, feeds);
      const fused = await floatOutputs(file, feeds);
      for (const o of Object.keys(original)) expect(maxAbsDiff(fused[o], original[o]), o).toBeLessThan(1e-4);
    },
  );

  it('skips fused sites with the reason, and fuses the written-out ones next to them', () => {
    // The expanded fused-mha has written-out sites; site 1 expanded and site 0 left fused, fuse takes only site 1.
    const { model } = fixture('fused-mha');
    const r = rewriteTo(model, [{ rule: 'expand', params: {}, sites: [1] }, { rule: 'fuse', params: {}, sites: [0, 1] }], tmp.dir, 'fused-mha-mixed');
    expect(r.report.warnings).toEqual(['fuse: site 0 skipped: it is already the fused operator com.microsoft.MultiHeadAttention']);
    expect(r.report.applied[1].changes.map((c) => [c.site, c.after.form])).toEqual([[1, 'com.microsoft.MultiHeadAttention']]);
  });
});

describe('fuse: operator choice', () => {
  it('on CPU: GroupQueryAttention for causal self-attention, MultiHeadAttention for the rest and for KV caches', () => {
    const forms = (name: string) => {
      const r = rewriteTo(fixture(name).model, [{ rule: 'fuse', params: {} }], tmp.dir, `${name}-forms`);
      return r.report.applied[0].changes.map((c) => String(c.after.form).replace('com.microsoft.', ''));
    };
    expect(forms('llama-sdpa-ts-op17')).toEqual(['GroupQueryAttention', 'GroupQueryAttention']);
    expect(forms('bert-eager-ts-op17')).toEqual(['MultiHeadAttention', 'MultiHeadAttention']);
    expect(forms('llama-past-eager-ts-op17')).toEqual(['MultiHeadAttention', 'MultiHeadAttention']);
    // BART: encoder self, encoder self, then per decoder layer a causal self-attention and a cross-attention.
    expect(forms('bart-eager-ts-op17')).toEqual(['MultiHeadAttention', 'MultiHeadAttention', 'GroupQueryAttention', 'MultiHeadAttention', 'GroupQueryAttention', 'MultiHeadAttention']);
  });

  it("counts GroupQueryAttention's causal work only (its kernels stop at the diagonal), the other operators' all of it", () => {
    const changes = (name: string, params: Record<string, string> = {}) =>
      rewriteTo(fixture(name).model, [{ rule: 'fuse', params }], tmp.dir, `${name}-flops-${params.target ?? 'cpu'}`).report.applied[0].changes;
    // BART at the rewrite's default 1024 tokens: its causal decoder self-attention becomes GroupQueryAttention.
    for (const c of changes('bart-eager-ts-op17')) {
      const s = 1024;
      const expected = String(c.after.form).endsWith('GroupQueryAttention') ? (c.flopsBefore! * (s + 1)) / (2 * s) : c.flopsBefore!;
      expect(c.flopsAfter, String(c.after.form)).toBeCloseTo(expected, -3);
    }
    // The same causal sites as MultiHeadAttention (for CUDA) compute every key: no change.
    for (const c of changes('llama-sdpa-ts-op17', { target: 'cuda' })) expect(c.flopsAfter).toBe(c.flopsBefore);
  });

  it('for CUDA, or when asked: MultiHeadAttention with the grouped K/V heads repeated, same outputs', async () => {
    const { model, dir, manifest } = fixture('llama-eager-ts-op17');
    for (const params of [{ target: 'cuda' }, { op: 'MultiHeadAttention' }]) {
      const r = rewriteTo(model, [{ rule: 'fuse', params }], tmp.dir, `llama-mha-${params.target ?? params.op}`);
      expect(r.report.applied[0].changes.map((c) => [c.after.form, c.after.kvHeads])).toEqual([['com.microsoft.MultiHeadAttention', 4], ['com.microsoft.MultiHeadAttention', 4]]);
      const feeds = manifestFeeds(dir, manifest.inputs);
      const a = await floatOutputs(model, feeds);
      const b = await floatOutputs(r.file, feeds);
      expect(maxAbsDiff(b.logits, a.logits)).toBeLessThan(1e-4);
    }
  });

  it('refuses GroupQueryAttention where it would change the result, and says why', () => {
    const run = (name: string) => () => rewriteTo(fixture(name).model, [{ rule: 'fuse', params: { op: 'GroupQueryAttention' } }], tmp.dir, `${name}-gqa`);
    expect(run('bert-eager-ts-op17')).toThrow(/GroupQueryAttention: it is causal only, and this site is not causal/);
    expect(run('gpt2-past-eager-ts-op17')).toThrow(/GroupQueryAttention: with a KV cache and more than one new token onnxruntime accepts only batch 1/);
    expect(() => rewriteTo(fixture('bert-eager-ts-op17').model, [{ rule: 'fuse', params: { op: 'Attention' } }], tmp.dir, 'bert-onnx-attn'))
      .toThrow(/Attention: the model's opset is 17; ONNX Attention needs 23/);
    // onnxruntime's kernel refuses other head sizes at run time; auto takes MultiHeadAttention for them.
    const heads4 = { causal: true, kind: 'self' as const, cache: false, heads: 8, kvHeads: 8, headDim: 4, vHeadDim: 4, opset: 17 };
    expect(chooseOp('cpu', 'GroupQueryAttention', heads4)).toEqual({ reason: "GroupQueryAttention: its kernel takes head sizes that are a multiple of 8; this site's is 4" });
    expect(chooseOp('cpu', 'auto', heads4)).toEqual({ op: 'MultiHeadAttention' });
  });

  it('ONNX Attention in an opset-23 model: the dynamo exports, expanded, fuse back exactly', async () => {
    for (const name of ['gpt2-sdpa-dynamo-op23', 'vit-sdpa-dynamo-op23']) {
      const { model, dir, manifest } = fixture(name);
      const feeds = manifestFeeds(dir, manifest.inputs);
      const original = await floatOutputs(model, feeds);
      for (const op of ['Attention', 'auto'] as const) {
        const r = rewriteTo(model, [{ rule: 'expand', params: {} }, { rule: 'fuse', params: { op } }], tmp.dir, `${name}-${op}`);
        const want = op === 'Attention' ? 'onnx.Attention' : name.startsWith('gpt2') ? 'com.microsoft.GroupQueryAttention' : 'com.microsoft.MultiHeadAttention';
        expect(analyzeModel(r.file).sites.map((s) => s.form)).toEqual([want, want]);
        const got = await floatOutputs(r.file, feeds);
        for (const o of Object.keys(original)) expect(maxAbsDiff(got[o], original[o]), `${name} ${op} ${o}`).toBeLessThan(1e-4);
      }
    }
  });
});

describe('fuse: soft-capping', () => {
  const shape = { heads: 4, dim: 16, softcap: 5 };
  const feeds = () => {
    const rng = new Rng(7);
    const t = () => new ort.Tensor('float32', Float32Array.from({ length: 4 * 11 * 16 }, () => 3 * rng.normal()), [1, 4, 11, 16]);
    return { q: t(), k: t(), v: t() };
  };

  it('a causal soft-capped site becomes GroupQueryAttention with softcap, same outputs', async () => {
    const file = softcappedAttention(tmp.dir, { ...shape, causal: true, opset: 17 }, 'capped-causal');
    const r = rewriteTo(file, [{ rule: 'fuse', params: {} }], tmp.dir, 'capped-causal-fused');
    expect(r.report.applied[0].changes[0].after).toMatchObject({ form: 'com.microsoft.GroupQueryAttention', softcap: 5 });
    const gqa = loadModel(r.file).graph.nodes.find((n) => n.opType === 'GroupQueryAttention')!;
    expect(gqa.attr('softcap')?.f).toBeCloseTo(5, 6);
    const f = feeds();
    const a = await runModel(file, f);
    const b = await runModel(r.file, f);
    expect(maxAbsDiff(b.out.data as Float32Array, a.out.data as Float32Array)).toBeLessThan(1e-4);
  });

  it('a bidirectional soft-capped site: refused at opset 17 (no contrib operator does it), ONNX Attention at opset 23', async () => {
    const old = softcappedAttention(tmp.dir, { ...shape, causal: false, opset: 17 }, 'capped-bidir-17');
    expect(() => rewriteTo(old, [{ rule: 'fuse', params: {} }], tmp.dir, 'capped-bidir-17-fused'))
      .toThrow(/site 0 \(unfused\) not fused: GroupQueryAttention: it is causal only.*Attention: the model's opset is 17/);
    const file = softcappedAttention(tmp.dir, { ...shape, causal: false, opset: 23 }, 'capped-bidir-23');
    const r = rewriteTo(file, [{ rule: 'fuse', params: {} }], tmp.dir, 'capped-bidir-23-fused');
    expect(r.report.applied[0].changes[0].after).toMatchObject({ form: 'onnx.Attention', softcap: 5 });
    const f = feeds();
    const a = await runModel(file, f);
    const b = await runModel(r.file, f);
    expect(maxAbsDiff(b.out.data as Float32Array, a.out.data as Float32Array)).toBeLessThan(1e-4);
  });
});

describe('fuse: a scale computed at run time', () => {
  // TorchScript's SDPA decomposition when Q's size is read at run time: 1/sqrt(64) from float division, its square
  // root on Q and on Kᵀ. Those factors are not constants, so they stay on the fused operator's Q and K, and its own
  // scale is 1: the product is the same.
  it('stays on Q and K: same outputs', async () => {
    const file = path.join(tmp.dir, 'runtime-sdpa.onnx');
    saveModel(buildAttentionVariant({ hidden: 256, heads: 4, scores: 'runtime-sdpa' }), file);
    const r = rewriteTo(file, [{ rule: 'fuse', params: {} }], tmp.dir, 'runtime-sdpa-fused');
    const op = loadModel(r.file).graph.nodes.find((n) => isFused(`${n.domain || 'onnx'}.${n.opType}`))!;
    expect(op.attr('scale')?.f).toBe(1);
    const rng = new Rng(3);
    const x = new ort.Tensor('float32', Float32Array.from({ length: 9 * 256 }, () => rng.normal()), [1, 9, 256]);
    const [a, b] = [await runModel(file, { x }), await runModel(r.file, { x })];
    const out = Object.keys(a)[0];
    expect(maxAbsDiff(b[out].data as Float32Array, a[out].data as Float32Array)).toBeLessThan(1e-4);
  });
});
