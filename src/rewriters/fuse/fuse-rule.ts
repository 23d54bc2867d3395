// `fuse`: exact dense fusion, the inverse of `expand`. Every written-out or SDPA-decomposed site becomes the fused
// operator onnxruntime runs fastest for the target provider (choose.ts): com.microsoft GroupQueryAttention or
// MultiHeadAttention, or ONNX Attention in opset-23 models. The site's scale, masks and biases (as one additive
// attention_bias), soft-capping, rotary embedding already applied to Q and K, grouped KV heads and KV caches (the model's
// own concatenation, which also writes the present outputs, feeds the operator) carry over, so the outputs are the
// original's within float rounding. A site that cannot be fused is left as it is, with the reason as a warning.
import type { SiteInfo } from '../../analysis/report/types';
import { RuleError, siteById, type Rule, type RuleResult, type SiteChange } from '../rule';
import { costOf, denseKeysPerQuery } from '../sparse/cost';
import { SITE_OPS_OPSET } from '../sparse/ops';
import { buildFused, type FuseCaches } from './build';
import { FUSE_OPS, FUSE_TARGETS, type FuseOpChoice, type FuseTarget } from './choose';
import { planFusion } from './plan';
import { prepareScoreChains } from '../sparse/score-shape';

export interface FuseParams {
  /** The execution provider the model is meant for (default cpu). */
  target?: FuseTarget;
  /** Force one operator instead of the table's choice (default auto). */
  op?: FuseOpChoice;
}

const NAME = 'fuse';

/** Why a site cannot be fused, from its report entry alone (the graph is read again when the rule applies). */
export function fuseSkipReason(site: SiteInfo): string | null {
  if (site.anchors.fused) return `it is already the fused operator ${site.form}`;
  if (!site.anchors.softmax || !site.anchors.qk || !site.anchors.pv) return 'the analysis did not find its Q·Kᵀ, Softmax and ·V';
  if (!site.heads || !site.headDim) return 'the analysis could not read its heads and head size';
  return null;
}

/** What became of the site's rotary embedding, for the report (nothing when it has none that fuse reads). */
function rotaryNote(rotated: string[], notes: string[]): { rotary?: string } {
  const text = [rotated.length ? `${rotated.join(' and ')} rotated by com.microsoft.RotaryEmbedding` : '', ...notes].filter(Boolean).join('; ');
  return text ? { rotary: text } : {};
}

/**
 * The attention FLOPs the fused operator computes at `seq` tokens. Fusion leaves what attention computes as it was,
 * except that GroupQueryAttention, which `fuse` writes only for causal self-attention, computes each query against
 * the keys up to it alone: onnxruntime's flash kernels for it (CPU with its present outputs, as `fuse` writes it, and
 * CUDA) stop every query tile at the diagonal, so they do about half the eager graph's work (a tile's few keys past the
 * diagonal aside). The other operators compute every key of every query and are counted as the eager graph is.
 */
export function fusedFlops(info: SiteInfo, form: string, seq: number): number | null {
  if (form !== 'com.microsoft.GroupQueryAttention' || !info.causal) return info.flops;
  return costOf(info, { rows: seq, keys: denseKeysPerQuery(info, seq) }).flops;
}

export const fuseRule: Rule<FuseParams> = {
  name: NAME,
  family: 'structure',
  // The fused operator's inputs are shaped with the site helpers (Unsqueeze and Split with their axes as inputs).
  minOpset: SITE_OPS_OPSET,
  summary: 'written-out attention as the fastest exact fused operator (GroupQueryAttention, MultiHeadAttention or ONNX Attention)',
  validate(params) {
    if (params?.target !== undefined && !FUSE_TARGETS.includes(params.target)) throw new RuleError(NAME, `target must be one of ${FUSE_TARGETS.join(', ')}, got '${String(params.target)}'`);
    if (params?.op !== undefined && !FUSE_OPS.includes(params.op)) throw new RuleError(NAME, `op must be one of ${FUSE_OPS.join(', ')}, got '${String(params.op)}'`);
  },
  skipReason: (site) => fuseSkipReason(site),
  apply(ctx, siteIds, params): RuleResult {
    const opts = { target: params?.target ?? 'cpu', op: params?.op ?? 'auto', opset: ctx.builder.model.opsets.get('') ?? 0 } as const;
    const shapes = prepareScoreChains(ctx.builder, siteIds.map((id) => siteById(ctx, id).raw));
    const caches: FuseCaches = { biases: new Map(), ropes: new Map() };
    const changes: SiteChange[] = [];
    const warnings: string[] = [];
    for (const id of siteIds) {
      const { info, raw } = siteById(ctx, id);
      const plan = planFusion(ctx.builder.graph, shapes, raw, info, opts);
      if (typeof plan === 'string') {
        warnings.push(`site ${id} (${info.form}) not fused: ${plan}`);
        continue;
      }
      const built = buildFused(ctx.builder, shapes, plan, caches);
      for (const note of plan.notes) warnings.push(`site ${id}: ${note}`);
      const form = `${built.node.domain || 'onnx'}.${built.node.opType}`;
      const flopsAfter = fusedFlops(info, form, ctx.seqLen);
      changes.push({
        site: id,
        before: { form: info.form, heads: info.heads, kvHeads: info.kvHeads },
        after: { form, heads: plan.heads, kvHeads: built.kvHeads, scale: built.scale, ...(plan.core.softcap !== undefined ? { softcap: plan.core.softcap } : {}), ...rotaryNote(built.rotated, plan.notes) },
        flopsBefore: info.flops, flopsAfter, bytesBefore: info.attnMatrixBytes, bytesAfter: info.attnMatrixBytes,
        nodesAdded: built.nodesAdded, nodesRemoved: built.nodesRemoved,
      });
    }
    if (changes.length === 0) throw new RuleError(NAME, `no site could be fused: ${warnings.join('; ')}`);
    return { changes, warnings };
  },
};
