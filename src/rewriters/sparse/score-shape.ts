// Readers of the scores' shape outside the site, which every rule that stops computing the S×S scores would otherwise
// have to keep computing them for. Every rule that rewrites a site's score chain runs `prepareScoreChains` first.
// - A mask expanded to the scores' own shape before it meets them (DistilBERT and other older transformers exports:
//   `mask.view(…).expand_as(scores)` then `masked_fill`). The element-wise op that applies the mask broadcasts it
//   anyway, to a shape that already holds the scores', so the Expand changes nothing: it goes, and with it the Shape.
// - Any other Shape of the scores (GPT-2 before transformers 3 slices its causal buffer by `w.size(-2), w.size(-1)`)
//   is given the same numbers computed from Q and Kᵀ: the product's batch axes broadcast (the larger of the two, which
//   are equal or 1), then Q's rows and Kᵀ's columns.
import type { RawSite } from '../../analysis/attention/site';
import type { GraphBuilder } from '../../analysis/ir/builder';
import type { GraphEditor } from '../../analysis/ir/graph-editor';
import type { Node, Value } from '../../analysis/ir/graph';
import { ShapeInfo } from '../../analysis/ir/shapes';
import { SiteOps } from './ops';
import { PRE_OPS, reaches } from './score-chain';
import { floatTypeOf, isScalarLike } from './values';

/** Both passes on every site, and the shape facts of the graph they leave (its existing values' shapes unchanged). */
export function prepareScoreChains(builder: GraphBuilder, raws: RawSite[]): ShapeInfo {
  // Dropping an Expand changes the shapes of what it fed, so the shape facts are read after it.
  for (const raw of raws) dropScoreShapedExpands(builder, raw);
  const shapes = new ShapeInfo(builder.graph);
  for (const raw of raws) rewireScoreShapes(builder, shapes, raw);
  return shapes;
}

/** Ops an expanded mask may pass through on its way to the scores: element-wise on one input, so shapes pass too. */
const MASK_UNARY = new Set(['Cast', 'Not', 'Identity', 'Neg']);

function dropScoreShapedExpands(editor: GraphEditor, raw: RawSite): void {
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

/** Shape readers of Q·Kᵀ's output, or of a tensor the chain computes from it with scalars only, read Q and Kᵀ instead. */
function rewireScoreShapes(builder: GraphBuilder, shapes: ShapeInfo, raw: RawSite): void {
  const qk = raw.anchors.qk ? builder.graph.nodeByName(raw.anchors.qk) : undefined;
  const [q, kt] = qk?.inputs ?? [];
  if (!qk || qk.opType !== 'MatMul' || qk.domain !== '' || !q || !kt) return;
  const rank = shapes.shape(q)?.length;
  if (rank === undefined || rank < 3 || shapes.shape(kt)?.length !== rank) return;
  let replacement: Value | undefined;
  for (const t of scoreShapedTensors(shapes, raw.anchor, qk)) {
    for (const { node } of [...t.uses]) {
      if (node.opType !== 'Shape' || node.domain !== '' || node.attr('start') || node.attr('end')) continue;
      replacement ??= productShape(new SiteOps(builder, `${raw.anchor.name}::scores-shape`, floatTypeOf(q)), q, kt);
      builder.replaceAllUses(node.outputs[0], replacement, { graphOutputs: true });
      builder.removeNode(node);
    }
  }
}

/** The shape of MatMul(a, b) for operands of equal rank: broadcast batch axes, a's rows, b's columns. */
function productShape(ops: SiteOps, a: Value, b: Value): Value {
  const sa = ops.shape(a, 'q_shape');
  const sb = ops.shape(b, 'kt_shape');
  const batch = ops.op('Max', [ops.slice(sa, 0, 0, -2, 'q_batch'), ops.slice(sb, 0, 0, -2, 'kt_batch')], 'batch');
  return ops.concat([batch, ops.slice(sa, 0, -2, -1, 'rows'), ops.slice(sb, 0, -1, Number.MAX_SAFE_INTEGER, 'cols')], 0, 'shape');
}

/** Q·Kᵀ's output and the chain's tensors computed from it with scalar side inputs only (so of the same shape). */
function scoreShapedTensors(shapes: ShapeInfo, softmax: Node, qk: Node): Value[] {
  const out: Value[] = [qk.outputs[0]];
  const chain = [...chainNodes(softmax, qk)].reverse();
  for (const n of chain) {
    const data = n.inputs.find((x) => x !== null && out.includes(x));
    if (!data || n.inputs.some((x) => x && x !== data && !isScalarLike(shapes, x))) break;
    out.push(n.outputs[0]);
  }
  return out;
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
