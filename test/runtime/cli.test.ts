// The runtime commands as a user runs them (in-process through the CLI's `main`, with the worker built from the
// current sources): one JSON object on stdout with `--json`, the contract's fields, one line on stderr for bad input.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { rewriteModel } from '../../src/rewriters/pipeline';
import { cli } from './cli-helpers';
import { fixture, useBuiltWorker } from './helpers';

useBuiltWorker();

function oneJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]) as Record<string, unknown>;
}

it('bench --json gives one entry per model and sequence length with the contract fields', async () => {
  const a = fixture('llama-eager-ts-op17').model;
  const b = fixture('llama-sdpa-ts-op17').model;
  const r = await cli('bench', a, b, '--ep', 'cpu', '--seq', '16,32', '--iters', '3', '--warmup', '1', '--json');
  expect(r.code).toBe(0);
  const results = oneJson(r.stdout).results as Record<string, unknown>[];
  expect(results.map((e) => [e.model, e.seq])).toEqual([[a, 16], [b, 16], [a, 32], [b, 32]]);
  for (const e of results) {
    expect(e.ep).toBe('cpu');
    const lat = e.latencyMs as Record<string, number>;
    for (const k of ['p50', 'p90', 'mean', 'std']) expect(Number.isFinite(lat[k])).toBe(true);
    expect(lat.p50).toBeGreaterThan(0);
    expect(lat.p90).toBeGreaterThanOrEqual(lat.p50);
    const [lo, hi] = (e.latencyMs as unknown as { ci95: [number, number] }).ci95;
    expect(lo).toBeLessThanOrEqual(lat.p50);
    expect(hi).toBeGreaterThanOrEqual(lat.p50);
    expect(e.samplesMs).toHaveLength(3);
    expect(Array.isArray(e.warnings)).toBe(true);
    // Two models: each has its speedup over the first (the first's own is the identity).
    const s = e.speedup as { vsFirst: number; ci95: [number, number]; significant: boolean; vsBaseline: { baseline: string } };
    if (e.model === a) expect(s).toMatchObject({ vsFirst: 1, ci95: [1, 1], significant: false });
    else expect(s.vsFirst).toBeCloseTo((results.find((x) => x.model === a && x.seq === e.seq)!.latencyMs as { p50: number }).p50 / lat.p50, 10);
    expect(s.vsBaseline.baseline).toBe(a);
    expect(e.attentionShare).toBeGreaterThan(0);
    expect(e.attentionShare).toBeLessThan(1);
    expect(e.attentionCoreShare).toBeGreaterThan(0);
    expect(e.attentionCoreShare).toBeLessThan(e.attentionShare as number);
    expect(e.peakRssMB).toBeGreaterThan(10);
    const perSite = (e.profile as { perSite: { share: number }[] }).perSite;
    expect(perSite).toHaveLength(2);
    expect(perSite.reduce((s, p) => s + p.share, 0)).toBeCloseTo(e.attentionShare as number, 10);
  }
});

it('bench --decode times one new token at each past length of a KV-cache model', async () => {
  const r = await cli('bench', fixture('gpt2-past-eager-ts-op17').model, '--decode', '0,32', '--iters', '2', '--warmup', '1', '--profile-runs', '0', '--json');
  expect(r.code).toBe(0);
  const results = oneJson(r.stdout).results as Record<string, unknown>[];
  expect(results.map((e) => [e.seq, e.past])).toEqual([[1, 0], [1, 32]]);
  expect(results.every((e) => e.attentionShare === null)).toBe(true);
});

it('compare --json of a model with itself gives exactly zero', async () => {
  const f = fixture('gpt2-eager-ts-op17');
  const r = await cli('compare', f.model, f.model, '--inputs', f.manifest, '--json');
  expect(r.code).toBe(0);
  const outputs = oneJson(r.stdout).outputs as Record<string, number>[];
  expect(outputs).toHaveLength(1);
  expect(outputs[0]).toMatchObject({ name: 'logits', maxAbsDiff: 0, meanAbsDiff: 0, relativeDiff: 0, cosine: 1 });
});

it('compare of outputs that are all NaN says nothing was compared instead of calling them equal', async () => {
  // torch.nn's key padding mask with every key padded: the softmax over no key gives NaN in both models.
  const model = path.join(__dirname, '..', 'models', 'nnenc-causal-pad-op14.onnx');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'al-nan-'));
  const inputs = path.join(dir, 'all-padded.json');
  fs.writeFileSync(inputs, JSON.stringify({
    x: { dtype: 'float32', shape: [1, 4, 24], data: Array.from({ length: 96 }, (_, i) => Math.sin(i)) },
    pad: { dtype: 'bool', shape: [1, 4], data: [1, 1, 1, 1] },
  }));
  const r = await cli('compare', model, model, '--inputs', inputs, '--json');
  expect(r.code).toBe(0);
  const json = oneJson(r.stdout) as { outputs: Record<string, unknown>[]; warnings: string[] };
  expect(json.outputs[0]).toMatchObject({ name: 'y', nonFinite: 96, maxAbsDiff: null, cosine: null });
  expect(json.warnings.join('\n')).toMatch(/y: 96 of 96 elements are NaN or infinite in one model or both; nothing could be compared/);
  fs.rmSync(dir, { recursive: true, force: true });
});

