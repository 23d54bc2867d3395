// The Advisor tab's run: the advisor of `attention-lens plan` (orchestrate/advisor/advisor.ts), on the dashboard's
// calibration data. Token ids and text (tokenised by the core thread) make a token file whose windows are split into
// calibration and evaluation windows as the CLI's --tokens does; an inputs file is passed as the CLI's --inputs.
// The advisor runs in the core thread (its analysis, rewrites and integer programs would hold the host's event loop for
// seconds), its models in the host's runtime worker through a relay; Cancel stops both. No `vscode` here.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { AdviceResult, AdvisorData } from '../orchestrate/advisor/advisor';
import { CalibrationError, splitTokens } from '../orchestrate/advisor/calibration';
import type { PlanSpeed, SpeedReport, SpeedVs } from '../orchestrate/advisor/speed';
import type { AdvisorPlanSpeed, AdvisorResults, AdvisorSpeedSummary, AdvisorSpeedup } from '../protocol';
import type { Budget } from '../shared/budget';
import type { ProgressEvent } from '../runtime/protocol';
import { defaultLength } from '../shared/lengths';
import { inBitsUnit } from '../shared/score-unit';
import { userError } from './errors';
import { PROFILE_RUNS, type RunContext } from './runs';

/** Token windows of the dashboard's run: fewer evaluation windows than the CLI's 64, so that a run stays minutes long. */
export const ADVISOR_WINDOWS = { evalWindows: 16, calibrationWindows: 4, importanceWindows: 2 } as const;
/** The CLI's default window length; a model with fewer positions uses its own. */
const MAX_SEQ = 512;

/**
 * Share of the progress bar each phase of the advisor takes: profiling reads the attention maps (`maps`), then runs the
 * model once per head (`importance`); validation runs once per plan and rule.
 */
const PHASES: Record<string, [number, number]> = { maps: [0, 0.15], importance: [0.15, 0.55], profile: [0, 0.55], search: [0.55, 0.6], validate: [0.6, 1] };
/** With the speed step, which times every plan and two dense models at a length often longer than the windows. */
const PHASES_TIMED: Record<string, [number, number]> = { maps: [0, 0.1], importance: [0.1, 0.4], profile: [0, 0.4], search: [0.4, 0.45], validate: [0.45, 0.75], speed: [0.75, 1] };
const PHASE_NAMES: Record<string, string> = {
  maps: 'profiling the heads', importance: 'profiling the heads', profile: 'profiling the heads', search: 'searching plans', validate: 'measuring plans and uniform rules',
  speed: 'timing the blocked plans',
};

