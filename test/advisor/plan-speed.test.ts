// The advisor's speed step (`plan --bench-seq L`, orchestrate/advisor/speed.ts) on a small causal model: each frontier
// plan's blocked form timed with the original and the fused model in one interleaved bench run. The checks are on
// structure and consistency, never on how fast anything is: speedups are ratios of the medians, the baseline is the
// faster exact model, intervals are ordered, `significant` says the interval excludes 1, the verdict follows the
// bound. A plan at density 1 is all dense heads, so its blocked form is the original again (an A/A pair): its
// attention FLOPs and its bound equal the original's.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AdviceResult } from '../../src/orchestrate/advisor/advisor';
import type { SpeedVs, TimedModel } from '../../src/orchestrate/advisor/speed';
import { cli } from '../runtime/cli-helpers';
import { fixture, useBuiltWorker } from '../runtime/helpers';

useBuiltWorker();

const MODEL = fixture('llama-eager-ts-op17').model;
const TOKENS = join(fixture('bytelm-llama-trained').dir, 'eval.bytes');
const SMALL = ['--seq', '64', '--eval-windows', '4', '--calib-windows', '2', '--importance-windows', '1', '--no-baselines'];

/** `plan ... --json`: it must succeed with nothing on stderr; its result. */
async function planJson(...argv: string[]): Promise<AdviceResult> {
  const r = await cli('plan', ...argv, '--json');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as AdviceResult;
}

function checkVs(v: SpeedVs, reference: TimedModel, model: TimedModel): void {
  expect(v.against).toBe(reference.label);
  expect(v.ratio).toBeCloseTo(reference.latencyMs.p50 / model.latencyMs.p50, 12);
  expect(v.ci95[0]).toBeLessThanOrEqual(v.ci95[1]);
  expect(v.significant).toBe(v.ci95[0] > 1 || v.ci95[1] < 1);
  expect(v.paired).toBe(true);
  expect(v.boundExceeded).toBe(v.modelBound !== null && v.ci95[0] > v.modelBound);
  const expected = v.boundExceeded ? 'bound-exceeded' : !v.significant ? 'indistinguishable' : v.ratio > 1 ? 'faster' : 'slower';
  expect(v.verdict).toBe(expected);
}

function checkLatency(t: TimedModel, runs: number): void {
  const l = t.latencyMs;
  expect(l.runs).toBe(runs);
  expect(l.min).toBeGreaterThan(0);
  expect(l.min).toBeLessThanOrEqual(l.p50);
  expect(l.p50).toBeLessThanOrEqual(l.p90);
  expect(l.ci95[0]).toBeLessThanOrEqual(l.ci95[1]);
}

