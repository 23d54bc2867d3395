// Requests from the extension host to its core thread (analysis and rewriting, pure TypeScript), paired with their
// results so `CoreClient.request` is typed end to end. The core thread exists so that loading and analysing a large
// model, or rewriting it, never holds the extension host's event loop. onnxruntime stays in the runtime's own worker.
import type { AnalysisReport } from '../analysis/report/types';
import type { RewriteReport } from '../rewriters/pipeline';
import type { MapsSite } from '../runtime/protocol';
import type { FlopBound, RewritePreview, RuleInfo, RuleStep } from '../protocol';

export interface CoreRequestMap {
  analyze: { request: { type: 'analyze'; file: string; seqLen?: number }; result: AnalysisReport };
  rules: { request: { type: 'rules' }; result: RuleInfo[] };
  preview: { request: { type: 'preview'; file: string; steps: RuleStep[]; seqLen?: number }; result: RewritePreview };
  /**
   * Writes the rewritten model to `output` (the save refuses the input and its data files). `external` writes every
   * weight to `<output>.data`, so an export never depends on the original's data file.
   */
  write: {
    request: { type: 'write'; file: string; steps: RuleStep[]; output: string; seqLen?: number; externalData?: 'auto' | 'external' };
    result: RewriteReport;
  };
  /** Analytic attention FLOPs before and after the rewrite at each sequence length (the speed chart's bound). */
  bounds: { request: { type: 'bounds'; file: string; variant: string; steps: RuleStep[]; seqs: number[] }; result: FlopBound[] };
  /** A temporary copy of the model with the sites' probabilities as outputs; the caller removes `dir`. */
  exposeMaps: { request: { type: 'exposeMaps'; file: string; sites: number[] }; result: { model: string; dir: string; sites: MapsSite[] } };
}

export type CoreRequestType = keyof CoreRequestMap;
export type CoreRequest = CoreRequestMap[CoreRequestType]['request'];
export type CoreResultOf<R extends CoreRequest> = CoreRequestMap[R['type']]['result'];

export type CoreReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; message: string; userError: boolean; stack?: string };
