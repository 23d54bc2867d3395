// When timings should not be trusted, in words: too few runs, a wide spread, outliers, a busy machine, a speedup
// above what the removed work allows. Modelled on pyperf's `check` (std above 10 % of the mean, min or max far from
// the centre) and hyperfine's outlier warning, with robust statistics (median, IQR) because latencies are skewed.
// Pure: the worker, the CLI, the extension host and the dashboard's logic import it.
import type { SiteMeasures } from '../../analysis/report/site-measures';
import { type LatencyStats, type Speedup, identity, speedup } from './stats';

/** Thresholds of the checks; exported so that docs and tests name the same numbers. */
export const TRUST = {
  /** Fewer timed runs than this: the bootstrap has too little to resample. */
  minRuns: 5,
  /** IQR / median above this: the middle half of the runs is spread wider than 10 % of the median. */
  maxRelativeIqr: 0.1,
  /** Half-width of the median's interval / median above this. */
  maxRelativeHalfWidth: 0.05,
  /** Share of runs beyond Tukey's 1.5 × IQR fences above this (a few are normal for skewed latencies). */
  maxOutlierShare: 0.05,
  /** Slowest run / median above this (pyperf warns at +50 % of the mean; latencies' right tail is longer). */
  maxSlowest: 2,
  /** Fastest run / median below this (pyperf: min 50 % below the mean): two populations of runs. */
  minFastest: 0.5,
  /** Other processes' share of the machine's CPU time during the timed runs above this. */
  maxOtherCpu: 0.1,
} as const;

const p = (x: number) => `${(100 * x).toFixed(0)}%`;
const f = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

/** One line per reason not to trust a latency summary; empty when none applies. */
export function latencyWarnings(s: LatencyStats): string[] {
  const out: string[] = [];
  if (s.n < TRUST.minRuns) out.push(`only ${s.n} timed run(s): the median's interval is rough; use at least ${TRUST.minRuns * 2}`);
  if (s.n < 2 || !(s.p50 > 0)) return out;
  const halfWidth = (s.ci95[1] - s.ci95[0]) / 2 / s.p50;
  if (halfWidth > TRUST.maxRelativeHalfWidth) out.push(`the median's 95% interval is ±${p(halfWidth)} wide (${f(s.ci95[0])}–${f(s.ci95[1])} ms): more runs or a quieter machine would narrow it`);
  if (s.iqr / s.p50 > TRUST.maxRelativeIqr) out.push(`high spread: the middle half of the runs spans ${p(s.iqr / s.p50)} of the median`);
  if (s.outliers / s.n > TRUST.maxOutlierShare) out.push(`${s.outliers} of ${s.n} runs are outliers (beyond 1.5×IQR of the quartiles)`);
  if (s.max / s.p50 > TRUST.maxSlowest) out.push(`the slowest run took ${f(s.max / s.p50)}× the median (${f(s.max)} ms): something else ran at that moment`);
  if (s.min / s.p50 < TRUST.minFastest) out.push(`the fastest run took only ${p(s.min / s.p50)} of the median (${f(s.min)} ms): the runs fall into groups (contention, or runs that do different work)`);
  return out;
}

/** The warning for other processes' CPU use during the timed runs (a share of all cores' time), or null. */
export function contentionWarning(otherCpuShare: number | null): string | null {
  if (otherCpuShare === null || !(otherCpuShare > TRUST.maxOtherCpu)) return null;
  return `the machine was busy: other processes used ${p(otherCpuShare)} of its CPU time during the timed runs, so the timings are slower and noisier than on an idle machine`;
}

/**
 * Amdahl's law: the whole model's speedup bound when a part holding `share` of the reference's kernel time keeps
 * `flopRatio` (this model's FLOPs / the reference's) of its work, another part holding `removed` goes entirely, and
 * the rest is unchanged: 1 / ((1 − s − m) + s·r).
 */
export function amdahl(share: number, flopRatio: number, removed = 0): number {
  return 1 / (1 - share - removed + share * flopRatio);
}

/**
 * Which measured share the attention-FLOP ratio of a rewrite applies to, for its model bound: `core` for rules that
 * remove score work (sparse patterns: the QK-to-PV path shrinks, the projections stay), `site` for rules that remove
 * whole heads or blocks (pruning: the projections shrink with the scores), `none` when the analytic FLOPs do not bound
 * the gain (a fused kernel does the same FLOPs with less memory traffic; shared projections are not in the count).
 */
export type BoundScope = 'core' | 'site' | 'none';

/** The reference's measured shares of kernel time (from onnxruntime's profiler). */
export interface Shares {
  attentionShare: number | null;
  attentionCoreShare: number | null;
  /** The nodes outside the sites that only build their masks; absent or null where not measured (taken as 0). */
  maskBuildShare?: number | null;
}

/**
 * The whole model's speedup bound over a reference with `shares`, or null when there is none to state. For `core`
 * (sparse patterns) whose model no longer builds the full mask (`dropsMask`: the compute-reducing forms read one row
 * of it, computed without the rest; rewriters/sparse/last-row.ts), the reference's mask building goes too: at most
 * 1 / ((1 − c − m) + c·r). For `site` (pruning) the score path keeps `flopRatio` of its work and the rest of the
 * sites (projections, rotary) keeps `projectionRatio`; the two differ against a fused reference counted at its causal
 * work. An unknown projection ratio is taken as all of that work gone, so the bound stays a bound.
 */
