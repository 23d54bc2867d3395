// A mask expanded to the scores' own shape before it meets them (DistilBERT and other older transformers exports:
// `mask.view(…).expand_as(scores)` then `masked_fill`) makes Q·Kᵀ's output read by a Shape outside the site, and every
// rule that replaces the product would have to keep computing it. The element-wise op that applies the mask broadcasts
// it anyway, to a shape that already holds the scores', so the Expand changes nothing: it goes, and with it the
// Shape. Every rule that rewrites a site's score chain runs this first.
import type { RawSite } from '../../analysis/attention/site';
import type { GraphEditor } from '../../analysis/ir/graph-editor';
import type { Node, Value } from '../../analysis/ir/graph';
import { PRE_OPS, reaches } from './score-chain';

/** Ops an expanded mask may pass through on its way to the scores: element-wise on one input, so shapes pass too. */
const MASK_UNARY = new Set(['Cast', 'Not', 'Identity', 'Neg']);

export function dropScoreShapedExpands(editor: GraphEditor, raw: RawSite): void {
  const qk = raw.anchors.qk ? editor.graph.nodeByName(raw.anchors.qk) : undefined;
  if (!qk) return;
  const scores = qk.outputs[0];
  const chain = chainNodes(raw.anchor, qk);
  for (const shape of scores.uses.map((u) => u.node).filter((n) => n.opType === 'Shape' && n.domain === '' && !n.attr('start') && !n.attr('end'))) {
    const expands = shape.outputs[0].uses;
    if (expands.length === 0 || !expands.every((u) => u.index === 1 && u.node.opType === 'Expand' && u.node.domain === '' && appliedTo(u.node.outputs[0], chain))) continue;
    for (const { node } of [...expands]) {
      editor.replaceAllUses(node.outputs[0], node.input(0)!);
      editor.removeNode(node);
    }
    editor.removeNode(shape);
  }
}

/** The element-wise nodes from Q·Kᵀ to the Softmax, following the input computed from the scores' values. */
function chainNodes(softmax: Node, qk: Node): Set<Node> {
  const out = new Set<Node>();
  let v: Value | null = softmax.input(0);
  while (v && v.producer && v.producer !== qk && out.size < 17) {
    const p: Node = v.producer;
    if (!PRE_OPS.has(p.opType) || p.domain !== '') return new Set();
    out.add(p);
    v = p.inputs.find((x) => x !== null && reaches(x, qk, 16)) ?? null;
  }
  return v?.producer === qk ? out : new Set();
}

/** The value reaches one of `chain`'s nodes as a side input, through single-use element-wise unary ops only. */
function appliedTo(v: Value, chain: Set<Node>): boolean {
  for (let i = 0; i < 8; i++) {
    if (v.isGraphOutput || v.uses.length !== 1) return false;
    const { node } = v.uses[0];
    if (chain.has(node)) return true;
    if (!MASK_UNARY.has(node.opType) || node.domain !== '') return false;
    v = node.outputs[0];
  }
  return false;
}
