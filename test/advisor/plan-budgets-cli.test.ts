// `attention-lens plan` under a FLOP budget and a latency budget, small and short (the trained byte model at 64
// tokens, a ViT on its inputs): the structure of what is reported, never a timing threshold. Under a FLOP budget the
// plan's count is the blocked rewrite's; under a latency budget the latency model is measured (dense and uniform
// plans with their intervals), the plans are timed, each with its estimate, its measured median and interval, and a
// verdict that follows from the interval and the budget, with a warning whenever the budget is not shown met.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type LatencyModel, latencyVerdict, perGroupMs, predictDeltaMs } from '../../src/orchestrate/advisor/latency-model';
import type { HeadChoice } from '../../src/rewriters/plan/choices';
import { cli } from '../runtime/cli-helpers';
import { fixture, useBuiltWorker } from '../runtime/helpers';

useBuiltWorker();

const ordered = (t: { p50: number; ci95: [number, number] }) => {
  expect(t.ci95[0]).toBeLessThanOrEqual(t.p50);
  expect(t.p50).toBeLessThanOrEqual(t.ci95[1]);
  expect(t.ci95[0]).toBeGreaterThan(0);
};

describe('plan under a latency budget', () => {
  const f = fixture('bytelm-llama-trained');
  const tokens = join(f.dir, 'eval.bytes');
  const small = ['--tokens', tokens, '--seq', '64', '--eval-windows', '2', '--calib-windows', '2', '--importance-windows', '1', '--latency-runs', '3'];

  it.each([
    // The first budget must be feasible whatever the timings (the all-dense plan costs the dense latency); the
    // frontier's may not be, and is then left out with a warning.
    ['a share of the dense model', ['--budget', 'latency=1', '--frontier', '0.7'], 'share', [1, 0.7]],
    ['a time', ['--budget', 'latency=100000ms', '--frontier', '1ms', '--no-baselines'], 'ms', [100000, 1]],
  ])('as %s: estimate, measurement with its interval, verdict and warnings', async (_what, args, unit, asked) => {
    const r = await cli('plan', f.model, ...small, ...args, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.budget).toMatchObject({ kind: 'latency', unit });
    const m = result.latencyModel;
    expect(m.seq).toBe(64);
    ordered(m.dense);
    expect(m.points.map((p: { family: string }) => p.family)).toEqual(expect.arrayContaining(['window', 'block-topk', 'sink', 'strided', 'pruned']));
    for (const p of m.points) {
      ordered(p.latencyMs);
      expect(p.latencyMs.runs).toBe(3);
      expect(p.deltaPerHeadMs).toBeCloseTo((p.latencyMs.p50 - m.dense.p50) / p.heads, 9);
    }
    expect(m.fits.length).toBe(new Set(m.points.map((p: { family: string }) => p.family)).size);
    // The cost of head groups: a plan cycling each site's heads through the timed windows, against the lines' prediction.
    const model = m as LatencyModel;
    const g = model.groups!;
    const windows = m.points.filter((p: { family: string }) => p.family === 'window').length;
    expect(g.label).toMatch(/^heads cycling through window \d+, window \d+/);
    expect(g.extraGroups).toBe(model.sites.length * (windows - 1));
    ordered(g.latencyMs);
    expect(g.perGroupMs).toBeCloseTo((g.latencyMs.p50 - g.predictedMs) / g.extraGroups, 9);
    // Each plan's estimate is the lines' sum plus the charged cost of its groups beyond each site's first.
    const estimate = (plan: { sites: Record<string, HeadChoice[]> }) => Object.entries(plan.sites).reduce((a, [site, cs]) =>
      a + cs.reduce((b, c) => b + predictDeltaMs(model, Number(site), c), 0) + perGroupMs(model) * (new Set(cs.map((c) => JSON.stringify(c))).size - 1), model.dense.p50);
    for (const point of result.frontier) expect(point.latency.estimateMs).toBeCloseTo(estimate(point.plan), 6);
    const words = (v: number) => (unit === 'ms' ? `latency ≤ ${v} ms` : `latency ≤ ${v} of dense`);
    for (const point of result.frontier) {
      const l = point.latency;
      ordered(l.measuredMs);
      ordered(l.denseMs);
      expect(l.share.ci95[0]).toBeLessThanOrEqual(l.share.value);
      expect(l.share.value).toBeLessThanOrEqual(l.share.ci95[1]);
      // The point's cost is the model's estimate, in the budget's unit, and within the budget.
      const estimate = unit === 'ms' ? point.cost : point.cost * m.dense.p50;
      expect(l.estimateMs).toBeCloseTo(estimate, 9);
      expect(point.cost).toBeLessThanOrEqual(point.budget * (1 + 1e-9));
      expect(l.limit).toBe(point.budget);
      expect(l.verdict).toBe(latencyVerdict(unit === 'ms' ? l.measuredMs.ci95 : l.share.ci95, point.budget));
      const warned = result.warnings.some((w: string) => /it is not shown to be met|the budget is not met/.test(w) && w.includes(words(point.budget)));
      expect(warned).toBe(l.verdict !== 'met');
    }
    expect(result.frontier[0].budget).toBe(asked[0]);
    for (const v of asked.slice(1)) {
      const planned = result.frontier.some((p: { budget: number }) => p.budget === v);
      const leftOut = result.warnings.some((w: string) => w.startsWith(`frontier budget ${words(v)} left out: `) && /below the cheapest plan/.test(w));
      expect(planned !== leftOut).toBe(true);
    }
    for (const b of result.baselines) if (b.cost !== null) expect(b.cost).toBeLessThanOrEqual(b.budget * (1 + 1e-9));
  }, 600_000);
});

