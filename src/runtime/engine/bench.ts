// `bench`: session creation, warm-up, timed runs (interleaved across models), then a separate profiled pass that
// gives attention's share of kernel time. Timing and profiling use different sessions because the profiler's own
// bookkeeping would inflate the latencies; the profiled pass runs after every timed point so that it cannot raise the
// resident-set high-water mark recorded for the timings.
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type * as ort from 'onnxruntime-node';
import { type KernelProfile, type TraceEvent, analyzeTrace } from '../measure/profile-trace';
import { summarize } from '../measure/stats';
import { contentionWarning, latencyWarnings } from '../measure/trust';
import type { BenchEntry, BenchModel, BenchRequest, BenchResult, InputSource, SweepPoint } from '../protocol';
import type { TaskContext } from './context';
import { prepareFeeds } from './feeds';
import { markLoad, otherCpuShare } from './machine-load';
import { toOrt } from './ort-tensors';
import { type OpenedSession, openSession } from './sessions';

type Feeds = Record<string, ort.Tensor>;

function validate(req: BenchRequest): void {
  if (req.models.length === 0) throw new Error('bench: no models');
  const intAtLeast = (v: number | undefined, min: number, what: string): void => {
    if (v !== undefined && !(Number.isInteger(v) && v >= min)) throw new Error(`bench: ${what} must be an integer >= ${min}, got ${v}`);
  };
  intAtLeast(req.warmup, 0, 'warmup');
  intAtLeast(req.iters, 1, 'iters');
  intAtLeast(req.minRuns, 1, 'minRuns');
  intAtLeast(req.maxRuns, 1, 'maxRuns');
  intAtLeast(req.profileRuns, 0, 'profileRuns');
  intAtLeast(req.batch, 1, 'batch');
  if (req.minTimeMs !== undefined && !(req.minTimeMs >= 0 && Number.isFinite(req.minTimeMs))) throw new Error(`bench: minTimeMs must be >= 0, got ${req.minTimeMs}`);
  if (req.iters !== undefined && (req.minRuns !== undefined || req.maxRuns !== undefined || req.minTimeMs !== undefined)) {
    throw new Error('bench: iters fixes the number of runs; drop minRuns, maxRuns and minTimeMs');
  }
  if (req.minRuns !== undefined && req.maxRuns !== undefined && req.maxRuns < req.minRuns) throw new Error(`bench: maxRuns (${req.maxRuns}) is below minRuns (${req.minRuns})`);
  for (const p of req.points ?? []) {
    intAtLeast(p.seq, 1, 'seq');
    intAtLeast(p.past, 0, 'past');
  }
  const fixed = req.inputs?.file !== undefined || Object.keys(req.inputs?.tensors ?? {}).length > 0;
  if (fixed && req.points && req.points.length > 0) throw new Error('bench: given inputs fix the sequence length; drop the sweep points');
}

function feedsFor(opened: OpenedSession, model: BenchModel, req: BenchRequest, point: SweepPoint | null) {
  const source: InputSource = { ...req.inputs, infos: model.infos ?? req.inputs?.infos };
  const override = point ? { seq: point.seq, past: point.past, ...(req.batch ? { batch: req.batch } : {}) } : req.batch ? { batch: req.batch } : {};
  const prepared = prepareFeeds(opened, source, override);
  const feeds: Feeds = Object.fromEntries(Object.entries(prepared.tensors).map(([k, v]) => [k, toOrt(v)]));
  return { feeds, fed: prepared.fed };
}

/** For a model without a sequence input: the sequence axis of its first rank-3 output (one untimed run), else 1. */
async function outputSequence(session: ort.InferenceSession, feeds: Feeds): Promise<number> {
  const outputs = await session.run(feeds);
  for (const name of session.outputNames) {
    const t = outputs[name] as ort.Tensor | undefined;
    if (t && t.dims.length === 3) return t.dims[1];
  }
  return 1;
}

async function timedRun(session: ort.InferenceSession, feeds: Feeds): Promise<number> {
  const t0 = performance.now();
  await session.run(feeds);
  return performance.now() - t0;
}

function peakRssMB(): number {
  return process.resourceUsage().maxRSS / 1024; // maxRSS is in kilobytes
}

/** When the timed rounds of a point stop: both minimums met, or the cap reached. */
export interface StopRule {
  minRuns: number;
  minTimeMs: number;
  maxRuns: number;
}

export const DEFAULT_MIN_RUNS = 10;
export const DEFAULT_MAX_RUNS = 1000;

