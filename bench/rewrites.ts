// Benchmark of the compute-reducing rewrites on llama-long-eager-ts-op17 (hidden 512, 8 heads of 64, 2 layers; a
// TorchScript export with eager attention and run-time RoPE) at 4096 tokens: how much of the attention time each
// rewrite removes. "Attention time" is the runtime's attention share (kernel time in the nodes the analysis assigns
// to attention sites: projections, RoPE, scores, softmax, ·V, output projection, and the nodes a rewrite adds, which
// are named after their site) times the median latency (the median, because on a shared machine a single slow run
// moves the mean a lot). Targets from issue 4:
//   window 256 --impl blocked   ≥ 3×   (FLOP bound 8×); since issue 9 `--impl auto`, ≥ 3× against the fused model
//   block-topk 64,8 --impl gather ≥ 2×; since issue 9 against the fused model
//   (and, untargeted, the blocked forms of sink 4, strided 8 and power with window 256)
//   prune-heads of half the heads ≥ 1.6× (rule from the pruning family; skipped with a note when not registered)
// and from issue 9:
//   fuse (exact; GroupQueryAttention on CPU) ≥ 1.8×
// All models are timed in one worker, interleaved run by run, so drift touches them alike.
//
// Each cut is also given on the score path alone (`scorePathCut`: Q·Kᵀ to ·V and the nodes a rule added, without the
// Q/K/V/O projections and the rotary embedding, which no rule here changes): the part the attention FLOP bound counts.
// The targets are judged on the attention time (`meetsTarget`); `meetsTargetOnScorePath` says the same of the score path.
//
// Whole-model speedups (issue 9) are given twice, each a ratio of medians with a paired-bootstrap 95% interval, a
// `significant` flag (the interval excludes 1) and the Amdahl bound against the same reference: over the original,
// and over the best dense baseline, the fastest exact model (the original, or the `fuse` rule's fused kernels when
// that rule is registered). A speedup whose interval lies wholly above its bound is flagged, not counted as a win.
//
// Usage: npm run bench:rewrites [-- --seq 4096 --ep cpu --min-runs 10 --min-time 0 --warmup 1 --profile-runs 2 --only fuse]
//        (--only NAME[,NAME] keeps the original and the variants whose name starts with one of the NAMEs)
//        (--iters N: exactly N timed runs instead of the minimums)
//        (--window W: the window of the window, sink, strided and power variants, 256 by default)
//        (--precision fp16: every model converted to float16 after its rules, the original too, as on CUDA)
//        (--model PATH: another model than the llama-long fixture, e.g. on a machine without ../shared)
// Output: one JSON object on stdout; progress and a summary table on stderr.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { analyzeModel } from '../src/analysis/analyze';
import { type SiteMeasures, siteMeasures } from '../src/analysis/report/site-measures';
import { withReferenceLayout } from '../src/analysis/layout/inherit-axes';
import { getRule } from '../src/rewriters/registry';
import { rewriteModel, type RuleRequest } from '../src/rewriters/pipeline';
import { renderImplChoices } from '../src/cli/rewrite';
import { hasAutoImpl, resolveAutoImpl, type ImplChoice } from '../src/orchestrate/impl-auto';
import { RuntimeClient } from '../src/runtime/client';
import { type BoundScope, type TimedForComparison, compareTimed } from '../src/runtime/measure/trust';
import { type BenchEntry, type BenchRequest, type ExecutionProvider, isExecutionProvider } from '../src/runtime/protocol';
import { profileSites } from '../src/runtime/sites';
import { findFixture } from './fixture';
import { describeMachine } from './machine';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}


interface Variant {
  name: string;
  target: number | null;
  /** What the target's attention cut is measured against (default the original). */
  targetVs?: 'original' | 'best';
  requests: RuleRequest[];
  /** Which measured share its FLOP ratio bounds (trust.ts): sparse rules the score path, pruning whole sites. */
  scope: BoundScope;
  /** Computes exactly what the original computes (a candidate for the dense baseline). */
  exact?: boolean;
}

interface Timed {
  name: string;
  path: string;
  target: number | null;
  targetVs: 'original' | 'best';
  /** Attention FLOPs before / after this model's rewrite (the original: 1). */
  bound: number;
  /** Attention FLOPs of this model (the rewrite report's "after"; the original's "before"). */
  flops: number;
  scope: BoundScope;
  exact: boolean;
  /** Its sites' kernels and projection widths, from its analysis (trust.ts: what its bound may assume). */
  measures?: SiteMeasures;
}

