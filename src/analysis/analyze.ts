// One call from a model file to the report: load (weights stay lazy), infer shapes, detect sites, describe them.
import * as path from 'node:path';
import { detectAttention } from './attention/detect';
import { maskBuildNodes } from './attention/mask-build';
import { nestedAttention } from './attention/nested';
import type { RawSite } from './attention/site';
import { describeInputs, maxPositions } from './inputs';
import { ShapeInfo } from './ir/shapes';
import { dtypeName } from './onnx/dtypes';
import type { Node } from './ir/graph';
import { loadModel, type Model } from './ir/load';
import { REPORT_SCHEMA_VERSION, type AnalysisReport, type ModelInfo, type SiteInfo } from './report/types';

export interface AnalyzeOptions {
  /**
   * Sequence length for the analytic cost figures. Default: the model's own length where every site's queries and
   * keys are fixed to one (a ViT's patch grid, set by its image size), else 1024.
   */
  seqLen?: number;
}

export function analyzeModel(file: string, options: AnalyzeOptions = {}): AnalysisReport {
  return analyzeLoaded(loadModel(file), options);
}

export function analyzeLoaded(model: Model, options: AnalyzeOptions = {}): AnalysisReport {
  return analyzeWithSites(model, options).report;
}

/** The report plus the matched sites with their references into the graph (for rewriters), in the same order. */
export function analyzeWithSites(model: Model, options: AnalyzeOptions = {}): { report: AnalysisReport; sites: RawSite[] } {
  const shapes = new ShapeInfo(model.graph);
  const { sites, unmatched, ctx } = detectAttention(model.graph, shapes);
  const seq = options.seqLen ?? fixedLength(sites, shapes) ?? DEFAULT_COST_LENGTH;
  const order = ctx.order;
  const warnings: string[] = [];
  if (model.unknownFields.length) {
    warnings.push(`the file has ${model.unknownFields.length} field(s) this version does not know; it can be analysed but not re-saved`);
  }
  const nested = nestedAttention(model.graph);
  if (nested.warning) warnings.push(nested.warning);
  const report = {
    schemaVersion: REPORT_SCHEMA_VERSION,
    model: modelInfo(model, shapes, sites, warnings),
    costSeqLen: seq,
    sites: withMaskBuild(sites.map((s, id) => siteInfo(s, id, seq, order)), maskBuildNodes(sites, model.graph.nodes), order),
    unmatched: [...unmatched, ...nested.unmatched],
    warnings,
  };
  return { report, sites };
}

/** Each site's mask-building nodes (mask-build.ts), in graph order, where it has any. */
function withMaskBuild(infos: SiteInfo[], build: Node[][], order: Map<Node, number>): SiteInfo[] {
  return infos.map((info, i) => {
    const nodes = build[i];
    if (!nodes.length) return info;
    return { ...info, maskBuild: [...nodes].sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0)).map((n) => n.name) };
  });
}

/** Cost figures of a model whose length is not fixed are given at this many positions. */
export const DEFAULT_COST_LENGTH = 1024;

/**
 * The one length every site's queries and keys are fixed to, when they are: a ViT exported for 32×32 images always
 * attends over 17 patches, and its cost at 1024 would describe a model that cannot exist.
 */
function fixedLength(sites: RawSite[], shapes: ShapeInfo): number | undefined {
  const lengths = new Set(sites.flatMap((s) => (s.binding ? [s.binding.queryPositions, s.binding.keyPositions] : scoreLengths(s, shapes))));
  const [only] = lengths;
  return lengths.size === 1 && typeof only === 'number' && only > 0 ? only : undefined;
}

/**
 * The queries and keys of a site the walk did not bind, read from the last two axes of the scores its Softmax takes
 * (LeViT's 16 patches). An axis that holds something else (GPT-BigCode's [batch, queries, heads, keys]) reads as
 * another length, so the model gets none.
 */
function scoreLengths(s: RawSite, shapes: ShapeInfo): (number | null)[] {
  const scores = s.anchor.opType === 'Softmax' ? shapes.shape(s.anchor.input(0)) : undefined;
  if (!scores || scores.length < 2) return [null];
  return scores.slice(-2).map((d) => (typeof d === 'number' ? d : null));
}

function siteInfo(s: RawSite, id: number, seq: number, order: Map<import('./ir/graph').Node, number>): SiteInfo {
  const nodes = [...s.nodes].sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0)).map((n) => n.name);
  const cost = attentionCost(s, seq);
  return {
    id,
    kind: s.kind,
    causal: s.causal,
    heads: s.heads,
    kvHeads: s.kvHeads,
    headDim: s.headDim,
    scale: s.scale,
    maskType: s.maskType,
    ...(s.window !== undefined ? { window: s.window } : {}),
    ...(s.softcap !== undefined ? { softcap: s.softcap } : {}),
    position: s.position,
    projections: s.projections,
    kvCache: s.kvCache,
    form: s.form,
    anchors: s.anchors,
    nodes,
    flops: cost?.flops ?? null,
    attnMatrixBytes: cost?.bytes ?? null,
    notes: s.notes,
    ...(s.binding ? { binding: s.binding } : {}),
    ...(s.plan ? { plan: s.plan } : {}),
  };
}

/**
 * Analytic cost of the attention core at `seq` query and key positions, batch 1: Q·Kᵀ and P·V are
 * 2·heads·seq²·headDim FLOPs each (softmax and masking are O(seq²) and left out). The attention matrix is
 * heads·seq² float32 values. A causal mask does not lower either: the dense graph computes the masked half too.
 */
export function attentionCost(s: Pick<RawSite, 'heads' | 'headDim' | 'vHeadDim'>, seq: number): { flops: number; bytes: number } | undefined {
  if (!s.heads || !s.headDim) return undefined;
  const dv = s.vHeadDim ?? s.headDim;
  return { flops: 2 * s.heads * seq * seq * (s.headDim + dv), bytes: 4 * s.heads * seq * seq };
}

function modelInfo(model: Model, shapes: ShapeInfo, sites: RawSite[], warnings: string[]): ModelInfo {
  const g = model.graph;
  const opHistogram: Record<string, number> = {};
  for (const n of g.nodes) opHistogram[n.qualifiedOp] = (opHistogram[n.qualifiedOp] ?? 0) + 1;
  let parameterCount = 0;
  for (const t of g.initializers.values()) parameterCount += t.size;
  const opsets: Record<string, number> = {};
  for (const [d, v] of model.opsets) opsets[d === '' ? 'ai.onnx' : d] = v;
  return {
    path: model.file,
    fileBytes: model.fileBytes,
    irVersion: model.irVersion,
    producer: [model.proto.producerName, model.proto.producerVersion].filter(Boolean).join(' '),
    opsets,
    nodeCount: g.nodes.length,
    initializerCount: g.initializers.size,
    parameterCount,
    externalDataFiles: model.externalFiles.map((f) => path.relative(path.dirname(model.file), f)),
    inputs: describeInputs(g, shapes, sites, warnings),
    outputs: g.outputs.map((v) => ({
      name: v.name,
      dtype: dtypeName(v.info?.type?.tensorType?.elemType ?? 0),
      shape: shapes.shape(v) ?? [],
    })),
    opHistogram,
    ...withMaxPositions(maxPositions(g)),
  };
}

function withMaxPositions(n: number | undefined): { maxPositions?: number } {
  return n === undefined ? {} : { maxPositions: n };
}
