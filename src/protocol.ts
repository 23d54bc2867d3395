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
import type { ExecutionProvider } from './runtime/protocol';
import { type Budget, isBudget } from './shared/budget';
import { type RuleStep, checkSteps } from './shared/rule-steps';
import type { ModelKey, SpeedResults, AccuracyResults, AttentionMaps, CalibrationInfo, EvalResults, DecodeResults, GenerationResults, ImportanceResults, AdvisorResults } from './shared/run-results';

export type { RuleStep };
export type * from './shared/run-results';

/** Element id of the session JSON embedded in an exported HTML report (the page renders it without a host). */
export const EMBEDDED_REPORT_ID = 'attention-lens-report';

export const TABS = ['overview', 'studio', 'speed', 'accuracy', 'maps', 'heads', 'advisor'] as const;
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
export const ORIGINAL: ModelKey = 'original';

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
  /** The Advisor tab's latest run; absent in snapshots saved before the tab existed. */
  advisor?: AdvisorResults | null;
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
/** Runs the advisor on the calibration data: the first budget is the plan asked for, all make the frontier. */
export interface AdviseRequest {
  type: 'advise';
  /** Density budgets in (0, 1] as numbers, or budgets of one other kind and unit (src/shared/budget.ts). */
  budgets: (number | Budget)[];
  /** Time each plan's blocked form against the dense models at this many tokens (absent: not timed). */
  benchSeq?: number;
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
  | AdviseRequest
  | CancelTaskRequest
  | ShowLogRequest;

const isString = (v: unknown): v is string => typeof v === 'string';
const isSiteId = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
/** A count a person typed: a positive integer below a bound that keeps a run finite. */
const isCount = (v: unknown, max: number): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= max;

/** A density budget: a share of dense attention in (0, 1]. */
const isDensity = (v: unknown): v is number => typeof v === 'number' && v > 0 && v <= 1;
/** Budgets in one advisor run: each one is a search and several measured models. */
export const MAX_BUDGETS = 6;

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
    case 'advise': {
      const budgets = m.budgets;
      if (!Array.isArray(budgets) || budgets.length === 0 || budgets.length > MAX_BUDGETS) return undefined;
      if (m.benchSeq !== undefined && !isCount(m.benchSeq, 1 << 20)) return undefined;
      const bench = m.benchSeq !== undefined ? { benchSeq: m.benchSeq as number } : {};
      if (budgets.every(isDensity)) return { type: 'advise', budgets: [...(budgets as number[])], ...bench };
      if (!budgets.every(isBudget) || budgets.some((b) => b.kind !== budgets[0].kind || b.unit !== budgets[0].unit)) return undefined;
      return { type: 'advise', budgets: budgets.map((b) => ({ kind: b.kind, unit: b.unit, value: b.value })), ...bench };
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
