// What the dashboard shows of each run, as the host puts it in the session snapshot: latency and speedups, accuracy,
// attention maps, evaluations, decoding, head importance, the advisor's frontier. Plain JSON (a snapshot is also
// what an exported HTML report embeds); only types are imported from the core. The messages that carry them are in
// src/protocol.ts, which re-exports everything here.
import type { HeadStats } from '../runtime/measure/attention-stats';
import type { OutputComparison, OutputMismatch } from '../runtime/measure/compare-outputs';
import type { Interval, Speedup } from '../runtime/measure/stats';
import type { BoundScope, Verdict } from '../runtime/measure/trust';
import type { SiteMeasures } from '../analysis/report/site-measures';
import type { CalibrationKind } from '../runtime/inputs/calibration';
import type { ExecutionProvider, GenerateStep } from '../runtime/protocol';
import type { BudgetKind, BudgetUnit } from '../rewriters/plan/budget';
import type { HeadPlanFile } from './head-plan';

/** 'original' or a variant's id. */
export type ModelKey = string;

export interface LatencySummary {
  p50: number;
  p90: number;
  mean: number;
  std: number;
  runs: number;
  /** Bootstrap 95% interval of the median. */
  ci95: Interval;
  /** Runs beyond Tukey's fences (1.5 × IQR outside the quartiles). */
  outliers: number;
}

export interface SpeedPoint {
  model: ModelKey;
  seq: number;
  latencyMs: LatencySummary;
  tokensPerSecond: number;
  /** Attention's share of kernel time (projections included), from onnxruntime's profiler; null when not profiled. */
  attentionShare: number | null;
  /** The score path's share (QK, mask, softmax, PV, and the nodes a rule added to the site): the part a sparse rule changes. */
  attentionCoreShare: number | null;
  /** The share of the nodes outside the sites that only build their masks (a sparse rule's fast form stops building them); absent in saved reports that predate it. */
  maskBuildShare?: number | null;
  /** Over the original at this length, runs paired by round (the original's own is the identity). */
  vsOriginal: Speedup;
  /** Over this length's dense baseline (see SpeedResults.baselines), paired the same way. */
  vsBaseline: Speedup;
  /** Reasons not to trust this point's timings (few runs, spread, outliers, a busy machine). */
  warnings: string[];
}

/** The fastest exact dense model at one length: the original, or a variant that only changes how attention is written. */
export interface SpeedBaseline {
  seq: number;
  model: ModelKey;
}

/** Analytic attention FLOPs of a variant at one sequence length, before and after its rewrite. */
export interface FlopBound {
  variant: string;
  seq: number;
  flopsBefore: number;
  flopsAfter: number;
}

/**
 * The key of the model the benchmark adds as the dense baseline when none of the variants it times computes exactly
 * what the original does: the original fused into the provider's fastest exact kernel (src/extension/dense-baseline.ts).
 * Session variants are `v1`, `v2`, ...
 */
export const DENSE_BASELINE = 'fused';

/**
 * Whether a variant computes exactly what the original computes: every rule it applies is of the structure family
 * (how attention is written, e.g. a fused kernel). Such a variant is a candidate for the dense baseline.
 */
export function isExactVariant(appliedRules: readonly string[], familyOf: (rule: string) => string | undefined): boolean {
  return appliedRules.length > 0 && appliedRules.every((r) => familyOf(r) === 'structure');
}

export interface SpeedResults {
  ep: ExecutionProvider;
  /** Timed runs at least per model and length; more when `minTimeMs` needed them. */
  iterations: number;
  /** Timing per length at least, in ms. */
  minTimeMs: number;
  warmup: number;
  seqs: number[];
  /**
   * Variants timed in this run (their labels at the time, so a later removal does not orphan the numbers), with the
   * share of kernel time their FLOP ratio applies to for the model bound (see trust.ts).
   */
  variants: { id: string; label: string; boundScope: BoundScope; measures?: SiteMeasures }[];
  /**
   * What computes the original's scores and how wide its projections are (the variants' in `variants`): a model bound
   * is stated only between models whose kernels agree. Absent in reports saved before it (taken as agreeing).
   */
  originalMeasures?: SiteMeasures;
  points: SpeedPoint[];
  /** Per length, the model every `vsBaseline` is measured against. */
  baselines: SpeedBaseline[];
  bounds: FlopBound[];
  warnings: string[];
  finishedAt: string;
}

