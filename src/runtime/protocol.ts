// Messages between the runtime client (extension host, CLI, tests) and the worker process that owns onnxruntime.
// Requests are a union tagged by `type`; `RequestMap` pairs each with its result so `RuntimeClient.request` is typed end
// to end. Everything here is structured-clone safe (the worker is forked with `serialization: 'advanced'`), so tensors
// travel as typed arrays.
import type { InputInfo } from '../analysis/report/types';
import type { InputSignature } from './inputs/roles';
import type { ResolvedShape, SynthesisOptions } from './inputs/synthesize';
import type { MapStats } from './measure/attention-stats';
import type { ScoreLayout } from './measure/score-layout';
import type { OutputComparison, OutputMismatch } from './measure/compare-outputs';
import type { KernelProfile, SiteNodes } from './measure/profile-trace';
import type { LatencyStats } from './measure/stats';
import type { TaskScore } from './measure/task-score';
import type { HostTensor } from './tensor';

export const EXECUTION_PROVIDERS = ['cpu', 'cuda', 'webgpu', 'dml', 'coreml'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

export function isExecutionProvider(s: string): s is ExecutionProvider {
  return (EXECUTION_PROVIDERS as readonly string[]).includes(s);
}

export interface SessionSettings {
  /** One provider, or a preference order; the first that loads runs. Default `cpu`. CPU is always the last resort. */
  ep?: ExecutionProvider | ExecutionProvider[];
  /** Threads inside one operator; default: onnxruntime's (the physical cores). */
  intraOpThreads?: number;
  graphOptimization?: 'disabled' | 'basic' | 'extended' | 'all';
}

/** Which provider ran, and why it is not the first one asked for (never a silent fallback). */
export interface ProviderReport {
  requested: ExecutionProvider[];
  used: ExecutionProvider;
  /** One line per provider that failed to load, with onnxruntime's reason. */
  warnings: string[];
}

/**
 * Where a request's inputs come from: tensors from `file` (see inputs/load.ts for the forms) and `tensors`, the rest
 * synthesized from the model's inputs (`infos` from the analysis, when the caller has it, gives roles and vocab sizes).
 */
export interface InputSource {
  file?: string;
  tensors?: Record<string, HostTensor>;
  synthesis?: SynthesisOptions;
  infos?: InputInfo[];
}

/** What the worker fed: shapes only (the data can be asked for with `run`). */
export interface FedInputs {
  shapes: Record<string, { dtype: string; dims: number[] }>;
  /** Names that were synthesized rather than given. */
  synthesized: string[];
  shape: ResolvedShape;
  warnings: string[];
}

// ---- requests ----------------------------------------------------------------------------------------------------

export interface InspectRequest {
  type: 'inspect';
  model: string;
  settings?: SessionSettings;
}
export interface InspectResult {
  provider: ProviderReport;
  inputs: InputSignature[];
  outputs: InputSignature[];
}

export interface RunRequest {
  type: 'run';
  model: string;
  settings?: SessionSettings;
  inputs?: InputSource;
  /** Return only these outputs (default all). */
  outputNames?: string[];
  /** Also return the fed input tensors (e.g. to reuse synthesized inputs elsewhere). */
  returnInputs?: boolean;
}
export interface RunResult {
  provider: ProviderReport;
  fed: FedInputs;
  outputs: Record<string, HostTensor>;
  inputs?: Record<string, HostTensor>;
  latencyMs: number;
}

/** One model under benchmark; `sites` (from the analysis) lets the profiler attribute kernel time to attention. */
export interface BenchModel {
  path: string;
  sites?: SiteNodes[];
  infos?: InputInfo[];
}

/** A point of a sweep: `seq` new tokens after `past` cached ones (a decode sweep is seq 1 at several pasts). */
export interface SweepPoint {
  seq: number;
  past: number;
}

export interface BenchRequest {
  type: 'bench';
  models: BenchModel[];
  settings?: SessionSettings;
  /** Inputs for every model and point; when a file is given, its shapes fix the point and `points` must be absent. */
  inputs?: InputSource;
  /** Default: one point at the synthesis defaults. */
  points?: SweepPoint[];
  batch?: number;
  /** Default 2. */
  warmup?: number;
  /**
   * Timed rounds per point continue until both `minRuns` rounds (default 10) and `minTimeMs` of timing (default 0)
   * are reached, and stop at `maxRuns` rounds (default the larger of 1000 and minRuns) whichever is first. A round
   * runs every model once, so each model gets one run per round.
   */
  minRuns?: number;
  minTimeMs?: number;
  maxRuns?: number;
  /** Exactly this many rounds (minRuns = maxRuns = iters, no minimum time); not combined with the three above. */
  iters?: number;
  /** Profiled runs per model and point for attention's share (0 = no profiling). Default 3. */
  profileRuns?: number;
}

export interface BenchEntry {
  model: string;
  /** The provider that ran. */
  ep: ExecutionProvider;
  provider: ProviderReport;
  /**
   * New tokens per sequence. A model without a sequence input (an image encoder) reports the sequence length of its
   * first rank-3 output (patches plus class tokens), or 1 when it has none (one item per run).
   */
  seq: number;
  past: number;
  batch: number;
  /** Tokens processed per run (batch × seq). */
  tokensPerRun: number;
  sessionCreateMs: number;
  warmupMs: number[];
  latencyMs: LatencyStats;
  /**
   * Every timed run in round order: index i of every model of the same point comes from the same round, so two
   * entries' samples pair up run by run (see speedup() in measure/stats.ts).
   */
  samplesMs: number[];
  /** Other processes' share of the machine's CPU time during this point's timed runs; null when unknown. */
  otherCpuShare: number | null;
  /** Reasons not to trust these timings (few runs, spread, outliers, a busy machine); see measure/trust.ts. */
  timingWarnings: string[];
  /** tokensPerRun / mean latency. */
  tokensPerSecond: number;
  /** The worker's resident-set high-water mark after this point's timed runs (all models of the request share one worker). */
  peakRssMB: number;
  /** Attention's share of kernel time; null without sites or profiling. */
  attentionShare: number | null;
  profile: KernelProfile | null;
  inputWarnings: string[];
}
export interface BenchResult {
  results: BenchEntry[];
}

export interface CompareRequest {
  type: 'compare';
  /** The reference. */
  a: string;
  /** The variant. */
  b: string;
  settings?: SessionSettings;
  inputs?: InputSource;
}
export interface CompareResult {
  providerA: ProviderReport;
  providerB: ProviderReport;
  fed: FedInputs;
  outputs: OutputComparison[];
  /** Outputs present in both but not comparable (e.g. different shapes). */
  mismatched: OutputMismatch[];
  onlyInA: string[];
  onlyInB: string[];
}

export interface EvalRequest {
  type: 'eval';
  model: string;
  settings?: SessionSettings;
  /** A token file (.bytes, .npy, .json) or the ids themselves (see inputs/calibration.ts for text). */
  tokens: string | number[] | Int32Array;
  /** Window length L. Default 512. */
  seq?: number;
  /** Window count n. Default 64. */
  windows?: number;
  /** Windows per run. Default 1. */
  batch?: number;
  /** Output holding the logits; default `logits` or the only rank-3 float output. */
  logitsOutput?: string;
  infos?: InputInfo[];
}
export interface EvalResult extends TaskScore {
  provider: ProviderReport;
  logitsOutput: string;
  elapsedMs: number;
}

export interface GenerateRequest {
  type: 'generate';
  /** The reference. */
  a: string;
  /** The variant. */
  b: string;
  settings?: SessionSettings;
  /** The prompt's token ids; without them, `promptLength` synthesized ids. */
  prompt?: number[];
  promptLength?: number;
  /** Tokens generated greedily after the prompt. */
  steps: number;
  infos?: InputInfo[];
}
/** Step i compares the next-token distributions after the prompt and the reference's first i tokens. */
export interface GenerateStep {
  /** KL(reference ‖ variant) in nats. */
  kl: number;
  /** Both put the same token first. */
  top1: boolean;
}
export interface GenerateResult {
  providerA: ProviderReport;
  providerB: ProviderReport;
  prompt: number[];
  /** The reference's greedy continuation. */
  tokensA: number[];
  /** The variant's own greedy continuation. */
  tokensB: number[];
  /** Steps before the two continuations first differ (all of them when they never do). */
  agreedSteps: number;
  /** The variant fed the reference's tokens (teacher forcing), step by step. */
  perStep: GenerateStep[];
  top1Agreement: number;
  meanKl: number;
  /** Whether each model decoded with its KV cache (one token per run) rather than re-running the whole sequence. */
  cachedA: boolean;
  cachedB: boolean;
}

/** One attention site whose probabilities are exposed as a graph output of `model`. */
export interface MapsSite {
  site: number;
  output: string;
  causal: boolean;
  /** The analysis' query and KV head counts: they tell how the output's axes split (measure/score-layout.ts). */
  heads: number | null;
  kvHeads: number | null;
}
export interface MapsRequest {
  type: 'maps';
  /** A model whose outputs include the sites' softmax outputs (see maps-model.ts). */
  model: string;
  sites: MapsSite[];
  settings?: SessionSettings;
  inputs?: InputSource;
  /** A sparse rule (methods.md notation) whose recall to measure, e.g. "window 64". */
  pattern?: string;
  /** Return the probabilities themselves (batch item 0) as well as the statistics. Default true. */
  includeProbabilities?: boolean;
}
interface SiteMapBase {
  site: number;
  output: string;
  /** The dims of the output as the model returned it. */
  dims: number[];
}
export interface KnownSiteMap extends SiteMapBase {
  layout: ScoreLayout;
  /** One entry per query head, over every batch item and window. */
  stats: MapStats;
  /** Batch item 0 as [heads, queries, keys], or [windows, heads, queries, keys] for windowed attention. */
  probabilities?: HostTensor;
}
/** A map whose layout could not be read: no statistics rather than statistics of mixed-up heads. */
export interface UnknownSiteMap extends SiteMapBase {
  unknown: string;
}
export type SiteMap = KnownSiteMap | UnknownSiteMap;
export interface MapsResult {
  provider: ProviderReport;
  fed: FedInputs;
  pattern?: string;
  sites: SiteMap[];
}

export interface RequestMap {
  inspect: { request: InspectRequest; result: InspectResult };
  run: { request: RunRequest; result: RunResult };
  bench: { request: BenchRequest; result: BenchResult };
  compare: { request: CompareRequest; result: CompareResult };
  eval: { request: EvalRequest; result: EvalResult };
  maps: { request: MapsRequest; result: MapsResult };
  generate: { request: GenerateRequest; result: GenerateResult };
}
export type RequestType = keyof RequestMap;
export type Request = RequestMap[RequestType]['request'];
export type ResultOf<R extends Request> = RequestMap[R['type']]['result'];

// ---- wire messages -------------------------------------------------------------------------------------------------

export type ClientMessage =
  | { type: 'request'; id: number; request: Request }
  | { type: 'cancel'; id: number };

export interface ProgressEvent {
  /** What is happening, e.g. `warmup`, `timed`, `profile`, `window`. */
  phase: string;
  done: number;
  total: number;
  message?: string;
}

export type ErrorCode =
  /** The request was cancelled by the caller. */
  | 'cancelled'
  /** The worker process died (killed, crashed, out of memory) while the request was pending. */
  | 'worker-exited'
  /** The request failed inside the worker (bad model, bad inputs, onnxruntime error). */
  | 'failed';

export type WorkerMessage =
  | { type: 'progress'; id: number; progress: ProgressEvent }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; code: ErrorCode; message: string; stack?: string };
