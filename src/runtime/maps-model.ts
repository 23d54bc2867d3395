// A temporary copy of a model whose graph outputs also include the attention probabilities of chosen sites, so one
// run returns the maps. This runs on the caller's side (pure TypeScript, the analysis' load/save) and never touches
// the user's file: the copy goes to a fresh temporary folder that `cleanup` removes.
//
// Where the probabilities come from:
//   - unfused sites: the output of the site's Softmax node;
//   - ONNX `Attention` (opset 23+): its optional 4th output with `qk_matmul_output_mode = 3` (after the softmax);
//   - `com.microsoft.GroupQueryAttention`: its optional 4th output `output_qk` with `qk_output = 2` (after softmax).
// Other fused operators give at most the pre-softmax scores, which would need their masking re-done here; they are
// refused with that reason rather than approximated.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { type Model, type Node, type Value, loadModel, saveModel } from '../analysis';
import type { SiteInfo } from '../analysis/report/types';
import { GraphBuilder } from '../analysis/ir/builder';
import { toNum } from '../analysis/onnx/long';
import { fusedKey } from '../analysis/attention/fused';
import { exposesProbabilities, fusedProbabilities } from '../rewriters/probabilities';
import type { MapsSite } from './protocol';

const FLOAT = 1;

export interface ExposedMaps {
  model: string;
  sites: MapsSite[];
  cleanup: () => void;
}

/** The element type of a value, from its declaration or by walking back through type-preserving ops. */
function elemTypeOf(v: Value | null, depth = 0): number | undefined {
  if (!v || depth > 64) return undefined;
  const declared = v.info?.type?.tensorType?.elemType;
  if (typeof declared === 'number' && declared > 0) return declared;
  if (v.initializer) return v.initializer.dataType;
  const p = v.producer;
  if (!p) return undefined;
  if (p.opType === 'Cast') {
    const to = p.attr('to')?.i;
    return to === undefined || to === null ? undefined : toNum(to as never);
  }
  // Softmax, Add, Mul, Div, MatMul, Where (value inputs), ...: the first float-typed input decides.
  for (const input of p.opType === 'Where' ? p.inputs.slice(1) : p.inputs) {
    const t = elemTypeOf(input, depth + 1);
    if (t !== undefined && t !== 9 /* bool */ && t !== 7 /* int64 */ && t !== 6 /* int32 */) return t;
  }
  return undefined;
}

function exposeFused(b: GraphBuilder, node: Node, site: SiteInfo): Value {
  if (!exposesProbabilities(fusedKey(node))) {
    const qualified = node.domain && node.domain !== 'ai.onnx' ? `${node.domain}.${node.opType}` : node.opType;
    throw new Error(`site ${site.id}: ${qualified} does not expose its attention probabilities (only the unfused form, ONNX Attention and GroupQueryAttention do)`);
  }
  // The copy is only read for its maps, so an output the operator already exports may be switched to them.
  return fusedProbabilities(b, node, `${node.name || 'attention'}_probs`, { switchInUse: true });
}

/**
 * @param sites the analysis' sites to expose (their `causal` flag travels with them so the statistics can check it,
 *              their head counts so that the output's axes can be split per head).
 */
export function exposeAttentionMaps(modelPath: string, sites: SiteInfo[]): ExposedMaps {
  if (sites.length === 0) throw new Error('no sites to expose');
  const model: Model = loadModel(modelPath);
  const b = new GraphBuilder(model);
  const out: MapsSite[] = [];
  for (const site of sites) {
    let value: Value;
    if (site.anchors.softmax) {
      const node = b.graph.nodeByName(site.anchors.softmax);
      if (!node) throw new Error(`site ${site.id}: softmax node ${site.anchors.softmax} is not in the graph`);
      value = node.outputs[0];
    } else if (site.anchors.fused) {
      const node = b.graph.nodeByName(site.anchors.fused);
      if (!node) throw new Error(`site ${site.id}: fused node ${site.anchors.fused} is not in the graph`);
      value = exposeFused(b, node, site);
    } else {
      throw new Error(`site ${site.id}: the analysis found no softmax or fused attention node`);
    }
    if (!value.isGraphOutput) b.output(value, elemTypeOf(value) ?? FLOAT);
    out.push({ site: site.id, output: value.name, causal: site.causal, heads: site.heads, kvHeads: site.kvHeads });
  }
  const dir = mkdtempSync(join(tmpdir(), 'attention-lens-maps-'));
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  try {
    const file = join(dir, basename(modelPath).replace(/\.onnx$/i, '') + '.maps.onnx');
    saveModel(model, file);
    return { model: file, sites: out, cleanup };
  } catch (e) {
    cleanup();
    throw e;
  }
}