export function stopRule(req: Pick<BenchRequest, 'iters' | 'minRuns' | 'minTimeMs' | 'maxRuns'>): StopRule {
  if (req.iters !== undefined) return { minRuns: req.iters, minTimeMs: 0, maxRuns: req.iters };
  const minRuns = req.minRuns ?? DEFAULT_MIN_RUNS;
  return { minRuns, minTimeMs: req.minTimeMs ?? 0, maxRuns: req.maxRuns ?? Math.max(DEFAULT_MAX_RUNS, minRuns) };
}

/** Rounds a point will likely take, for progress: the larger of the two minimums at the pace so far, within the cap. */
function expectedRounds(rule: StopRule, rounds: number, elapsedMs: number): number {
  const byTime = rounds > 0 && rule.minTimeMs > 0 ? Math.ceil((rule.minTimeMs * rounds) / Math.max(elapsedMs, 1e-3)) : 0;
  return Math.min(rule.maxRuns, Math.max(rule.minRuns, byTime, rounds));
}

/**
 * Timed runs report progress at most once a second: each report wakes the client (and an editor redraws its progress
 * bar), which is load on the very machine being timed.
 */
const TIMED_PROGRESS_MS = 1000;

export async function handleBench(req: BenchRequest, ctx: TaskContext): Promise<BenchResult> {
  validate(req);
  const points: (SweepPoint | null)[] = req.points && req.points.length > 0 ? req.points : [null];
  const warmup = req.warmup ?? 2;
  const rule = stopRule(req);
  const profileRuns = req.profileRuns ?? 3;
  const entries: BenchEntry[] = [];
  const opened: OpenedSession[] = [];

  try {
    for (const [i, m] of req.models.entries()) {
      ctx.progress({ phase: 'session', done: i, total: req.models.length, message: m.path });
      opened.push(await openSession(m.path, req.settings));
      ctx.throwIfCancelled();
    }

    for (const [pi, point] of points.entries()) {
      const prepared = await Promise.all(opened.map(async (o, mi) => {
        const p = feedsFor(o, req.models[mi], req, point);
        return { ...p, outputSeq: p.fed.shape.hasSequence ? p.fed.shape.seq : await outputSequence(o.session, p.feeds) };
      }));
      const warmups: number[][] = opened.map(() => []);
      for (let w = 0; w < warmup; w++) {
        for (const [mi, o] of opened.entries()) {
          warmups[mi].push(await timedRun(o.session, prepared[mi].feeds));
          ctx.throwIfCancelled();
        }
        ctx.progress({ phase: 'warmup', done: w + 1, total: warmup, message: pointLabel(point, pi, points.length) });
      }
      const label = pointLabel(point, pi, points.length);
      ctx.progress({ phase: 'timed', done: 0, total: rule.minRuns, message: label });
      const load = markLoad();
      const samples = await timedRounds(opened, prepared.map((p) => p.feeds), rule, ctx, label);
      const busy = otherCpuShare(load);
      const rss = peakRssMB();
      const contention = contentionWarning(busy);
      for (const [mi, o] of opened.entries()) {
        const fed = prepared[mi].fed;
        const latency = summarize(samples[mi]);
        const seq = fed.shape.hasSequence ? fed.shape.seq : prepared[mi].outputSeq;
        const tokensPerRun = fed.shape.batch * seq;
        const warnings = [...fed.warnings];
        if (point && !fed.shape.hasSequence) warnings.push(`${o.model} has no sequence input: the sweep's lengths do not change what it runs`);
        entries.push({
          model: o.model,
          ep: o.provider.used,
          provider: o.provider,
          seq,
          past: fed.shape.past,
          batch: fed.shape.batch,
          tokensPerRun,
          sessionCreateMs: o.createMs,
          warmupMs: warmups[mi],
          latencyMs: latency,
          samplesMs: samples[mi],
          otherCpuShare: busy,
          timingWarnings: [...latencyWarnings(latency), ...(contention ? [contention] : [])],
          tokensPerSecond: tokensPerRun / (latency.mean / 1000),
          peakRssMB: rss,
          attentionShare: null,
          profile: null,
          inputWarnings: warnings,
        });
      }
    }
  } finally {
    await Promise.all(opened.map((o) => o.session.release().catch(() => undefined)));
  }

  if (profileRuns > 0) {
    for (const [mi, m] of req.models.entries()) {
      const profiles = await profileModel(m, req, points, profileRuns, ctx, mi);
      for (const [pi, profile] of profiles.entries()) {
        const entry = entries[pi * req.models.length + mi];
        entry.profile = profile;
        entry.attentionShare = profile.attentionShare;
        const placement = cpuPlacementWarning(entry.ep, profile);
        if (placement) entry.provider = { ...entry.provider, warnings: [...entry.provider.warnings, placement] };
      }
    }
  }
  return { results: entries };
}