/** How many timed runs: `--iters N` exactly, else until `--min-runs` (10) and `--min-time` ms (0) are both met. */
function stopRule(): Pick<BenchRequest, 'iters' | 'minRuns' | 'minTimeMs'> {
  if (process.argv.includes('--iters')) return { iters: Number(option('iters', '10')) };
  return { minRuns: Number(option('min-runs', '10')), minTimeMs: Number(option('min-time', '0')) };
}

/** A speedup over a reference with the Amdahl bound against that same reference (its score-path share and FLOPs). */
function versus(ref: { e: BenchEntry; m: Timed }, cur: { e: BenchEntry; m: Timed }) {
  const r = forComparison(ref);
  const c = compareTimed(r, ref.e === cur.e ? r : forComparison(cur));
  const s = c.speedup;
  return {
    against: ref.m.name,
    ratio: s.ratio,
    ci95: s.ci95,
    significant: s.significant,
    paired: s.paired,
    attentionFlopBound: cur.m.flops > 0 ? ref.m.flops / cur.m.flops : Infinity,
    modelBound: c.modelBound,
    ...(c.boundNote ? { boundNote: c.boundNote } : {}),
    boundExceeded: c.boundExceeded,
    warning: c.warning,
  };
}

function forComparison(t: { e: BenchEntry; m: Timed }): TimedForComparison {
  return { label: t.m.name, samplesMs: t.e.samplesMs, shares: { attentionShare: t.e.attentionShare, attentionCoreShare: t.e.profile?.attentionCoreShare ?? null, maskBuildShare: t.e.profile?.maskBuildShare ?? null }, flops: t.m.flops, scope: t.m.scope, measures: t.m.measures };
}

