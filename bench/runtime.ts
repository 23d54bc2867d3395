// Benchmark: llama-long-eager-ts-op17 (hidden 512, 8 heads of 64, 2 layers; a real TorchScript export whose rotary
// embedding is computed at run time) on CPU at 512, 2048 and 4096 tokens: latency, throughput, the worker's peak
// memory, and attention's share of kernel time from onnxruntime's profiler, mapped to the analysis' sites.
//
// Usage: npm run bench:runtime [-- --ep cuda --seq 512,2048,4096 --iters 5 --warmup 1 --profile-runs 2]
// Output: one JSON object on stdout; progress on stderr.
import { analyzeModel } from '../src/analysis/analyze';
import { RuntimeClient } from '../src/runtime/client';
import { type ExecutionProvider, isExecutionProvider } from '../src/runtime/protocol';
import { profileSites } from '../src/runtime/sites';
import { findFixture } from './fixture';
import { describeMachine } from './machine';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}


async function main(): Promise<void> {
  const model = findFixture('llama-long-eager-ts-op17');
  const eps = option('ep', 'cpu').split(',');
  if (!eps.every(isExecutionProvider)) throw new Error(`--ep: unknown provider in ${eps.join(',')}`);
  const seqs = option('seq', '512,2048,4096').split(',').map(Number);
  const iters = Number(option('iters', '5'));
  const warmup = Number(option('warmup', '1'));
  const profileRuns = Number(option('profile-runs', '2'));

  const report = analyzeModel(model);
  const client = new RuntimeClient();
  const started = performance.now();
  try {
    const r = await client.bench(
      {
        models: [{ path: model, sites: profileSites(report.sites), infos: report.model.inputs }],
        settings: { ep: eps as ExecutionProvider[] },
        points: seqs.map((seq) => ({ seq, past: 0 })),
        warmup,
        iters,
        profileRuns,
      },
      { onProgress: (p) => process.stderr.write(`${p.phase} ${Math.round(p.done)}/${Math.round(p.total)} ${p.message ?? ''}\n`) },
    );
    process.stdout.write(
      `${JSON.stringify({
        benchmark: 'runtime',
        model: 'llama-long-eager-ts-op17',
        machine: describeMachine(),
        settings: { requestedEp: eps, warmup, iters, profileRuns },
        sites: report.sites.length,
        results: r.results.map((e) => ({
          seq: e.seq,
          ep: e.ep,
          providerWarnings: e.provider.warnings,
          latencyMs: { p50: e.latencyMs.p50, ci95: e.latencyMs.ci95, p90: e.latencyMs.p90, mean: e.latencyMs.mean, std: e.latencyMs.std, runs: e.latencyMs.n },
          warnings: e.timingWarnings,
          tokensPerSecond: e.tokensPerSecond,
          attentionShare: e.attentionShare,
          attentionCoreShare: e.profile?.attentionCoreShare ?? null,
          perSite: e.profile?.perSite.map((s) => ({ site: s.site, share: s.share, coreShare: s.coreShare })) ?? [],
          topOps: e.profile?.byOpType.slice(0, 5).map((o) => ({ op: o.op, share: o.share })) ?? [],
          peakRssMB: e.peakRssMB,
          sessionCreateMs: e.sessionCreateMs,
        })),
        totalSeconds: (performance.now() - started) / 1000,
      })}\n`,
    );
  } finally {
    await client.dispose();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:runtime: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
