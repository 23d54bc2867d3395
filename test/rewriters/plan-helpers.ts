// Shared by the plan tests: plans written in the file notation, rewriting with rule requests, and a site's per-head
// output (the ·V product [B, H, S, D], before the heads are merged) exposed as an extra graph output so that a test
// can compare head slices between variants.
import * as path from 'node:path';
import { analyzeWithSites } from '../../src/analysis/analyze';
import { GraphBuilder } from '../../src/analysis/ir/builder';
import { loadModel } from '../../src/analysis/ir/load';
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
 * Rewrites `input` (no requests: a copy) and saves it to `dir/tag.onnx`; with `headsOf`, the ·V output of that site
 * (as the rewritten model's analysis finds it) becomes the graph output HEAD_OUT.
 */
export function rewriteWithHeads(input: string, requests: RuleRequest[], dir: string, tag: string, headsOf?: number): string {
  const model = requests.length ? rewriteInMemory(input, requests).model : loadModel(input);
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
