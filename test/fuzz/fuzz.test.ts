// The fuzz campaign of the suite: 300 mutants of the shared fixtures, byte-level and structure-aware, each run through
// load + analyze, a rewrite (rules, invariants, save) whose output must load again, and for every 15th mutant
// `attention-lens analyze` end to end. Every mutant must end in success or a one-line user error: no other exception
// type, no multi-line or empty message, no hang, no runaway memory, no file written or changed where it should not be.
// A failure lists the seed that reproduces it: `npm run fuzz -- --replay FIXTURE:SEED`.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignTmpRoot, planJobs, summarize, type Summary } from '../../fuzz/campaign';
import { runJobs } from '../../fuzz/pool';
import { fixture } from '../helpers/fixtures';
import { bundleFuzz } from './bundle';

// Small and medium fixtures of every family: exporters, torch.nn, timm-style, fused operators, a KV cache, ViT.
const FIXTURES = [
  'nntransformer-seq2seq-op11', 'nnmha-seqfirst-padmask-op13', 'nnmha-cross-kvdim-op14', 'timmstyle-vit-op12',
  'fused-gqa', 'fused-mha', 'fused-contrib_attention', 'fused-onnx23', 'bert-eager-ts-op17', 'gpt2-past-sdpa-ts-op17',
  'llama-sdpa-ts-op17', 'vit-sdpa-dynamo-op23', 'bart-sdpa-ts-op17',
];
const MUTANTS = 300;
const SEED = 1;

let bundle: Awaited<ReturnType<typeof bundleFuzz>>;
beforeAll(async () => { bundle = await bundleFuzz(); });
afterAll(() => bundle?.cleanup());

function describeFailures(s: Summary): string {
  return s.failures
    .map((f) => `${f.fixture}:${f.seed} ${f.outcome} at ${f.failure?.stage}: ${f.failure?.reason}: ${f.failure?.message}\n` +
      `  mutations: ${f.mutations.join('; ')}\n  replay: ${f.replay}`)
    .join('\n');
}

describe('fuzzing the model entry points', () => {
  it(`${MUTANTS} mutants end in success or a one-line user error`, async () => {
    const tmpRoot = campaignTmpRoot();
    const started = Date.now();
    try {
      const jobs = planJobs({
        fixtures: FIXTURES.map((name) => ({ name, model: fixture(name).model })),
        count: MUTANTS, seed: SEED, tmpRoot, cliEvery: 15, cliFile: bundle.cliFile, rewriteEvery: 1,
      });
      const results = await runJobs(jobs, {
        workerFile: bundle.workerFile,
        concurrency: Math.max(1, Math.min(2, os.availableParallelism())),
        // Generous for a loaded 2-core machine (a 30,000-node chain takes a few seconds); a real hang never ends.
        timeoutMs: 60_000,
        heapMb: 2048,
        rssLimitMb: 2048,
      });
      const summary = summarize(results, SEED, (Date.now() - started) / 1000);
      expect(summary.mutants).toBe(MUTANTS);
      expect(summary.failures, describeFailures(summary)).toEqual([]);
      // Not vacuous: the mutants reach every stage, and both outcomes occur in numbers.
      expect(summary.outcomes.success).toBeGreaterThan(MUTANTS / 10);
      expect(summary.outcomes['user-error']).toBeGreaterThan(MUTANTS / 10);
      expect(summary.rewrite.ok ?? 0).toBeGreaterThan(10);
      expect((summary.cli['exit 0'] ?? 0) + (summary.cli['exit 1'] ?? 0)).toBe(MUTANTS / 15);
      // The mutants' folders are gone, and nothing was left next to the fixtures.
      expect(fs.existsSync(tmpRoot) ? fs.readdirSync(tmpRoot) : []).toEqual([]);
    } finally {
      fs.rmSync(tmpRoot, { recursive: true, force: true });
    }
  }, 600_000);
});
