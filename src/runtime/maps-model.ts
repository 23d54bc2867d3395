// A temporary copy of a model whose graph outputs also include the attention probabilities of chosen sites, so one
// run returns the maps. This runs on the caller's side (pure TypeScript, the analysis' load/save) and never touches
// the user's file: the copy goes to a fresh temporary folder that `cleanup` removes.
//
// Where the probabilities come from:
//   - unfused sites: the output of the site's Softmax node;
//   - ONNX `Attention` (opset 23+): its optional 4th output with `qk_matmul_output_mode = 3` (after the softmax);
//   - `com.microsoft.GroupQueryAttention`: its optional 4th output `output_qk` with `qk_output = 2` (after softmax).
// Other fused operators (com.microsoft MultiHeadAttention, Attention) give at most the pre-softmax scores: the copy
// writes them out exactly (as `rewrite --expand` does) and reads the written-out Softmax.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { type Model, type Node, type Value, loadModel, saveModel } from '../analysis';
import type { SiteInfo } from '../analysis/report/types';
import { GraphBuilder } from '../analysis/ir/builder';
import { toNum } from '../analysis/onnx/long';
import { fusedKey } from '../analysis/attention/fused';
import { ShapeInfo } from '../analysis/ir/shapes';
import { ExpandError, expandFused, refusal } from '../rewriters/expand/expand-fused';
import { exposesProbabilities, fusedProbabilities } from '../rewriters/probabilities';
import { SITE_OPS_OPSET } from '../rewriters/sparse/ops';
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

/** A refusal the user can act on (the CLI prints it as one line, not as an internal error). */
function mapsError(message: string): Error {
  return Object.assign(new Error(message), { userError: true });
}

function exposeFused(b: GraphBuilder, node: Node, site: SiteInfo, shapes: () => ShapeInfo): Value {
  if (!exposesProbabilities(fusedKey(node))) return expandForMaps(b, node, site, shapes());
  // The copy is only read for its maps, so an output the operator already exports may be switched to them.
  return fusedProbabilities(b, node, `${node.name || 'attention'}_probs`, { switchInUse: true });
}

/**
 * Operators that give at most pre-softmax scores (com.microsoft MultiHeadAttention and Attention) are written out in
 * the copy, exactly as `rewrite --expand` does, and the maps are the written-out Softmax's output. The shapes are
 * those of the graph before any site was written out (as for `--expand`): each operator is checked against them.
 */
function expandForMaps(b: GraphBuilder, node: Node, site: SiteInfo, shapes: ShapeInfo): Value {
  const refused = refusal(node, shapes);
  if (refused) throw mapsError(`site ${site.id}: ${node.domain ? `${node.domain}.` : ''}${node.opType} exposes no attention probabilities and cannot be written out to read them: ${refused}`);
  if ((b.model.opsets.get('') ?? 0) < SITE_OPS_OPSET) b.setOpset('', SITE_OPS_OPSET);
  try {
    return expandFused(b, shapes, node).outputs[0];
  } catch (e) {
    if (e instanceof ExpandError) throw mapsError(`site ${site.id}: cannot write out ${node.opType} to read its probabilities: ${e.message}`);
    throw e;
  }
}

/**
 * @param sites the analysis' sites to expose (their `causal` flag travels with them so the statistics can check it,
 *              their head counts so that the output's axes can be split per head).
 */
export function exposeAttentionMaps(modelPath: string, sites: SiteInfo[]): ExposedMaps {
  if (sites.length === 0) throw new Error('no sites to expose');
  const model: Model = loadModel(modelPath);
  const b = new GraphBuilder(model);
  let before: ShapeInfo | undefined;
  const shapes = () => (before ??= new ShapeInfo(b.graph));
  shapes(); // before any edit
  const out: MapsSite[] = [];
  for (const site of sites) {
    let value: Value;
    // A plan's split site computes each head group's probabilities apart (blocked where the group is sparse): its
    // anchor Softmax holds only the first group's.
    if (site.plan?.groups) throw mapsError(`site ${site.id}: split into ${site.plan.groups.length} head groups by plan --impl blocked, each with its own probabilities; read the maps of the plan's mask form (rewrite --plan FILE --impl mask)`);
    if (site.anchors.softmax) {
      const node = b.graph.nodeByName(site.anchors.softmax);
      if (!node) throw new Error(`site ${site.id}: softmax node ${site.anchors.softmax} is not in the graph`);
      value = node.outputs[0];
    } else if (site.anchors.fused) {
      const node = b.graph.nodeByName(site.anchors.fused);
      if (!node) throw new Error(`site ${site.id}: fused node ${site.anchors.fused} is not in the graph`);
      value = exposeFused(b, node, site, shapes);
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
