// Messages between the extension host and the dashboard webview, imported by both sides. Each direction is one union
// tagged by `type`. Names follow GitLens: a webview message that asks the host to do something is an `XxxRequest`
// (its outcome arrives as a change of the session, or as a failure notification), anything that only informs is an
// `XxxNotification`, and what the host reports is a `DidXxxNotification`.
//
// Everything here is plain JSON: a snapshot is also what the webview keeps with setState, what a panel serializer is
// handed after a reload, and what an exported HTML report embeds. Only types are imported from the core, so the
// webview bundle pulls in none of its code.
import type { AnalysisReport } from './analysis/report/types';
import type { RewriteReport } from './rewriters/pipeline';
import type { RuleFamily } from './rewriters/rule';
import type { HeadStats } from './runtime/measure/attention-stats';
import type { OutputComparison, OutputMismatch } from './runtime/measure/compare-outputs';
import type { Interval, Speedup } from './runtime/measure/stats';
import type { BoundScope } from './runtime/measure/trust';
import type { CalibrationKind } from './runtime/inputs/calibration';
import type { ExecutionProvider, GenerateStep } from './runtime/protocol';
import { type RuleStep, checkSteps } from './shared/rule-steps';

export type { RuleStep };

/** Element id of the session JSON embedded in an exported HTML report (the page renders it without a host). */
export const EMBEDDED_REPORT_ID = 'attention-lens-report';

export const TABS = ['overview', 'studio', 'speed', 'accuracy', 'maps', 'heads'] as const;
export type TabId = (typeof TABS)[number];

export function isTabId(value: unknown): value is TabId {
  return typeof value === 'string' && (TABS as readonly string[]).includes(value);
}

/** A registered rewrite rule, as the registry describes it. */
export interface RuleInfo {
  name: string;
  family: RuleFamily;
  summary: string;
}

/** What a set of rules would change, computed in memory before anything is written or run. */
export interface RewritePreview
  extends Pick<RewriteReport, 'seqLen' | 'applied' | 'flopsBefore' | 'flopsAfter' | 'bytesBefore' | 'bytesAfter' | 'warnings'> {
  /**
   * The rewrite as steps applied in order: each is one rule with its parameters (as declared in
   * src/shared/rule-decls.ts) and its own sites, which is how a rule gets different parameters on different sites.
   */
  steps: RuleStep[];
  nodesBefore: number;
  nodesAfter: number;
  parametersBefore: number;
  parametersAfter: number;
}

export interface Variant {
  /** Short and stable within a session: `v1`, `v2`, ... */
  id: string;
  label: string;
  steps: RuleStep[];
  preview: RewritePreview;
}

/** `original` or a variant id. */
export type ModelKey = string;
export const ORIGINAL: ModelKey = 'original';

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
  /** The score path's share (QK, mask, softmax, PV): the part a sparse rule changes. */
  attentionCoreShare: number | null;
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
  variants: { id: string; label: string; boundScope: BoundScope }[];
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

export interface ExportRecord {
  variant: string;
  model: string;
  json: string;
  html: string;
  /** The provider that loaded the exported file to check it, and the inputs and outputs it found. */
  check: string;
  /** Where its weights are: embedded, written, copied, or read in place from the original's data file. */
  weights?: string;
}

/** Work in progress, as the dashboard shows it (the same work has a cancellable notification). */
export interface TaskState {
  id: string;
  title: string;
  /** Fraction done in [0, 1], or null when unknown. */
  fraction: number | null;
  message: string;
  /** Runs are being timed: the dashboard stays still (no spinner, no redraws) so that it does not slow them. */
  timing: boolean;
}

export interface SessionSettings {
  executionProviders: ExecutionProvider[];
  sequenceLengths: number[];
  iterations: number;
  minTimeMs: number;
  warmup: number;
  mapsSequenceLength: number;
  calibrationInputs: string | null;
  outputFolder: string | null;
}

/** What a dashboard keeps with setState, as far as the host reads it back (the panel serializer). */
export interface SavedDashboardState {
  session?: SessionSnapshot | null;
}

export interface SessionSnapshot {
  modelPath: string;
  modelName: string;
  report: AnalysisReport | null;
  /** Why the analysis failed, in words, when it did. */
  analysisError: string | null;
  rules: RuleInfo[];
  /** The latest preview of the studio's draft, not yet kept as a variant. */
  draft: RewritePreview | null;
  variants: Variant[];
  speed: SpeedResults | null;
  accuracy: AccuracyResults | null;
  maps: AttentionMaps | null;
  /** Calibration data for accuracy, maps, evaluation and importance; null: synthesized inputs. */
  calibration: CalibrationInfo | null;
  evaluation: EvalResults | null;
  decode: DecodeResults | null;
  generation: GenerationResults | null;
  importance: ImportanceResults | null;
  exports: ExportRecord[];
  settings: SessionSettings;
}

// ---- host → webview ------------------------------------------------------------------------------------------------

