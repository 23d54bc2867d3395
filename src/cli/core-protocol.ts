// Requests from the extension host to its core thread (analysis and rewriting, pure TypeScript), paired with their
// results so `CoreClient.request` is typed end to end. The core thread exists so that loading and analysing a large
// model, or rewriting it, never holds the extension host's event loop. onnxruntime stays in the runtime's own worker;
// work that also runs models (the advisor) reaches it through the host's client (runtime/relay.ts).
import type { MessagePort } from 'node:worker_threads';
import type { WorkProgress } from '../analysis/onnx/progress';
import type { AnalysisReport, InputInfo } from '../analysis/report/types';
import type { RewriteReport, RuleRequest } from '../rewriters/pipeline';
import type { Calibration } from '../runtime/inputs/calibration';
import type { AdviceResult, AdviseOptions } from '../orchestrate/advisor/advisor';
import type { ErrorCode, MapsSite, ProgressEvent } from '../runtime/protocol';
import type { FlopBound, RewritePreview, RuleInfo, RuleStep } from '../protocol';

export interface CoreRequestMap {
  analyze: { request: { type: 'analyze'; file: string; seqLen?: number }; result: AnalysisReport };
  rules: { request: { type: 'rules' }; result: RuleInfo[] };
  preview: { request: { type: 'preview'; file: string; steps: RuleStep[]; seqLen?: number }; result: RewritePreview };
  /**
   * Writes the rewritten model to `output` (the save refuses the input and its data files), streaming its weights.
   * Unchanged weights in the original's data file are referenced when the output is in that folder, unless
   * `copyExternal` asks for a self-contained copy (outside that folder they are always copied). The rules are `steps`
   * (checked against the rule declarations, as the dashboard sends them) followed by `requests` (already parsed).
   */
  write: {
    request: {
      type: 'write'; file: string; steps: RuleStep[]; requests?: RuleRequest[]; output: string; seqLen?: number;
      externalData?: 'auto' | 'embed' | 'external'; copyExternal?: boolean;
      /** `fp16`: float16 weights and computation after the rules (rewriters/precision/fp16.ts). */
      precision?: 'fp32' | 'fp16';
    };
    result: RewriteReport;
  };
  /** Analytic attention FLOPs before and after the rewrite at each sequence length (the speed chart's bound). */
  bounds: { request: { type: 'bounds'; file: string; variant: string; steps: RuleStep[]; seqs: number[] }; result: FlopBound[] };
  /** Calibration data read for a model (runtime/inputs/calibration.ts): text is tokenised here, off the host's loop. */
  calibration: { request: { type: 'calibration'; file: string; model: string; infos?: InputInfo[] }; result: Calibration };
  /** A temporary copy of the model with the sites' probabilities as outputs; the caller removes `dir`. */
  exposeMaps: { request: { type: 'exposeMaps'; file: string; sites: number[] }; result: { model: string; dir: string; sites: MapsSite[] } };
  /**
   * The advisor (orchestrate/advisor/advisor.ts) on `file`: its analysis, rewrites and search here, its runs in the
   * host's runtime worker through the port the host passes with the request (CoreClient.request's `runtime`).
   */
  advise: {
    request: { type: 'advise'; file: string; options: Omit<AdviseOptions, 'onProgress' | 'signal'> };
    result: AdviceResult;
    progress: ProgressEvent;
  };
}

export type CoreRequestType = keyof CoreRequestMap;
export type CoreRequest = CoreRequestMap[CoreRequestType]['request'];
export type CoreResultOf<R extends CoreRequest> = CoreRequestMap[R['type']]['result'];
/** A request's progress events: a rewrite's (load, rewrite, save), or the advisor's runtime-style phases. */
export type CoreProgressOf<R extends CoreRequest> = CoreRequestMap[R['type']] extends { progress: infer P } ? P : WorkProgress;

/**
 * What the host posts: the request, a one-word shared flag it sets to ask the thread to stop, and for requests that run
 * models a port served by the host's runtime client (runtime/relay.ts).
 */
export interface CoreMessage {
  id: number;
  request: CoreRequest;
  cancel?: SharedArrayBuffer;
  runtime?: MessagePort;
}

export type CoreReply =
  | { id: number; ok: true; result: unknown }
  /** `runtime`: the error came from the runtime worker (with its code), and is raised on the host as the same kind. */
  | { id: number; ok: false; message: string; userError: boolean; cancelled?: boolean; runtime?: ErrorCode; stack?: string }
  /** Progress of a long request (a write, the advisor), before its result. */
  | { id: number; progress: WorkProgress | ProgressEvent };
