// `share-attn i->j` (methods.md; EchoAtt): site j uses site i's attention probabilities. j's query and key
// projections and its score computation are removed; j keeps its own V and output projection.
//
// The probabilities of site i are its softmax output as it enters P·V (unfused), or the probabilities a fused ONNX
// Attention (qk_matmul_output_mode 3) or GroupQueryAttention (qk_output 2) exports on request. A fused source that
// cannot export them (MultiHeadAttention, packed Attention) is expanded into standard ops first (expand/). An unfused target
// multiplies them with its own V in its own P·V MatMul; a fused target (MultiHeadAttention, GroupQueryAttention, ONNX
// Attention) is expanded into standard ops: its V split into heads (repeated to the query heads where grouped), P·V,
// and the heads merged back to the operator's output layout.
import { attr, type GraphBuilder } from '../../analysis/ir/builder';
import { constantOf, type Value } from '../../analysis/ir/graph';
import { i64 } from '../../analysis/ir/tensor-data';
import type { SiteInfo } from '../../analysis/report/types';
import { RuleError, siteById, type Rule, type RuleResult } from '../rule';
import { keepPackedParts, PackedError } from '../prune/edit/packed';
import { cost, projectionParams, siteChange, trackNodes } from '../prune/edit/report';
import { siteStructure, StructureError, type SiteStructure } from '../prune/edit/structure';
import { readFloats, setInput, addWeight } from '../prune/edit/weights';
import { expandSkipReason } from '../expand/expand-rule';
import { expandRequested } from '../expand/expand-sites';
import { SITE_OPS_OPSET } from '../sparse/ops';
import { exposesProbabilities, fusedProbabilities } from '../probabilities';
import { checkPairs, sameHeads, sourceOf, type PairParams } from './pairs';

const NAME = 'share-attn';

export const shareAttn: Rule<PairParams> = {
  name: NAME,
  family: 'shared',
  editsProjections: true,
  summary: "site j uses site i's attention probabilities; j's Q/K projections and scores are removed",
  // Fused sites it cannot read are written out first (expand/), in SiteOps' opset-13 forms.
  minOpset: SITE_OPS_OPSET,
  validate(params, report) {
    checkPairs(NAME, params, report, compatible);
  },
  skipReason(site, params) {
    return sourceOf(params, site.id) === undefined ? 'not the target of any pair' : null;
  },
  apply(original, siteIds, params): RuleResult {
    // Fused sources that cannot export their probabilities, and packed Attention targets (which compute their own
    // scores from a packed weight), are written out in standard ops first; they are then unfused sites.
    const expand = new Set<number>();
    for (const j of siteIds) {
      const i = sourceOf(params, j)!;
      const src = siteById(original, i).info;
      if (src.anchors.fused && !exposesProbabilities(src.form)) expand.add(i);
      if (siteById(original, j).info.form === 'com.microsoft.Attention') expand.add(j);
    }
    const ctx = expandRequested(original, [...expand].sort((a, b) => a - b), NAME);
    const changes = [];
    const warnings: string[] = [];
    const probsOf = new Map<number, Value>();
    for (const j of [...siteIds].sort((a, b) => a - b)) {
      const i = sourceOf(params, j)!;
      const src = siteById(ctx, i);
      const dst = siteById(ctx, j);
      const nodes = trackNodes(ctx.builder);
      try {
        const sj = siteStructure(ctx.builder.graph, dst.raw, dst.info, { exclusive: ['q', 'k', 'packed', 'krep', 'scores'] });
        const before = { heads: sj.heads, kvHeads: sj.kvHeads, params: projectionParams(sj, sj.heads, sj.kvHeads), probabilitiesFrom: j };
        // A source rewritten by an earlier pair has no scores of its own; the probabilities it uses are recorded.
        let probs = probsOf.get(i);
        if (!probs) {
          const si = siteStructure(ctx.builder.graph, src.raw, src.info);
          if (src.info.kind === 'cross' && si.proj.k!.activation !== sj.proj.k!.activation) {
            throw new RuleError(NAME, `${i}:${j}: the two cross-attention sites attend to different sources`);
          }
          probs = probabilities(ctx.builder, si);
        }
        probsOf.set(j, probs);
        if (sj.form === 'unfused') {
          const pv = [...sj.region].find((n) => n.name === sj.raw.anchors.pv);
          if (!pv) throw new StructureError('the P·V MatMul was not found');
          setInput(pv, 0, probs);
        } else {
          expandFused(ctx.builder, sj, probs);
        }
        if (sj.packed) keepPackedParts(ctx.builder, sj, 'v', NAME);
        ctx.builder.removeUnused();
        if (dst.info.kvCache.writes) warnings.push(`site ${j}: its K projection stays, it still writes the key cache output`);
        const c = cost(sj.heads, sj.headDim, sj.vHeadDim, ctx.seqLen);
        // Only P·V is left of j's core: 2·heads·S²·dv FLOPs, and no attention matrix of its own.
        const pvFlops = c.flops === null ? null : 2 * sj.heads * ctx.seqLen * ctx.seqLen * sj.vHeadDim;
        const after = { heads: sj.heads, kvHeads: sj.kvHeads, params: paramsWithoutQK(sj), probabilitiesFrom: i };
        changes.push(siteChange(j, before, after, c, { flops: pvFlops, bytes: 0 }, nodes()));
      } catch (e) {
        if (e instanceof StructureError || e instanceof PackedError) throw new RuleError(NAME, `${i}:${j}: ${e.message}`);
        throw e;
      }
    }
    return { changes, warnings };
  },
};