/** `benchSeq`: time each plan's blocked form against the dense models at that many tokens (the Speed tab's run settings). */
export async function runAdvisor(ctx: RunContext, budgets: (number | Budget)[], benchSeq?: number): Promise<AdvisorResults> {
  const cal = ctx.calibration;
  if (!cal) throw userError('choose calibration data first (text, token ids or model inputs): the advisor profiles the heads on it and measures the plans on it');
  const dir = mkdtempSync(path.join(tmpdir(), 'attention-lens-advisor-tab-'));
  try {
    let data: AdvisorData;
    let lengthNote = 'the length of the inputs file';
    if (cal.ids) {
      // The tokens as the core thread read them (text tokenised), in a token file the advisor splits as eval does.
      const file = path.join(dir, 'tokens.json');
      writeFileSync(file, JSON.stringify(Array.from(cal.ids)));
      const fit = windowLength(cal.ids, defaultLength(ctx.report.model).seq, cal.file);
      lengthNote = fit.note;
      data = { kind: 'tokens', file, seq: fit.seq, ...ADVISOR_WINDOWS };
    } else {
      data = { kind: 'inputs', file: cal.file };
    }
    // The tab shows the plans' speed only, so the uniform rules are not timed here (the CLI's `plan --bench` times them).
    const speed = benchSeq ? { seq: benchSeq, warmup: ctx.settings.warmup, minRuns: ctx.settings.iterations, minTimeMs: ctx.settings.minTimeMs, profileRuns: PROFILE_RUNS, uniform: false } : undefined;
    const result = await ctx.core.request(
      { type: 'advise', file: ctx.modelPath, options: { data, budgets, settings: { ep: ctx.settings.executionProviders }, ...(speed ? { speed } : {}) } },
      ctx.signal,
      (p) => ctx.progress(fraction(p, speed ? PHASES_TIMED : PHASES), describe(p)),
      ctx.runtime,
    );
    return { ...advisorResults(result, cal.ids ? { from: path.join(dir, 'tokens.json'), to: cal.file } : null, cal.ids ? cal.how : null), lengthNote };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Shortest window the dashboard tries before saying the text is too short. */
const MIN_SEQ = 16;

/**
 * The window length: the model's own (at most the CLI's 512), halved until the evaluation windows and the calibration
 * windows between them fit in the tokens; and why, for the screen.
 */
export function windowLength(ids: ArrayLike<number>, own: number, file: string): { seq: number; note: string } {
  const tokens = Int32Array.from(ids);
  const start = Math.min(MAX_SEQ, own);
  for (let seq = start; seq >= MIN_SEQ; seq = Math.floor(seq / 2)) {
    if (tokens.length < (seq + 1) * (ADVISOR_WINDOWS.evalWindows + ADVISOR_WINDOWS.calibrationWindows)) continue;
    try {
      splitTokens(tokens, seq, ADVISOR_WINDOWS.evalWindows, ADVISOR_WINDOWS.calibrationWindows);
      return { seq, note: seq === start ? `${seq} tokens: the model's length (at most 512)` : `${seq} tokens: ${file} holds ${tokens.length} tokens, too few for windows of ${start}` };
    } catch (e) {
      if (!(e instanceof CalibrationError)) throw e;
    }
  }
  const need = (ADVISOR_WINDOWS.evalWindows + ADVISOR_WINDOWS.calibrationWindows) * (MIN_SEQ + 1) * 2;
  throw userError(
    `${file} holds ${tokens.length} tokens: too few for ${ADVISOR_WINDOWS.evalWindows} evaluation windows and ${ADVISOR_WINDOWS.calibrationWindows} calibration windows ` +
      `of even ${MIN_SEQ} tokens apart from each other; choose a longer text (about ${need} tokens or more)`,
  );
}

function fraction(p: ProgressEvent, phases: Record<string, [number, number]>): number | null {
  const span = phases[p.phase];
  if (!span) return null;
  return span[0] + (span[1] - span[0]) * (p.total > 0 ? Math.min(1, p.done / p.total) : 0);
}

function describe(p: ProgressEvent): string {
  const what = PHASE_NAMES[p.phase] ?? p.phase;
  return `${what}${p.total > 0 ? ` ${p.done}/${p.total}` : ''}${p.message ? `: ${p.message}` : ''}`;
}

/**
 * The result as the dashboard keeps it: the profile's per-head numbers are left out, the temporary token file named as
 * the person's file, and bits per token named in the unit of the text (`how` its tokens were made: bits per byte for a
 * byte-level model, as the Accuracy tab names the same score).
 */
export function advisorResults(r: AdviceResult, rename: { from: string; to: string } | null, how: string | null = null): Omit<AdvisorResults, 'lengthNote'> {
  const named = (s: string) => (rename ? s.split(rename.from).join(rename.to) : s);
  const score = (e: { metric: string; value: number }) => ({ metric: inBitsUnit(e.metric, how), value: e.value });
  return {
    seq: r.seq,
    objective: inBitsUnit(named(r.objective), how),
    budget: r.budget.description,
    budgetUnit: { kind: r.budget.kind, unit: r.budget.unit },
    calibration: named(r.profile.calibration),
    sites: r.profile.sites.map((s) => ({ site: s.site, heads: s.heads })),
    skipped: r.profile.skipped,
    dense: r.dense ? score(r.dense) : null,
    frontier: r.frontier.map((f) => ({
      budget: f.budget, density: f.density, plan: f.plan, proxy: f.chosen.proxy, evaluation: score(f.evaluation), mix: f.mix,
      ...(f.speed ? { speed: planSpeed(f.speed) } : {}),
    })),
    baselines: r.baselines.map((b) => ({
      budget: b.budget, family: b.family, rule: b.rule, density: b.density,
      evaluation: b.evaluation ? score(b.evaluation) : null,
      ...(b.reason ? { reason: named(b.reason) } : {}),
    })),
    speed: r.speed ? speedSummary(r.speed) : null,
    timings: r.timings,
    warnings: r.warnings.map(named),
    finishedAt: new Date().toISOString(),
  };
}

function speedup(v: SpeedVs): AdvisorSpeedup {
  return { ratio: v.ratio, ci95: v.ci95, significant: v.significant, paired: v.paired, modelBound: v.modelBound, verdict: v.verdict };
}

function planSpeed(p: PlanSpeed): AdvisorPlanSpeed {
  const l = p.latencyMs;
  return { latencyMs: { p50: l.p50, ci95: l.ci95, runs: l.runs }, vsOriginal: speedup(p.vsOriginal), vsBaseline: speedup(p.vsBaseline), blockedSites: p.blockedSites, plannedSites: p.plannedSites };
}

function speedSummary(s: SpeedReport): AdvisorSpeedSummary {
  return {
    seq: s.seq, ep: s.ep, baseline: s.baseline, originalMs: s.original.latencyMs.p50, fusedMs: s.fused?.latencyMs.p50 ?? null,
    ...(s.fusedReason ? { fusedReason: s.fusedReason } : {}), machine: s.machine, otherCpuShare: s.otherCpuShare,
  };
}