/**
 * Round-robin with a rotating start, so that slow drift (thermal, other load) touches every model alike and each model
 * runs first equally often. Rounds continue until both minimums of `rule` are met or its cap is reached. Returns each
 * model's runs in round order (index r of every model is round r: the runs pair up for a paired bootstrap).
 */
async function timedRounds(opened: OpenedSession[], feeds: Feeds[], rule: StopRule, ctx: TaskContext, label: string): Promise<number[][]> {
  const samples: number[][] = opened.map(() => []);
  const start = performance.now();
  let reported = start;
  for (let round = 1; ; round++) {
    for (let k = 0; k < opened.length; k++) {
      const mi = (round - 1 + k) % opened.length;
      samples[mi].push(await timedRun(opened[mi].session, feeds[mi]));
      ctx.throwIfCancelled();
    }
    const now = performance.now();
    const done = round >= rule.maxRuns || (round >= rule.minRuns && now - start >= rule.minTimeMs);
    if (done || now - reported >= TIMED_PROGRESS_MS) {
      reported = now;
      ctx.progress({ phase: 'timed', done: round, total: done ? round : expectedRounds(rule, round, now - start), message: label });
    }
    if (done) return samples;
  }
}

/** A GPU provider that left nodes to the CPU is slower than its name suggests: say how much ran where. */
function cpuPlacementWarning(ep: string, profile: KernelProfile): string | null {
  if (ep === 'cpu') return null;
  const total = Object.values(profile.byProvider).reduce((a, b) => a + b, 0);
  const onCpu = profile.byProvider.CPUExecutionProvider ?? 0;
  if (total <= 0 || onCpu <= 0) return null;
  return `${((100 * onCpu) / total).toFixed(1)}% of kernel time ran on the CPU provider (nodes ${ep} does not take)`;
}

function pointLabel(point: SweepPoint | null, index: number, count: number): string {
  const what = point ? `seq ${point.seq}${point.past ? `, past ${point.past}` : ''}` : 'given inputs';
  return `${what} (${index + 1}/${count})`;
}

/** One profiling session per model; each point gets one warm-up run (not counted) and `runs` counted runs. */
async function profileModel(model: BenchModel, req: BenchRequest, points: (SweepPoint | null)[], runs: number, ctx: TaskContext, mi: number): Promise<KernelProfile[]> {
  const prefix = join(tmpdir(), `attention-lens-profile-${process.pid}-${Date.now()}-${mi}`);
  const opened = await openSession(model.path, req.settings, { profilePrefix: prefix });
  const ranges: { from: number; to: number }[] = [];
  let runIndex = 0;
  let ended = false;
  try {
    for (const [pi, point] of points.entries()) {
      const { feeds } = feedsFor(opened, model, req, point);
      await opened.session.run(feeds); // warm-up: allocations and first-run costs stay out of the share
      runIndex++;
      ranges.push({ from: runIndex, to: runIndex + runs });
      for (let r = 0; r < runs; r++) {
        await opened.session.run(feeds);
        runIndex++;
        ctx.throwIfCancelled();
      }
      ctx.progress({ phase: 'profile', done: pi + 1, total: points.length, message: `${model.path} ${pointLabel(point, pi, points.length)}` });
    }
    opened.session.endProfiling();
    ended = true;
    const events = readTrace(prefix);
    return ranges.map((range) => analyzeTrace(events, model.sites, range));
  } finally {
    if (!ended) {
      try {
        opened.session.endProfiling();
      } catch {
        // the session may already be unusable; its trace file is removed below either way
      }
    }
    await opened.session.release().catch(() => undefined);
    removeTraces(prefix);
  }
}

function traceFiles(prefix: string): string[] {
  const dir = dirname(prefix);
  const stem = basename(prefix);
  return readdirSync(dir).filter((f) => f.startsWith(`${stem}_`) && f.endsWith('.json')).map((f) => join(dir, f));
}

function readTrace(prefix: string): TraceEvent[] {
  const files = traceFiles(prefix);
  if (files.length !== 1) throw new Error(`profile: expected one trace file for ${prefix}, found ${files.length}`);
  const events: unknown = JSON.parse(readFileSync(files[0], 'utf8'));
  if (!Array.isArray(events)) throw new Error(`profile: ${files[0]} is not a trace event array`);
  return events as TraceEvent[];
}

function removeTraces(prefix: string): void {
  for (const f of traceFiles(prefix)) rmSync(f, { force: true });
}
