// The Advisor tab's run on a real model (the llama fixture, byte-level) and calibration text: the advisor core runs
// through the runtime worker; the tab gets its plans, the uniform rules at the same densities and the original, all
// measured in bits per token on windows the calibration windows do not overlap, with the person's file named.
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAdvisor, windowLength } from '../../src/extension/advisor';
import { type RunContext, VariantFiles } from '../../src/extension/runs';
import type { AdvisorResults } from '../../src/protocol';
import { parseHeadPlan, planJson } from '../../src/shared/head-plan';
import { FIXTURES } from '../helpers/fixtures';
import { planVariant } from '../../webview/logic/advisor';
import { CALIBRATION_TEXT, TEST_SETTINGS, cliReport, hostServices } from '../webview/harness';

const MODEL = path.join(FIXTURES, 'llama-eager-ts-op17', 'model.onnx');

let services: ReturnType<typeof hostServices>;
let ctx: RunContext;
let text: string;
let result: AdvisorResults;
const progress: (number | null)[] = [];

beforeAll(async () => {
  services = hostServices();
  const { core, runtime, scratch } = services;
  const report = cliReport(MODEL);
  text = path.join(scratch, 'calibration.py');
  writeFileSync(text, CALIBRATION_TEXT);
  const calibration = await core.request({ type: 'calibration', file: text, model: MODEL, infos: report.model.inputs });
  ctx = {
    core, runtime, modelPath: MODEL, report, settings: TEST_SETTINGS, files: new VariantFiles(core, MODEL, scratch),
    signal: new AbortController().signal, progress: (f) => progress.push(f), calibration,
  };
  result = await runAdvisor(ctx, [0.25, 0.5]);
}, 300_000);

afterAll(async () => {
  await services?.dispose();
});

describe('runAdvisor (the Advisor tab) on a real model', () => {
  it('returns a plan per budget, within its budget, with readable plans and a measured score', () => {
    expect(result.frontier.map((f) => f.budget)).toEqual([0.25, 0.5]);
    for (const f of result.frontier) {
      expect(f.density).toBeLessThanOrEqual(f.budget + 1e-9);
      expect(f.evaluation.metric).toBe('bits per token');
      expect(Number.isFinite(f.evaluation.value)).toBe(true);
      expect(parseHeadPlan(planJson(f.plan))).toEqual(f.plan);
      const heads = Object.values(f.mix).reduce((a, b) => a + b, 0);
      expect(heads).toBe(result.sites.reduce((a, s) => a + s.heads, 0));
    }
    expect(result.dense?.metric).toBe('bits per token');
  });

  it('measures the uniform rules at the same budgets, or says why not', () => {
    expect(result.baselines.length).toBeGreaterThan(0);
    for (const b of result.baselines) {
      expect([0.25, 0.5]).toContain(b.budget);
      if (b.evaluation) expect(Number.isFinite(b.evaluation.value)).toBe(true);
      else expect(b.reason).toBeTruthy();
    }
  });

  it('names the calibration file, not a temporary one, and reports progress in [0, 1]', () => {
    expect(result.objective).toContain(text);
    expect(result.objective).not.toMatch(/attention-lens-advisor-tab-/);
    expect(progress.length).toBeGreaterThan(3);
    expect(progress.every((p) => p === null || (p >= 0 && p <= 1))).toBe(true);
  });

  it('keeps a plan as a variant the core thread writes, in both forms', async () => {
    for (const form of ['mask', 'blocked'] as const) {
      const { steps } = planVariant(result.frontier[0], form);
      const preview = await ctx.core.request({ type: 'preview', file: MODEL, steps });
      expect(preview.applied.map((a) => a.rule)).toContain('plan');
      expect(preview.flopsAfter).toBeLessThanOrEqual(preview.flopsBefore);
    }
  }, 120_000);

  it('halves the window length until the windows fit the text, and says why', () => {
    expect(result.seq).toBe(windowLength(ctx.calibration!.ids!, 512, text).seq);
    expect(windowLength(new Array(20 * 513 * 2).fill(1), 512, 'a.txt')).toEqual({ seq: 512, note: "512 tokens: the model's length (at most 512)" });
    expect(windowLength(new Array(4160).fill(1), 512, 'a.txt')).toEqual({ seq: 64, note: '64 tokens: a.txt holds 4160 tokens, too few for windows of 512' });
    expect(() => windowLength(new Array(100).fill(1), 512, 'a.txt')).toThrow(/^a.txt holds 100 tokens: too few .* choose a longer text/);
  });

  it('times the blocked plans against the dense models when asked, and stops when cancelled while timing', async () => {
    const fractions: (number | null)[] = [];
    const timed = await runAdvisor({ ...ctx, progress: (f) => fractions.push(f) }, [0.25], 128);
    const s = timed.speed!;
    expect(s.seq).toBe(128);
    expect(timed.timings.speedMs).toBeGreaterThan(0);
    const base = s.baseline === 'fused' ? s.fusedMs! : s.originalMs;
    expect(s.baseline).toBe(s.fusedMs !== null && s.fusedMs < s.originalMs ? 'fused' : 'original');
    const p = timed.frontier[0].speed!;
    expect(p.latencyMs.runs).toBe(TEST_SETTINGS.iterations);
    expect(p.vsOriginal.ratio).toBeCloseTo(s.originalMs / p.latencyMs.p50, 12);
    expect(p.vsBaseline.ratio).toBeCloseTo(base / p.latencyMs.p50, 12);
    expect(p.vsBaseline.significant).toBe(p.vsBaseline.ci95[0] > 1 || p.vsBaseline.ci95[1] < 1);
    expect(fractions.some((f) => f !== null && f > 0.75)).toBe(true);
    expect(result.speed).toBeNull();

    const controller = new AbortController();
    const during = runAdvisor({ ...ctx, signal: controller.signal, progress: (_f, message) => { if (/^timing .*: (warmup|timed) /.test(message)) controller.abort(); } }, [0.25], 128);
    await expect(during).rejects.toThrow(/cancel/i);
  }, 300_000);

  it('asks for calibration data first, and stops when cancelled', async () => {
    await expect(runAdvisor({ ...ctx, calibration: null }, [0.25])).rejects.toThrow(/choose calibration data first/);
    const controller = new AbortController();
    controller.abort();
    await expect(runAdvisor({ ...ctx, signal: controller.signal }, [0.25])).rejects.toThrow(/cancel/i);
  }, 120_000);
});