function compatible(i: SiteInfo, j: SiteInfo): string | null {
  const heads = sameHeads(i, j, 'heads');
  if (heads) return `incompatible heads: ${heads}`;
  if (!(i.anchors.softmax || exposesProbabilities(i.form))) {
    const why = expandSkipReason(i);
    if (why) return `site ${i.id} is ${i.form}, which does not export its attention probabilities and cannot be expanded (${why})`;
  }
  if (j.form === 'com.microsoft.Attention') {
    const why = expandSkipReason(j);
    if (why) return `site ${j.id} is packed Attention, which computes its own scores inside and cannot be expanded (${why})`;
  }
  if (i.causal !== j.causal) return `site ${i.id} is ${i.causal ? '' : 'not '}causal and site ${j.id} is ${j.causal ? '' : 'not '}causal`;
  if (i.kvCache.reads !== j.kvCache.reads) return 'only one of the sites reads a KV cache, so their key lengths differ';
  return null;
}

/** Site i's probabilities: what enters its P·V, or the fused operator's probability output (switched on here). */
function probabilities(builder: GraphBuilder, s: SiteStructure): Value {
  if (s.form === 'unfused') {
    const pv = [...s.region].find((n) => n.name === s.raw.anchors.pv);
    const p = pv?.input(0);
    if (!p) throw new StructureError(`site ${s.info.id}: its P·V MatMul was not found`);
    return p;
  }
  if (!exposesProbabilities(s.raw.form)) throw new StructureError(`site ${s.info.id}: ${s.raw.form} does not export its probabilities`);
  return fusedProbabilities(builder, s.anchor, `${s.anchor.name}::${NAME}/probabilities`);
}

/**
 * Replaces fused operator j by P·V with i's probabilities. 3-D operators take V as [batch, seq, kvHeads·dv] and return
 * [batch, seq, heads·dv]; 4-D ONNX Attention takes [batch, kvHeads, seq, dv] and returns [batch, heads, seq, dv].
 */
function expandFused(builder: GraphBuilder, s: SiteStructure, probs: Value): void {
  const n = s.anchor;
  const base = `${n.name}::${NAME}`;
  if (n.outputs.slice(1).some((o) => o.name && (o.uses.length || o.isGraphOutput))) {
    throw new StructureError(`'${n.name}' has KV-cache or probability outputs in use; it cannot be expanded`);
  }
  let v = n.input(2);
  if (!v) throw new StructureError(`'${n.name}' takes no separate V input`);
  const rank = s.shapes.shape(v)?.length;
  const i64c = (name: string, values: number[]) => builder.initializer(builder.uniqueName(`${base}/${name}`), [values.length], i64(values));
  if (s.form === 'ms-mha' && n.input(3)) {
    // MultiHeadAttention's packed Q/K/V bias: V's part is added here.
    const t = constantOf(n.input(3));
    if (!t) throw new StructureError(`the packed bias of '${n.name}' is not a constant`);
    const all = readFloats(t);
    const from = (s.heads + s.kvHeads) * s.headDim;
    const vb = addWeight(builder, `${base}/v_bias`, [s.kvHeads * s.vHeadDim], all.slice(from, from + s.kvHeads * s.vHeadDim), s.proj.v!.dtype);
    v = builder.op('Add', [v, vb], { name: `${base}/v_bias_add` });
  }
  if (rank === 3) {
    const split = builder.op('Reshape', [v, i64c('v_heads_shape', [0, 0, s.kvHeads, s.vHeadDim])], { name: `${base}/v_heads` });
    v = builder.op('Transpose', [split], { name: `${base}/v_transpose`, attrs: { perm: attr.ints([0, 2, 1, 3]) } });
  } else if (rank !== 4) {
    throw new StructureError(`the V input of '${n.name}' has an unknown layout`);
  }
  if (s.kvHeads !== s.heads) {
    const idx = builder.initializer(builder.uniqueName(`${base}/v_repeat_heads`), [s.heads], i64(s.qToKv));
    v = builder.op('Gather', [v, idx], { name: `${base}/v_repeat`, attrs: { axis: attr.int(1) } });
  }
  let out = builder.op('MatMul', [probs, v], { name: `${base}/pv` });
  if (rank === 3) {
    const merged = builder.op('Transpose', [out], { name: `${base}/merge_transpose`, attrs: { perm: attr.ints([0, 2, 1, 3]) } });
    out = builder.op('Reshape', [merged, i64c('merge_shape', [0, 0, s.heads * s.vHeadDim])], { name: `${base}/merge` });
  }
  builder.replaceAllUses(n.outputs[0], out, { graphOutputs: true });
}

/** j's projection parameters without its Q and K projections. */
function paramsWithoutQK(s: SiteStructure): number {
  const all = projectionParams(s, s.heads, s.kvHeads);
  const qk = (['q', 'k'] as const).reduce((a, r) => {
    const p = s.proj[r];
    const width = (r === 'q' ? s.heads : s.kvHeads) * s.headDim;
    return a + (p ? width * (p.inputs + (p.bias ? 1 : 0)) : 0);
  }, 0);
  return all - qk;
}