export function modelBound(scope: BoundScope, shares: Shares, flopRatio: number | null, dropsMask = false, projectionRatio: number | null = null): number | null {
  if (flopRatio === null || scope === 'none') return null;
  if (scope === 'site') return siteBound(shares, flopRatio, projectionRatio ?? 0);
  if (shares.attentionCoreShare === null) return null;
  const mask = dropsMask ? shares.maskBuildShare ?? 0 : 0;
  return amdahl(shares.attentionCoreShare, flopRatio, mask);
}

/** 1 / ((1 − a) + c·r + (a − c)·p): the score path (share c) at ratio r, the rest of the sites at ratio p. */
function siteBound(shares: Shares, coreRatio: number, projectionRatio: number): number | null {
  const a = shares.attentionShare;
  if (a === null) return null;
  const c = shares.attentionCoreShare;
  if (c === null) return amdahl(a, Math.min(coreRatio, projectionRatio));
  return 1 / (1 - a + c * coreRatio + (a - c) * projectionRatio);
}

/**
 * Whether a profiled model builds no site mask of its own (its profile found no mask-building nodes to measure), so
 * that a reference's mask building is work it removed. Unknown (not profiled) counts as no.
 */
export function dropsMaskBuild(shares: Shares): boolean {
  return shares.attentionCoreShare !== null && (shares.maskBuildShare ?? null) === null;
}

/** A timed model as a comparison reads it: its paired runs, its measured shares, its attention FLOPs and their scope. */
export interface TimedForComparison {
  label: string;
  samplesMs: readonly number[];
  shares: Shares;
  /** Attention FLOPs; null when unknown (e.g. counted at another length). */
  flops: number | null;
  /** Which measured share of the reference its FLOP ratio bounds. */
  scope: BoundScope;
  /**
   * What computes its sites' scores and how wide their projections are (analysis/report/site-measures.ts); absent:
   * taken as the reference's kernels, projections unknown.
   */
  measures?: SiteMeasures;
}

export interface Comparison {
  speedup: Speedup;
  modelBound: number | null;
  /** Why there is no bound although the FLOPs are known; null otherwise. */
  boundNote: string | null;
  boundExceeded: boolean;
  verdict: Verdict;
  warning: string | null;
}

/**
 * `cur` against `ref` timed in the same interleaved run: the paired speedup (identity for the same model), the Amdahl
 * bound of the FLOPs it removes on `ref`'s measured shares, and what may be said of it. One definition for every report
 * of speedups over a chosen reference (bench:rewrites, the advisor's speed step).
 */
export function compareTimed(ref: TimedForComparison, cur: TimedForComparison): Comparison {
  const same = ref === cur;
  const s = same ? identity() : speedup(ref.samplesMs, cur.samplesMs);
  const ratio = ref.flops !== null && cur.flops !== null && ref.flops > 0 ? cur.flops / ref.flops : null;
  const projections = projectionRatio(ref.measures, cur.measures);
  const unlike = !same && !sameKernels(ref.measures, cur.measures);
  const bound = same ? 1 : unlike ? null : modelBound(cur.scope, ref.shares, ratio, dropsMaskBuild(cur.shares), projections);
  // Amdahl's bound assumes the remaining work runs as fast per FLOP as the reference's. Across kernels that does not
  // hold (measured: onnxruntime's CPU GroupQueryAttention is slower per FLOP than MLAS's products, so half the heads
  // written out ran 1.18× faster than the fused model with the same score FLOPs), and such a bound would call a real
  // gain a measurement problem.
  const boundNote = unlike && ratio !== null && cur.scope !== 'none' ? `no bound against ${ref.label}: its scores are computed by ${ref.measures?.kernels}, this model's by ${cur.measures?.kernels}, at another speed per FLOP` : null;
  return { speedup: s, modelBound: bound, boundNote, boundExceeded: exceedsBound(s, bound), verdict: verdict(s, bound), warning: boundWarning(s, bound, ref.label) };
}

/** Whether two models' scores are computed by the same kernels; unknown counts as the same. */
export function sameKernels(a: SiteMeasures | undefined, b: SiteMeasures | undefined): boolean {
  return a === undefined || b === undefined || a.kernels === b.kernels;
}

/** The projections' work of `cur` over `ref`'s, or null when either is unknown. */
export function projectionRatio(ref: SiteMeasures | undefined, cur: SiteMeasures | undefined): number | null {
  const [a, b] = [ref?.projectionWork, cur?.projectionWork];
  return a && b !== undefined && b !== null ? b / a : null;
}

/**
 * A speedup whose whole interval lies above its bound (what the removed FLOPs allow at most) cannot be a real gain:
 * the measurement is wrong (a busy moment slowed the reference, a different amount of work ran, too few runs).
 */
export function exceedsBound(s: Pick<Speedup, 'ci95'>, bound: number | null): boolean {
  return bound !== null && Number.isFinite(bound) && s.ci95[0] > bound;
}

export function boundWarning(s: Speedup, bound: number | null, against: string): string | null {
  if (!exceedsBound(s, bound)) return null;
  return `speedup ${f(s.ratio)}× over ${against} (95% CI ${f(s.ci95[0])}–${f(s.ci95[1])}) is above its bound of ${f(bound as number)}×: a measurement problem, not a win`;
}

export type Verdict = 'faster' | 'slower' | 'indistinguishable' | 'bound-exceeded';

/** What a table may say about a speedup: a win only when it is distinguishable from 1 and within its bound. */
export function verdict(s: Speedup, bound: number | null = null): Verdict {
  if (exceedsBound(s, bound)) return 'bound-exceeded';
  if (!s.significant) return 'indistinguishable';
  return s.ratio > 1 ? 'faster' : 'slower';
}