export interface VariantAccuracy {
  variant: string;
  label: string;
  outputs: OutputComparison[];
  mismatched: OutputMismatch[];
  onlyInOriginal: string[];
  onlyInVariant: string[];
}

export interface AccuracyResults {
  ep: ExecutionProvider;
  /** Where the inputs came from: the calibration file, or a description of the synthesized ones. */
  inputs: string;
  variants: VariantAccuracy[];
  warnings: string[];
  finishedAt: string;
}

export interface AttentionMaps {
  site: number;
  /** The fed tokens as text, one per key position, when the inputs were text or a .bytes file; null otherwise. */
  tokens: string[] | null;
  /** Why the map has this many tokens, in words ("352 tokens: the largest map of 8 heads a dashboard draws; …"). */
  lengthNote: string;
  causal: boolean;
  /** The sparse pattern whose recall was measured (methods.md notation), when one was chosen. */
  pattern: string | null;
  /** [heads, queries, keys] of batch 0. */
  dims: [number, number, number];
  /** Row-major probabilities of batch 0, heads × queries × keys. */
  probabilities: number[];
  heads: HeadStats[];
  maxRowSumError: number;
  maxFutureMass: number;
  ep: ExecutionProvider;
  inputs: string;
  finishedAt: string;
}

/** The calibration data a dashboard runs on (null in the snapshot: synthesized inputs). */
export interface CalibrationInfo {
  file: string;
  kind: CalibrationKind;
  /** How its tokens were made ("tokenised with tokenizer.json", "bytes (a byte-level model)"). */
  how: string;
  /** Tokens in the file (token ids and text); null for an inputs file. */
  tokens: number | null;
  /** True when it came from the attentionLens.calibrationInputs setting rather than the dashboard. */
  fromSetting: boolean;
}

/** The task score (methods.md) of the original and each variant on the calibration text. */
export interface EvalResults {
  file: string;
  how: string;
  windows: number;
  windowLength: number;
  fileTokens: number;
  ep: ExecutionProvider;
  rows: { model: ModelKey; label: string; bitsPerToken: number; perplexity: number; tokensScored: number }[];
  finishedAt: string;
}

/** One model's decode step (one new token after `past` cached ones). */
export interface DecodePoint {
  model: ModelKey;
  past: number;
  latencyMs: LatencySummary;
  tokensPerSecond: number;
  /** Over the original at this past length, runs paired by round. */
  vsOriginal: Speedup;
  warnings: string[];
}

export interface DecodeResults {
  ep: ExecutionProvider;
  pasts: number[];
  variants: { id: string; label: string }[];
  points: DecodePoint[];
  warnings: string[];
  finishedAt: string;
}

/** A variant against the original over a greedy continuation (runtime/engine/generate.ts). */
export interface GenerationRow {
  variant: string;
  label: string;
  tokensOriginal: number[];
  tokensVariant: number[];
  agreedSteps: number;
  perStep: GenerateStep[];
  top1Agreement: number;
  meanKl: number;
  cached: boolean;
}

export interface GenerationResults {
  /** The prompt, in words. */
  prompt: string;
  steps: number;
  ep: ExecutionProvider;
  rows: GenerationRow[];
  /** The continuations as text, when the prompt came from text (token id → label); null otherwise. */
  pieces: Record<number, string> | null;
  finishedAt: string;
}

/** One site's heads as orchestrate/importance.ts scores them (restated here: the shared layer sits below orchestrate). */
export interface SiteImportance {
  site: number;
  heads: { head: number; outputChange: number; entropy: number | null; firstTokenMass: number | null; diagonalMass: number | null }[];
}

/** Head importance of every site (orchestrate/importance.ts), for the Heads view and the prune-heads plan. */
export interface ImportanceResults {
  output: string;
  metric: 'kl' | 'mean-abs';
  samples: number;
  inputs: string;
  sites: SiteImportance[];
  warnings: string[];
  finishedAt: string;
}