export interface DidChangeSessionNotification {
  type: 'didChangeSession';
  session: SessionSnapshot;
}
/** Sent often while work runs; carries only the tasks so a progress tick does not resend the report. */
export interface DidChangeTasksNotification {
  type: 'didChangeTasks';
  tasks: TaskState[];
}
export interface DidFailNotification {
  type: 'didFail';
  title: string;
  message: string;
}
export interface DidRequestTabNotification {
  type: 'didRequestTab';
  tab: TabId;
}

export type HostMessage = DidChangeSessionNotification | DidChangeTasksNotification | DidFailNotification | DidRequestTabNotification;

// ---- webview → host ------------------------------------------------------------------------------------------------

export interface ReadyNotification {
  type: 'ready';
}
export interface PreviewRewriteRequest {
  type: 'previewRewrite';
  steps: RuleStep[];
}
export interface AddVariantRequest {
  type: 'addVariant';
  steps: RuleStep[];
  label: string;
}
export interface RemoveVariantRequest {
  type: 'removeVariant';
  id: string;
}
export interface BenchmarkRequest {
  type: 'benchmark';
}
export interface CompareAccuracyRequest {
  type: 'compareAccuracy';
}
export interface ShowAttentionMapsRequest {
  type: 'showAttentionMaps';
  site: number;
  pattern: string | null;
}
/** Asks the host for a file dialog: the chosen file becomes the dashboard's calibration data. */
export interface ChooseCalibrationRequest {
  type: 'chooseCalibration';
}
/** Back to synthesized inputs. */
export interface ClearCalibrationRequest {
  type: 'clearCalibration';
}
export interface EvaluateRequest {
  type: 'evaluate';
  /** Window length L and window count n (methods.md). */
  seq: number;
  windows: number;
}
export interface BenchmarkDecodeRequest {
  type: 'benchmarkDecode';
  /** Cached tokens before the one new token. */
  pasts: number[];
}
export interface CompareGenerationRequest {
  type: 'compareGeneration';
  steps: number;
}
export interface ComputeImportanceRequest {
  type: 'computeImportance';
}
export interface ExportRequest {
  type: 'export';
  variant: string;
}
export interface CancelTaskRequest {
  type: 'cancelTask';
  id: string;
}
export interface ShowLogRequest {
  type: 'showLog';
}

export type WebviewMessage =
  | ReadyNotification
  | PreviewRewriteRequest
  | AddVariantRequest
  | RemoveVariantRequest
  | BenchmarkRequest
  | CompareAccuracyRequest
  | ShowAttentionMapsRequest
  | ExportRequest
  | ChooseCalibrationRequest
  | ClearCalibrationRequest
  | EvaluateRequest
  | BenchmarkDecodeRequest
  | CompareGenerationRequest
  | ComputeImportanceRequest
  | CancelTaskRequest
  | ShowLogRequest;

const isString = (v: unknown): v is string => typeof v === 'string';
const isSiteId = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
/** A count a person typed: a positive integer below a bound that keeps a run finite. */
const isCount = (v: unknown, max: number): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= max;

/**
 * The host's check of what a webview sends: the webview runs page scripts, so its messages are validated like any
 * input before the host acts on them. Returns the typed message, or undefined for anything malformed.
 */
export function parseWebviewMessage(raw: unknown): WebviewMessage | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const m = raw as Record<string, unknown>;
  switch (m.type) {
    case 'ready':
    case 'benchmark':
    case 'compareAccuracy':
    case 'showLog':
    case 'chooseCalibration':
    case 'clearCalibration':
    case 'computeImportance':
      return { type: m.type };
    case 'evaluate':
      return isCount(m.seq, 1 << 20) && isCount(m.windows, 1 << 16) ? { type: 'evaluate', seq: m.seq, windows: m.windows } : undefined;
    case 'benchmarkDecode': {
      const pasts = m.pasts;
      if (!Array.isArray(pasts) || pasts.length === 0 || pasts.length > 16 || !pasts.every((p) => Number.isInteger(p) && p >= 0 && p <= 1 << 20)) return undefined;
      return { type: 'benchmarkDecode', pasts: [...(pasts as number[])] };
    }
    case 'compareGeneration':
      return isCount(m.steps, 1024) ? { type: 'compareGeneration', steps: m.steps } : undefined;
    case 'previewRewrite': {
      const steps = checkSteps(m.steps);
      return steps ? { type: 'previewRewrite', steps } : undefined;
    }
    case 'addVariant': {
      const steps = checkSteps(m.steps);
      return steps && isString(m.label) ? { type: 'addVariant', steps, label: m.label.slice(0, 200) } : undefined;
    }
    case 'removeVariant':
    case 'cancelTask':
      return isString(m.id) ? { type: m.type, id: m.id } : undefined;
    case 'export':
      return isString(m.variant) ? { type: 'export', variant: m.variant } : undefined;
    case 'showAttentionMaps':
      if (!isSiteId(m.site) || !(m.pattern === null || isString(m.pattern))) return undefined;
      return { type: 'showAttentionMaps', site: m.site, pattern: m.pattern };
    default:
      return undefined;
  }
}