it("bench feeds a sequence-first model's gather variant the first model's input layout", async () => {
  // The gather form's own analysis cannot trace [sequence, batch] to its blocked scores; fed [batch, sequence], the
  // variant failed in a Reshape (and a blocked window ran on a batch of 20 one-token sequences).
  const model = path.join(__dirname, '..', 'models', 'fairseq-bmm-op13.onnx');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'al-seqfirst-'));
  const variant = path.join(dir, 'block-topk.onnx');
  rewriteModel(model, [{ rule: 'block-topk', params: { block: 8, k: 1, impl: 'gather' } }], variant);
  expect(analyzeModel(variant).model.inputs.map((i) => i.axes)).toEqual([undefined, undefined]);
  const r = await cli('bench', model, variant, '--seq', '20', '--iters', '2', '--warmup', '1', '--json');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const results = oneJson(r.stdout).results as { model: string; seq: number; batch: number }[];
  expect(results.map((e) => [e.model, e.seq, e.batch])).toEqual([[model, 20, 1], [variant, 20, 1]]);
  fs.rmSync(dir, { recursive: true, force: true });
});

it('eval --json gives bits per token and perplexity', async () => {
  const f = fixture('bytelm-llama-trained');
  const r = await cli('eval', f.model, '--tokens', `${f.dir}/eval.bytes`, '--seq', '128', '--windows', '4', '--json');
  expect(r.code).toBe(0);
  const j = oneJson(r.stdout);
  expect(j.windows).toBe(4);
  expect(j.tokensScored).toBe(512);
  expect(j.bitsPerToken).toBeGreaterThan(0.5);
  expect(j.bitsPerToken).toBeLessThan(8);
  expect(j.perplexity).toBeCloseTo(2 ** (j.bitsPerToken as number), 8);
});

it('maps --json prints per-head statistics and the probabilities', async () => {
  const r = await cli('maps', fixture('gpt2-eager-ts-op17').model, '--site', '1', '--seq', '6', '--pattern', 'window 2', '--json');
  expect(r.code).toBe(0);
  const sites = oneJson(r.stdout).sites as { site: number; heads: { recall: number }[]; probabilities: number[][][] }[];
  expect(sites.map((s) => s.site)).toEqual([1]);
  expect(sites[0].heads).toHaveLength(4);
  expect(sites[0].probabilities).toHaveLength(4);
  expect(sites[0].probabilities[0]).toHaveLength(6);
  expect(sites[0].probabilities[0][0].slice(1)).toEqual([0, 0, 0, 0, 0]); // the first query sees only itself
  expect(sites[0].probabilities[0][5].reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
});

it('reports bad input on one line of stderr with a non-zero exit', async () => {
  const missing = await cli('bench', '/nonexistent/model.onnx', '--json');
  expect(missing.code).not.toBe(0);
  expect(missing.stdout).toBe('');
  expect(missing.stderr.trim().split('\n')).toHaveLength(1);

  const badEp = await cli('bench', fixture('gpt2-eager-ts-op17').model, '--ep', 'tpu');
  expect(badEp.code).not.toBe(0);
  expect(badEp.stderr).toMatch(/unknown provider 'tpu'/);
  expect(badEp.stderr.trim().split('\n')).toHaveLength(1);

  const noTokens = await cli('eval', fixture('bytelm-llama-trained').model, '--tokens', '/nonexistent.bytes', '--json');
  expect(noTokens.code).not.toBe(0);
  expect(noTokens.stderr.trim().split('\n')).toHaveLength(1);
  expect(noTokens.stderr).toMatch(/does not exist/);

  const badSite = await cli('maps', fixture('gpt2-eager-ts-op17').model, '--site', '7');
  expect(badSite.code).not.toBe(0);
  expect(badSite.stderr).toMatch(/sites 0\.\.1/);
});

it('refuses a comparison of models with no comparable output', async () => {
  const r = await cli('compare', fixture('gpt2-eager-ts-op17').model, fixture('vit-eager-ts-op17').model, '--json');
  expect(r.code).not.toBe(0);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/nothing to compare: they share no output name/);
});

it('bench reports an image encoder\'s own sequence length, and says a --seq sweep cannot change it', async () => {
  const r = await cli('bench', fixture('vit-eager-ts-op17').model, '--seq', '8', '--iters', '1', '--warmup', '0', '--profile-runs', '0', '--json');
  expect(r.code).toBe(0);
  const j = oneJson(r.stdout) as { results: { seq: number }[]; warnings: string[] };
  expect(j.results[0].seq).toBe(17); // 16 patches and the class token
  expect(j.warnings.some((w) => w.includes('has no sequence input'))).toBe(true);
});

it('maps and compare name the models by the paths as given (relative stays relative)', async () => {
  const rel = path.relative(process.cwd(), fixture('gpt2-eager-ts-op17').model);
  const maps = await cli('maps', rel, '--site', '0', '--seq', '6');
  expect(maps.code).toBe(0);
  expect(maps.stdout.split('\n')[0]).toMatch(new RegExp(`^${rel.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} on cpu`));
  const other = path.relative(process.cwd(), fixture('gpt2-sdpa-ts-op17').model);
  const compare = await cli('compare', rel, other, '--seq', '6');
  expect(compare.code).toBe(0);
  expect(compare.stdout.split('\n')[0].startsWith(`${other} against ${rel}`)).toBe(true);
});
