// Shared by the plan tests: plans written in the file notation, rewriting with rule requests, and a site's per-head
// output (the ·V product [B, H, S, D], before the heads are merged) exposed as an extra graph output so that a test
// can compare head slices between variants.
import * as path from 'node:path';
import { analyzeWithSites } from '../../src/analysis/analyze';
import { GraphBuilder } from '../../src/analysis/ir/builder';
import { loadModel, type Model } from '../../src/analysis/ir/load';
import type { Node, Value } from '../../src/analysis/ir/graph';
import { ShapeInfo } from '../../src/analysis/ir/shapes';
import type { AnalysisReport } from '../../src/analysis/report/types';
import { saveModel } from '../../src/analysis/ir/save';
import { rewriteInMemory, type RuleRequest } from '../../src/rewriters/pipeline';
import { parseHeadPlan, type HeadPlanFile } from '../../src/shared/head-plan';

export const HEAD_OUT = 'plan_test_heads';

export function plan(sites: Record<number, string[]>): HeadPlanFile {
  return parseHeadPlan({ version: 1, sites });
}

export function planRequest(sites: Record<number, string[]>, impl?: 'mask' | 'blocked'): RuleRequest {
  return { rule: 'plan', params: { plan: plan(sites), ...(impl ? { impl } : {}) } };
}

/**
 * Rewrites `input` (no requests: a copy; at `seqLen` when given) and saves it to `dir/tag.onnx`; with `headsOf`, the ·V output of that site
 * (as the rewritten model's analysis finds it) becomes the graph output HEAD_OUT.
 */
export function rewriteWithHeads(input: string, requests: RuleRequest[], dir: string, tag: string, headsOf?: number, seqLen?: number): string {
  const model = requests.length ? rewriteInMemory(input, requests, seqLen !== undefined ? { seqLen } : {}).model : loadModel(input);
  if (headsOf !== undefined) {
    const { sites } = analyzeWithSites(model);
    const raw = sites[headsOf];
    const pv = model.graph.nodeByName(raw.anchors.pv!)!;
    const b = new GraphBuilder(model);
    const out = b.op('Identity', [pv.outputs[0]], { name: 'plan_test_heads_node', output: HEAD_OUT });
    b.output(out, 'float32');
  }
  const file = path.join(dir, `${tag}.onnx`);
  saveModel(model, file);
  return file;
}

/** Rows of head h from a [1, H, S, D] tensor. */
export function headSlice(data: Float32Array, heads: number, h: number): Float32Array {
  const per = data.length / heads;
  return data.subarray(h * per, (h + 1) * per);
}

/**
 * The rank of the score product (Q·Kᵀ) behind every Softmax of a rewritten model, by the site anchor it belongs to
 * (its name up to `::`): a split site has one Softmax per head group, over [B, Hg, S, S] scores (rank 4) for a group
 * computed densely or with a mask, over [B, Hg, nb, R, C] (rank 5) for a blocked or gathered group. The product's
 * rank is read rather than the Softmax's own, which shape inference may lose where a mask broadcasts; undefined where
 * it cannot be read at all (counted as full by the tests).
 */
export function scoreRanks(model: Model): Map<string, (number | undefined)[]> {
  const shapes = new ShapeInfo(model.graph);
  const out = new Map<string, (number | undefined)[]>();
  for (const n of model.graph.nodes) {
    if (n.opType !== 'Softmax') continue;
    const anchor = n.name.includes('::') ? n.name.slice(0, n.name.indexOf('::')) : n.name;
    const product = scoreProduct(n.input(0));
    // A MatMul's output has the larger rank of its operands (where one operand's shape is lost, the other's tells).
    const ranks = product ? [product.outputs[0], ...product.inputs].map((x) => shapes.shape(x)?.length).filter((r) => r !== undefined) : [];
    out.set(anchor, [...(out.get(anchor) ?? []), ranks.length ? Math.max(...ranks) : undefined]);
  }
  return out;
}

/** The MatMul behind a Softmax's input, through the element-wise steps between them (breadth first). */
function scoreProduct(start: Value | null): Node | undefined {
  let frontier = start ? [start] : [];
  for (let depth = 0; depth < 8 && frontier.length; depth++) {
    const next: Value[] = [];
    for (const v of frontier) {
      const p = v.producer;
      if (!p) continue;
      if (p.opType === 'MatMul' || p.opType === 'FusedMatMul' || p.opType === 'Einsum') return p;
      if (['Add', 'Sub', 'Mul', 'Div', 'Where', 'Cast', 'Identity', 'Tanh'].includes(p.opType)) next.push(...p.inputs.filter((x): x is Value => x !== null));
    }
    frontier = next;
  }
  return undefined;
}

/**
 * Per rewritten site of a blocked plan: the ranks of its score products, and how many of them may hold a full S×S score
 * tensor (1 if the site keeps dense heads, else 0), for the assertion that every sparse group is blocked or gathered.
 */
export function fullScoreGroups(original: AnalysisReport, model: Model, changes: { site: number; after: Record<string, unknown> }[]) {
  const ranks = scoreRanks(model);
  return changes.map((c) => {
    const s = original.sites[c.site];
    const anchor = s.anchors.softmax ?? s.anchors.fused!;
    const r = ranks.get(anchor) ?? [];
    const heads = c.after.heads as string[];
    return { site: c.site, groups: r.length, full: r.filter((x) => x !== 5).length, allowed: heads.includes('dense') ? 1 : 0 };
  });
}

/** What `analyze` must read back from a planned model: each site once, its kept heads, the plan and its head groups. */
export interface ReadBack {
  site: number;
  anchor: string | undefined;
  heads: number | null;
  choices: string[] | null | undefined;
  groups: { heads: number[]; choice: string | null }[] | undefined;
}

const anchorOf = (s: AnalysisReport['sites'][number]) => s.anchors.softmax ?? s.anchors.fused;

/** The read-back expected of `original` planned with `sites` (`split`: the blocked form, whose sites are split). */
export function expectedReadBack(original: AnalysisReport, sites: Record<number, string[]>, split: boolean): ReadBack[] {
  return original.sites.map((s) => {
    const choices = sites[s.id];
    if (!choices) return { site: s.id, anchor: anchorOf(s), heads: s.heads, choices: undefined, groups: undefined };
    const kept = choices.filter((c) => c !== 'pruned');
    const order = [...new Set(kept)];
    const groups = split && order.length > 1 ? order.map((c) => ({ heads: kept.flatMap((k, n) => (k === c ? [n] : [])), choice: c })) : undefined;
    return { site: s.id, anchor: anchorOf(s), heads: kept.length, choices, groups };
  });
}

export function readBack(report: AnalysisReport): ReadBack[] {
  return report.sites.map((s) => ({ site: s.id, anchor: anchorOf(s), heads: s.heads, choices: s.plan?.choices, groups: s.plan?.groups }));
}