describe('plan under a FLOP budget', () => {
  // At 17 tokens (the ViT's 16 patches and its class token) no blocked form computes less than dense attention (blocks
  // of 16 rows round 17 up to 32), so its plans save FLOPs by pruning and no uniform sparse rule fits; at 128 tokens
  // the byte model's windows and block-topk do.
  const vit = fixture('vit-eager-ts-op17');
  const byte = fixture('bytelm-llama-trained');
  it.each([
    ['a ViT at its 17 tokens', [vit.model, '--inputs', vit.manifest, '--budget', 'flops=0.5', '--frontier', '0.3'], false],
    ['the byte model at 128 tokens', [byte.model, '--tokens', join(byte.dir, 'eval.bytes'), '--seq', '128', '--eval-windows', '2', '--calib-windows', '2', '--importance-windows', '1', '--budget', 'flops=0.5', '--frontier', '0.3'], true],
  ])('on %s: the plan\'s count is the blocked rewrite\'s, within the budget; uniform rules fitted by FLOPs', async (_what, args, sparseFits) => {
    const r = await cli('plan', ...args, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.budget).toMatchObject({ kind: 'flops', unit: 'share' });
    expect(result.frontier.map((p: { budget: number }) => p.budget)).toEqual([0.5, 0.3]);
    for (const p of result.frontier) {
      expect(p.flops.rewriteReport).not.toBeNull();
      expect(Math.abs(p.flops.advisor - p.flops.rewriteReport)).toBeLessThanOrEqual(1e-9 * p.flops.rewriteReport);
      expect(p.cost).toBeLessThanOrEqual(p.budget * (1 + 1e-9));
    }
    const fitted = result.baselines.filter((b: { cost: number | null }) => b.cost !== null);
    expect(fitted.length > 0).toBe(sparseFits);
    for (const b of fitted) expect(b.cost).toBeLessThanOrEqual(b.budget * (1 + 1e-9));
    for (const b of result.baselines.filter((x: { cost: number | null }) => x.cost === null)) expect(b.reason).toMatch(/its cheapest setting is over attention FLOPs ≤ 0\.[35] of dense/);
  }, 300_000);
});