async function main(): Promise<void> {
  // --model: another file (the accelerator machine has no ../shared beside the checkout; the fixture is carried).
  const source = option('model', '') || findFixture('llama-long-eager-ts-op17');
  const precision = option('precision', 'fp32');
  if (precision !== 'fp32' && precision !== 'fp16') throw new Error(`--precision: fp32 or fp16, not '${precision}'`);
  const W = Number(option('window', '256'));
  if (!(Number.isInteger(W) && W >= 1)) throw new Error(`--window: a whole number of keys ≥ 1, not '${option('window', '')}'`);
  const fp16 = precision === 'fp16' ? { precision } as const : {};
  const eps = option('ep', 'cpu').split(',');
  if (!eps.every(isExecutionProvider)) throw new Error(`--ep: unknown provider in ${eps.join(',')}`);
  const seq = Number(option('seq', '4096'));
  const stop = stopRule();
  const warmup = Number(option('warmup', '1'));
  const profileRuns = Number(option('profile-runs', '2'));

  const dir = mkdtempSync(join(tmpdir(), 'al-bench-rewrites-'));
  const client = new RuntimeClient();
  const started = performance.now();
  try {
    // In float16 the original is the converted model (float32 inputs and outputs): every model is then compared in the
    // precision it would be deployed in, and the rewrites are converted after their rules the same way.
    const model = precision === 'fp16' ? join(dir, 'original-fp16.onnx') : source;
    if (precision === 'fp16') rewriteModel(source, [], model, { seqLen: seq, ...fp16 });
    const original = analyzeModel(model, { seqLen: seq });
    const half = Object.fromEntries(original.sites.map((s) => [s.id, Array.from({ length: Math.floor((s.heads ?? 0) / 2) }, (_, h) => h)]));
    // Targets: `fuse` against the original; the sparse rules against the best dense baseline (issue 9).
    const variants: Variant[] = [
      { name: `window ${W} --impl auto`, target: 3, targetVs: 'best', scope: 'core', requests: [{ rule: 'window', params: { window: W, impl: 'auto' } }] },
      { name: 'block-topk 64,8 --impl gather', target: 2, targetVs: 'best', scope: 'core', requests: [{ rule: 'block-topk', params: { block: 64, k: 8, impl: 'gather' } }] },
      { name: `sink 4 --window ${W} --impl blocked`, target: null, scope: 'core', requests: [{ rule: 'sink', params: { sink: 4, window: W, impl: 'blocked' } }] },
      { name: `strided 8 --window ${W} --impl blocked`, target: null, scope: 'core', requests: [{ rule: 'strided', params: { stride: 8, window: W, impl: 'blocked' } }] },
      { name: `power --window ${W} --impl blocked`, target: null, scope: 'core', requests: [{ rule: 'power', params: { window: W, impl: 'blocked', rows: 64 } }] },
      { name: 'prune-heads (half of each site: heads 0-3)', target: 1.6, scope: 'site', requests: [{ rule: 'prune-heads', params: { heads: half } }] },
      // The dense baseline candidate: the same attention as the fastest exact fused operator for this provider.
      { name: 'fuse', target: 1.8, scope: 'none', exact: true, requests: [{ rule: 'fuse', params: eps[0] === 'cuda' ? { target: 'cuda' } : {} }] },
    ];
    const only = option('only', '');
    if (only) variants.splice(0, variants.length, ...variants.filter((v) => only.split(',').some((o) => v.name.startsWith(o))));
    const extra = option('variant', '');
    if (extra) variants.push({ name: extra, target: null, scope: 'none', requests: JSON.parse(extra) as RuleRequest[] });

    const notes: string[] = [];
    const originalFlops = original.sites.reduce((n, x) => n + (x.flops ?? 0), 0);
    const models: Timed[] = [{ name: 'original', path: model, target: null, targetVs: 'original', bound: 1, flops: originalFlops, scope: 'none', exact: true }];
    const implChoices: ImplChoice[] = [];
    for (const [i, v] of variants.entries()) {
      const missing = v.requests.find((r) => !getRule(r.rule));
      if (missing) {
        notes.push(`${v.name}: skipped, rule '${missing.rule}' is not registered`);
        continue;
      }
      const out = join(dir, `variant-${i}.onnx`);
      let requests = v.requests;
      if (hasAutoImpl(requests)) {
        // --impl auto: its own interleaved timing of the exact forms, before the main run.
        const auto = await resolveAutoImpl(client, source, requests, { seq, ep: eps[0] as ExecutionProvider, runs: Number(option('auto-runs', '5')), ...fp16, onProgress: (m) => process.stderr.write(`impl auto: ${m}\n`) });
        requests = auto.requests;
        implChoices.push(...auto.choices);
        process.stderr.write(renderImplChoices(auto.choices));
      }
      const t0 = performance.now();
      const rep = rewriteModel(source, requests, out, { seqLen: seq, ...fp16 });
      process.stderr.write(`rewrote ${v.name} in ${Math.round(performance.now() - t0)} ms\n`);
      for (const w of rep.warnings) notes.push(`${v.name}: ${w}`);
      models[0].flops = rep.flopsBefore; // the rewrite report's own count at this length, the same for every variant
      models.push({ name: v.name, path: out, target: v.target, targetVs: v.targetVs ?? 'original', bound: rep.flopsAfter > 0 ? rep.flopsBefore / rep.flopsAfter : Infinity, flops: rep.flopsAfter, scope: v.scope, exact: v.exact ?? false });
    }
    const analyses = models.map((m) => (m.path === model ? original : analyzeModel(m.path, { seqLen: seq })));
    for (const [i, m] of models.entries()) m.measures = siteMeasures(analyses[i].sites);
    const benchModels = models.map((m, i) => ({ path: m.path, sites: profileSites(analyses[i].sites), infos: withReferenceLayout(original.model.inputs, analyses[i].model.inputs) }));
    const r = await client.bench(
      { models: benchModels, settings: { ep: eps as ExecutionProvider[] }, points: [{ seq, past: 0 }], warmup, ...stop, profileRuns },
      { onProgress: (p) => process.stderr.write(`${p.phase} ${Math.round(p.done)}/${Math.round(p.total)} ${p.message ?? ''}\n`) },
    );
    // A measured share of the kernel time, in ms of the median run.
    const msOf = (i: number, share: number | null | undefined) => (share === null || share === undefined ? null : share * r.results[i].latencyMs.p50);
    const attentionMs = (i: number) => msOf(i, r.results[i].attentionShare);
    // The score path alone (src/runtime/sites.ts: Q·Kᵀ to ·V and every node a rule added; no projections or rotary):
    // the part the attention FLOP bound counts.
    const scorePathMs = (i: number) => msOf(i, r.results[i].profile?.attentionCoreShare);
    const base = attentionMs(0);
    const timed = models.map((m, i) => ({ m, e: r.results[i] }));
    const best = timed.filter((t) => t.m.exact).reduce((a, b) => (b.e.latencyMs.p50 < a.e.latencyMs.p50 ? b : a));
    const speedups = timed.map((t) => ({ vsOriginal: versus(timed[0], t), vsBest: versus(best, t) }));
    const bestIndex = timed.indexOf(best);
    const ratio = (b: number | null, a: number | null) => (b !== null && a !== null && a > 0 ? b / a : null);
    const cutVsBest = (i: number) => ratio(attentionMs(bestIndex), attentionMs(i));
    const scorePathCuts = (i: number) => ({ vsOriginal: ratio(scorePathMs(0), scorePathMs(i)), vsBest: ratio(scorePathMs(bestIndex), scorePathMs(i)) });
    process.stderr.write(summary(timed, speedups, best.m.name));
    const x = (v: number | null) => (v === null ? '?' : `${v.toFixed(2)}×`);
    for (const [i, m] of models.entries()) {
      const sp = scorePathCuts(i);
      process.stderr.write(`${m.name.padEnd(44)} attention cut ${x(ratio(base, attentionMs(i)))} vs original, ${x(cutVsBest(i))} vs ${best.m.name}; score path ${x(sp.vsOriginal)}, ${x(sp.vsBest)}\n`);
    }
    process.stdout.write(
      `${JSON.stringify({
        benchmark: 'rewrites',
        // A fixture is its folder's name (its file is model.onnx).
        model: basename(source) === 'model.onnx' ? basename(dirname(source)) : basename(source),
        precision,
        seq,
        machine: describeMachine(),
        settings: { requestedEp: eps, warmup, ...stop, profileRuns },
        loadAverage: loadavg(),
        otherCpuShare: r.results[0].otherCpuShare,
        bestDenseBaseline: best.m.name,
        implChoices,
        results: models.map((m, i) => {
          const e = r.results[i];
          const att = attentionMs(i);
          const cut = base !== null && att !== null && att > 0 ? base / att : null;
          return {
            variant: m.name,
            ep: e.ep,
            latencyMs: {
              p50: e.latencyMs.p50, ci95: e.latencyMs.ci95, p90: e.latencyMs.p90, min: e.latencyMs.min, mean: e.latencyMs.mean, std: e.latencyMs.std,
              runs: e.latencyMs.n, outliers: e.latencyMs.outliers,
            },
            speedup: {
              vsOriginal: withoutWarning(speedups[i].vsOriginal),
              vsBest: withoutWarning(speedups[i].vsBest),
            },
            warnings: [...e.timingWarnings, ...[speedups[i].vsOriginal.warning, speedups[i].vsBest.warning].filter((w): w is string => w !== null)],
            attentionShare: e.attentionShare,
            attentionCoreShare: e.profile?.attentionCoreShare ?? null,
            maskBuildShare: e.profile?.maskBuildShare ?? null,
            attentionMs: att,
            // Other load only ever adds time: the fastest run is a second, load-robust view.
            attentionMsFromMin: e.attentionShare === null ? null : e.attentionShare * e.latencyMs.min,
            attentionCutFromMin: base === null || e.attentionShare === null ? null : (r.results[0].attentionShare! * r.results[0].latencyMs.min) / (e.attentionShare * e.latencyMs.min),
            attentionCut: cut,
            attentionCutVsBest: cutVsBest(i),
            scorePathMs: scorePathMs(i),
            scorePathCut: scorePathCuts(i),
            flopBound: m.bound,
            target: m.target,
            targetVs: m.targetVs,
            meetsTarget: targetMet(m, cut, cutVsBest(i)),
            meetsTargetOnScorePath: targetMet(m, scorePathCuts(i).vsOriginal, scorePathCuts(i).vsBest),
            topOps: e.profile?.byOpType.slice(0, 6).map((o) => ({ op: o.op, ms: o.kernelMs })) ?? [],
            peakRssMB: e.peakRssMB,
          };
        }),
        notes,
        totalSeconds: (performance.now() - started) / 1000,
      })}\n`,
    );
  } finally {
    await client.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Whether the attention cut reaches the target, against the reference the target names. */
function targetMet(m: Timed, cut: number | null, cutVsBest: number | null): boolean | null {
  const c = m.targetVs === 'best' ? cutVsBest : cut;
  return m.target === null || c === null ? null : c >= m.target;
}

function withoutWarning<T extends { warning: string | null }>(v: T): Omit<T, 'warning'> {
  const { warning: _, ...rest } = v;
  return rest;
}

type Versus = ReturnType<typeof versus>;

/** The speedups for people: "1.84× [1.79–1.90]", "≈1" when indistinguishable from 1, "!" above the bound. */
function summary(timed: { m: Timed; e: BenchEntry }[], speedups: { vsOriginal: Versus; vsBest: Versus }[], best: string): string {
  const d = (x: number) => (Number.isFinite(x) ? x.toFixed(x >= 10 ? 1 : 2) : '∞');
  const cell = (v: Versus) => `${d(v.ratio)}× [${d(v.ci95[0])}–${d(v.ci95[1])}]${v.boundExceeded ? ' ! above bound' : v.significant ? '' : ' ≈1'} (bound ${v.modelBound !== null ? `${d(v.modelBound)}×` : 'boundNote' in v ? 'none: other kernels' : '?'})`;
  const lines = timed.map((t, i) => {
    const l = t.e.latencyMs;
    return `${t.m.name.padEnd(44)} p50 ${d(l.p50)} ms [${d(l.ci95[0])}–${d(l.ci95[1])}] (${l.n} runs)  vs original ${cell(speedups[i].vsOriginal)}  vs ${best} ${cell(speedups[i].vsBest)}`;
  });
  return `${lines.join('\n')}\n`;
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:rewrites: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
