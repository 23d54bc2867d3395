// Head masks for importance scoring: every chosen site gets a graph input `head_mask.site<N>` of shape [heads], and
// each head's attention output is multiplied by its entry before the heads are merged into the output projection.
// Feeding ones reproduces the model; a zero at head h removes exactly that head's contribution (the output
// projection's bias stays, as it would if the head were pruned).
import { attr, type GraphBuilder } from '../../analysis/ir/builder';
import type { Node, Value } from '../../analysis/ir/graph';
import { einsumText, parseEinsum } from '../../analysis/ir/einsum';
import { ShapeInfo } from '../../analysis/ir/shapes';
import { f32, i64 } from '../../analysis/ir/tensor-data';
import type { RawSite } from '../../analysis/attention/site';
import type { SiteBinding, SiteInfo } from '../../analysis/report/types';
import { DataType } from '../../analysis/onnx/dtypes';
import { floatTypeOf } from '../sparse/values';
import { siteForm } from './edit/structure';

export interface HeadMaskInput {
  site: number;
  /** Graph input name. */
  input: string;
  heads: number;
}

/** A site the head masks cannot reach: a refusal about the model, shown to the user as one line. */
export class HeadMaskError extends Error {
  readonly userError = true;
}

/** Adds a mask input per site; `sites` come from analyzeWithSites on the builder's model. */
export function addHeadMasks(builder: GraphBuilder, sites: { info: SiteInfo; raw: RawSite }[]): HeadMaskInput[] {
  const out: HeadMaskInput[] = [];
  const shapes = new ShapeInfo(builder.graph);
  for (const { info, raw } of sites) {
    const heads = info.heads;
    const dv = raw.vHeadDim ?? info.headDim;
    if (!heads || !dv || !siteForm(info.form)) throw new HeadMaskError(`site ${info.id}: ${info.form} with ${heads ?? '?'} heads cannot be masked per head`);
    const base = `${raw.anchor.name}::importance`;
    const input = builder.input(builder.uniqueName(`head_mask.site${info.id}`), 'float32', [heads]);
    // (The mask has the full rank of what it multiplies: onnxruntime's transpose optimizer mishandles a [heads, 1, 1]
    // factor pushed through the Transpose that follows.)
    // Per-head tensor of the site: P·V's output [batch, heads, q, dv] (unfused, or a 4-D fused operator), else the
    // fused operator's output [batch, q, heads·dv].
    const pv = raw.anchors.pv ? builder.graph.nodeByName(raw.anchors.pv) : undefined;
    const target: Value | undefined = pv ? pv.outputs[0] : raw.anchor.outputs[0];
    if (!target) throw new HeadMaskError(`site ${info.id}: no per-head output found`);
    const rank = shapes.shape(target)?.length;
    const axes = info.binding?.scoreAxes;
    const headAxis = pv ? perHeadAxis(pv, axes, rank, shapes.shape(pv.input(1))?.length) : rank === 4 ? 1 : undefined;
    const folded = rank === 3 && axes?.length === 3 && axes[0].length === 2;
    // Without a head axis, only a fused operator's [batch, q, heads·dv] output is known to be laid out by heads.
    if (!folded && headAxis === undefined && (pv || rank !== 3)) throw new HeadMaskError(`site ${info.id}: its per-head output has an unknown layout`);
    let mask: Value;
    if (folded) {
      mask = foldedMask(builder, base, input, target, heads, axes[0].join() === 'batch,head');
    } else if (headAxis !== undefined && rank !== undefined) {
      const dims = Array.from({ length: rank }, (_, i) => (i === headAxis ? heads : 1));
      mask = builder.op('Reshape', [input, const64(builder, `${base}/mask_shape`, dims)], { name: `${base}/mask_heads` });
    } else {
      const perHead = builder.op('Reshape', [input, const64(builder, `${base}/mask_shape`, [heads, 1])], { name: `${base}/mask_heads` });
      const ones = builder.initializer(builder.uniqueName(`${base}/mask_ones`), [1, dv], f32(new Float32Array(dv).fill(1)));
      const wide = builder.op('Mul', [perHead, ones], { name: `${base}/mask_wide` });
      mask = builder.op('Reshape', [wide, const64(builder, `${base}/mask_flat_shape`, [heads * dv])], { name: `${base}/mask_flat` });
    }
    // The mask input is float32 whatever the model computes in; a float16 site gets it cast.
    if (floatTypeOf(target) === 'float16') mask = builder.op('Cast', [mask], { name: `${base}/mask_fp16`, attrs: { to: attr.int(DataType.FLOAT16) } });
    const masked = builder.op('Mul', [target, mask], { name: `${base}/head_mask` });
    // The folded mask reads the target's shape; that reader keeps reading the unmasked value.
    const shapeReaders = target.uses.filter((u) => u.node.name.startsWith(`${base}/`)).map((u) => u.node);
    builder.replaceAllUses(target, masked, { graphOutputs: true, except: shapeReaders });
    out.push({ site: info.id, input: input.name, heads });
  }
  builder.sort();
  return out;
}

/**
 * The axis of P·V's output that holds the query heads: where the scores hold them (4-D [batch, heads, q, dv],
 * windowed 5-D [batch, windows, heads, q, dv]), or, for an Einsum, where its equation puts the scores' head label.
 */
function perHeadAxis(pv: Node, axes: SiteBinding['scoreAxes'] | undefined, rank: number | undefined, vRank: number | undefined): number | undefined {
  if (rank === undefined || vRank === undefined) return undefined;
  const scoreHead = axes ? axes.findIndex((a) => a.length === 1 && a[0] === 'head') : rank === 4 ? 1 : -1;
  if (scoreHead < 0 || (axes && axes.length !== (pv.opType === 'Einsum' ? axes.length : rank))) return undefined;
  if (pv.opType !== 'Einsum') return scoreHead;
  const text = einsumText(pv);
  const eq = text ? parseEinsum(text, [axes?.length ?? 4, vRank]) : undefined;
  const at = eq ? eq.output.indexOf(eq.inputs[0][scoreHead]) : -1;
  return at >= 0 && at < rank ? at : undefined;
}

/**
 * Heads folded into the batch (torch.nn's MultiheadAttention: P·V gives [batch·heads, q, dv], batch-major): the mask
 * is tiled over the batch and laid along the merged axis.
 */
function foldedMask(builder: GraphBuilder, base: string, input: Value, target: Value, heads: number, batchMajor: boolean): Value {
  if (!batchMajor) throw new HeadMaskError(`${base}: heads folded before the batch cannot be masked per head`);
  const shape = builder.op('Shape', [target], { name: `${base}/mask_target_shape` });
  const rows = builder.op('Gather', [shape, const64(builder, `${base}/mask_axis0`, [0])], { name: `${base}/mask_rows`, attrs: { axis: { type: 'int', value: 0 } } });
  const batch = builder.op('Div', [rows, const64(builder, `${base}/mask_heads_n`, [heads])], { name: `${base}/mask_batch` });
  const tiled = builder.op('Tile', [input, batch], { name: `${base}/mask_tiled` });
  return builder.op('Reshape', [tiled, const64(builder, `${base}/mask_folded_shape`, [-1, 1, 1])], { name: `${base}/mask_heads` });
}

function const64(builder: GraphBuilder, name: string, values: number[]): Value {
  return builder.initializer(builder.uniqueName(name), [values.length], i64(values));
}