describe('plan --bench-seq', () => {
  it('times the blocked plans against the original and the fused model, with consistent statistics', async () => {
    const result = await planJson(MODEL, '--tokens', TOKENS, ...SMALL, '--budget', 'density=0.25', '--frontier', '1',
      '--bench-seq', '256', '--iters', '4', '--warmup', '1', '--profile-runs', '1');
    const s = result.speed!;
    expect(s.seq).toBe(256);
    expect(s.inputs).toMatch(/synthesized .* 256 tokens/);
    expect(s.settings).toEqual(expect.objectContaining({ seq: 256, iters: 4, warmup: 1, profileRuns: 1 }));
    expect(result.timings.speedMs).toBeGreaterThan(0);
    const fused = s.fused!;
    expect(fused).not.toBeNull();
    for (const t of [s.original, fused]) checkLatency(t, 4);
    // The baseline is the faster exact model by median.
    const best = fused.latencyMs.p50 < s.original.latencyMs.p50 ? fused : s.original;
    expect(s.baseline).toBe(best.label);
    checkVs(fused.vsOriginal, s.original, fused);
    // The fused model is GroupQueryAttention, which computes each query against the keys up to it only (its kernels
    // stop at the diagonal): (S + 1) / 2S of the eager graph's FLOPs at the 256 tokens timed. No model bound: fusion
    // also changes how fast the same work runs.
    expect(fused.attentionFlops! / s.original.attentionFlops!).toBeCloseTo(257 / 512, 12);
    expect(fused.vsOriginal.modelBound).toBeNull();

    expect(result.frontier.map((f) => f.budget)).toEqual([0.25, 1]);
    for (const f of result.frontier) {
      const p = f.speed!;
      expect(p.budget).toBe(f.budget);
      checkLatency(p, 4);
      checkVs(p.vsOriginal, s.original, p);
      checkVs(p.vsBaseline, best, p);
      if (s.original.attentionCoreShare !== null && p.vsOriginal.modelBound !== null) {
        // Amdahl on the score path; the mask building outside the sites is removable where the plan no longer does it
        // (split sites read one row of the mask), not where every head stayed dense.
        const c = s.original.attentionCoreShare;
        expect(s.original.maskBuildShare).toBeGreaterThan(0);
        const m = p.maskBuildShare === null ? s.original.maskBuildShare! : 0;
        expect(p.vsOriginal.modelBound).toBeCloseTo(1 / (1 - c - m + c * (p.attentionFlops! / s.original.attentionFlops!)), 12);
      }
    }
    const [sparse, dense] = result.frontier.map((f) => f.speed!);
    // The sparse plan is split into head groups at every site and computes less attention.
    expect(sparse.plannedSites).toBe(2);
    expect(sparse.blockedSites).toBe(2);
    expect(sparse.attentionFlops!).toBeLessThan(s.original.attentionFlops!);
    // Its split sites read one row of the mask: the S×S mask is no longer built. The dense plan still builds it.
    expect(sparse.maskBuildShare).toBeNull();
    expect(dense.maskBuildShare).toBeGreaterThan(0);
    // A/A: the plan at density 1 keeps every head dense, so nothing is split and the work is the original's.
    expect(Object.values(result.frontier[1].plan.sites).flat().every((c) => c.kind === 'dense')).toBe(true);
    expect(dense.blockedSites).toBe(0);
    expect(dense.attentionFlops).toBe(s.original.attentionFlops);
    if (dense.vsOriginal.modelBound !== null) expect(dense.vsOriginal.modelBound).toBeCloseTo(1, 12);
  }, 300_000);

  it('names each timed plan by its budget\'s kind and unit (a FLOP budget), in the JSON and in the table', async () => {
    const args = [MODEL, '--tokens', TOKENS, ...SMALL, '--budget', 'flops=0.5', '--frontier', '1', '--bench-seq', '128', '--iters', '2', '--warmup', '0', '--profile-runs', '1'];
    const result = await planJson(...args);
    expect(result.frontier.map((f) => f.speed!.label)).toEqual(['plan at attention FLOPs ≤ 0.5 of dense (blocked)', 'plan at attention FLOPs ≤ 1 of dense (blocked)']);
    const text = await cli('plan', ...args);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('plan at attention FLOPs ≤ 0.5 of dense (blocked), ');
    expect(text.stdout).not.toMatch(/density ≤/);
  }, 300_000);

  it('times the uniform rules measured at the same budget in their fast forms, in the same run, with the same statistics', async () => {
    const noBaselines = SMALL.filter((a) => a !== '--no-baselines');
    const result = await planJson(MODEL, '--tokens', TOKENS, ...noBaselines, '--budget', 'density=0.25', '--frontier', '0.25',
      '--bench-seq', '128', '--iters', '3', '--warmup', '0', '--profile-runs', '1');
    const s = result.speed!;
    const best = s.baseline === 'fused' ? s.fused! : s.original;
    const measured = result.baselines.filter((b) => b.evaluation !== null);
    expect(measured.length).toBeGreaterThan(0);
    // One timed row per uniform rule the advisor measured, and none for a family with nothing under the budget.
    expect(s.uniform.map((u) => `${u.family}: ${u.rule}`).sort()).toEqual(measured.map((b) => `${b.family}: ${b.rule}`).sort());
    for (const u of s.uniform) {
      expect(u.budget).toBe(0.25);
      expect(u.label).toBe(`uniform ${u.rule} at density ≤ 0.25 (${u.rule.startsWith('block-topk') ? 'gather' : 'blocked'})`);
      checkLatency(u, 3);
      checkVs(u.vsOriginal, s.original, u);
      checkVs(u.vsBaseline, best, u);
      // Its fast form computes less attention than the dense model.
      expect(u.attentionFlops!).toBeLessThan(s.original.attentionFlops!);
    }
    const text = await cli('plan', MODEL, '--tokens', TOKENS, ...noBaselines, '--budget', 'density=0.25', '--frontier', '0.25',
      '--bench-seq', '128', '--iters', '2', '--warmup', '0', '--profile-runs', '0');
    expect(text.code).toBe(0);
    for (const u of s.uniform) expect(text.stdout).toContain(`uniform ${u.rule} at density ≤ 0.25 (`);
  }, 600_000);

  it('times on an inputs file as given (a model without a language-model head); the FLOP bound is then unknown, not guessed', async () => {
    const vit = fixture('vit-eager-ts-op17');
    const result = await planJson(vit.model, '--inputs', vit.manifest, '--budget', 'density=0.5', '--frontier', '0.5', '--no-baselines',
      '--bench', '--iters', '3', '--warmup', '0', '--profile-runs', '1');
    const s = result.speed!;
    expect(s.seq).toBeNull();
    expect(s.inputs).toBe(`the inputs of ${vit.manifest}`);
    const p = result.frontier[0].speed!;
    checkLatency(p, 3);
    checkVs(p.vsOriginal, s.original, p);
    expect(p.attentionFlops).toBeNull();
    expect(p.vsOriginal.modelBound).toBeNull();
    expect(p.vsBaseline.modelBound).toBeNull();
    if (!s.fused) expect(s.fusedReason).toBeTruthy();
  }, 300_000);

  it('refuses the timing options without --bench in one line', async () => {
    const r = await cli('plan', MODEL, '--tokens', TOKENS, '--budget', 'density=0.25', '--min-runs', '3');
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/^.*--min-runs applies to the speed step; add --bench or --bench-seq L$/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