/** A measured score of the advisor (orchestrate/advisor/measure.ts): lower is better. */
export interface AdvisorScore {
  /** "bits per token", "KL (nats)", "1 − cosine". */
  metric: string;
  value: number;
}

/** One plan of the advisor's frontier: the plan found for a density budget, measured on the evaluation data. */
export interface AdvisorPlanPoint {
  budget: number;
  /** Its density (mean visible keys per query, as a share of dense attention). */
  density: number;
  plan: HeadPlanFile;
  /** The loss estimate whose plan was kept (the lowest calibration score among the candidates). */
  proxy: string;
  evaluation: AdvisorScore;
  /** Choices counted over all heads, e.g. { "window 64": 20, "dense": 2 }. */
  mix: Record<string, number>;
  /** Several lengths profiled: the plan (its span laws resolved) at each; the fields above are at the longest. */
  lengths?: { seq: number; density: number; evaluation: AdvisorScore }[];
  /** Its blocked form timed against the dense models (when the run asked for speed). */
  speed?: AdvisorPlanSpeed;
}

/** A speedup as the advisor's speed step states it: ratio of medians, paired 95% interval, verdict against its bound. */
export interface AdvisorSpeedup extends Speedup {
  modelBound: number | null;
  verdict: Verdict;
}

/** A frontier plan's blocked form, timed in the same interleaved run as the original and the fused model. */
export interface AdvisorPlanSpeed {
  latencyMs: { p50: number; ci95: Interval; runs: number };
  vsOriginal: AdvisorSpeedup;
  vsBaseline: AdvisorSpeedup;
  /** Sites split into head groups (the compute-reducing form), of the sites the plan names. */
  blockedSites: number;
  plannedSites: number;
}

/** The speed step's dense references and conditions. */
export interface AdvisorSpeedSummary {
  /** Tokens per run (synthesized inputs), or null for the inputs file's own shapes. */
  seq: number | null;
  ep: string;
  /** The best dense baseline: the faster exact model. */
  baseline: 'original' | 'fused';
  originalMs: number;
  /** The fused model's median, or null with the reason it could not be made. */
  fusedMs: number | null;
  fusedReason?: string;
  machine: string;
  otherCpuShare: number | null;
}

/** A uniform rule of the candidate set at a budget, measured the same way (or why not). */
export interface AdvisorBaseline {
  budget: number;
  family: string;
  rule: string | null;
  density: number | null;
  evaluation: AdvisorScore | null;
  reason?: string;
  /** The length it was measured at, when several were profiled. */
  seq?: number;
}

/** What the Advisor tab shows: the advisor's result (orchestrate/advisor/advisor.ts), restated without its profile's bulk. */
export interface AdvisorResults {
  seq: number;
  /** Several lengths profiled (the advisor's --seq 256,512), ascending, with the original model's score at each. */
  lengths?: { seq: number; dense: AdvisorScore | null }[];
  /** Why this window length, in words. */
  lengthNote: string;
  /** How the score is measured and on what data. */
  objective: string;
  /** Where the calibration data came from and how it was kept apart from the evaluation data. */
  calibration: string;
  /** Sites planned, with their query heads; sites left dense with the reason. */
  sites: { site: number; heads: number }[];
  skipped: { site: number; reason: string }[];
  dense: AdvisorScore | null;
  /** What the budgets are, e.g. "attention FLOPs ≤ 0.3 of dense" for the first (absent: densities). */
  budget?: string;
  /** The kind and unit of every budget of the run, in which each point's `budget` is (absent: densities, as before). */
  budgetUnit?: { kind: BudgetKind; unit: BudgetUnit };
  /** The first is the plan for the budget asked for. */
  frontier: AdvisorPlanPoint[];
  baselines: AdvisorBaseline[];
  /** The speed step (absent when the run did not time the plans). */
  speed?: AdvisorSpeedSummary | null;
  timings: { profileMs: number; searchMs: number; validateMs: number; speedMs?: number };
  warnings: string[];
  finishedAt: string;
}
