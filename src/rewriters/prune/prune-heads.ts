// `prune-heads SITE:h,h;SITE:h`: the listed query heads are removed physically (methods.md): their slices of the Q
// (and fused QKV) weights and biases and their rows of the output projection are cut, and head counts in shapes and
// operator attributes follow. In grouped-query sites a KV head goes only when all of its query heads go; the
// remaining query heads keep reading their own KV head (through a Gather of KV heads where the grouping became uneven).
//
// Pruning every head of a site leaves what removing all heads means: the sub-layer adds only its output projection's
// bias to the residual stream. The attention computation is removed entirely, as drop-attention does, but the bias
// stays (drop-attention removes it too), so the result is exactly "all heads' contributions dropped".
import { RuleError, siteById, type Rule, type RuleResult } from '../rule';
import { applyHeadPlan, keepHead, PlanError, type HeadPlan } from './edit/head-plan';
import { cost, projectionParams, siteChange, trackNodes } from './edit/report';
import { ShapeInfo } from '../../analysis/ir/shapes';
import { siteForm, siteStructure, StructureError, type Role, type SiteStructure } from './edit/structure';
import { removeSublayer, SublayerError } from './edit/sublayer';
import { requireHeads, requireSite, siteKeys } from './site-params';

/** Pruning cuts heads everywhere between the projections and the output projection. */
const ALL_ROLES: readonly Role[] = ['q', 'k', 'v', 'packed', 'krep', 'vrep', 'scores', 'o', 'fused'];

export interface PruneHeadsParams {
  /** Query heads to remove, per site id. */
  heads: Record<number, number[]>;
}

const NAME = 'prune-heads';

export const pruneHeads: Rule<PruneHeadsParams> = {
  name: NAME,
  family: 'prune',
  editsProjections: true,
  summary: 'remove query heads physically (Q/QKV slices, output-projection rows, head counts)',
  validate(params, report) {
    for (const id of siteKeys(NAME, params?.heads)) requireHeads(NAME, requireSite(NAME, report, id), params.heads[id]);
  },
  skipReason(site, params) {
    if (!(site.id in params.heads)) return 'not listed in the heads to prune';
    if (!siteForm(site.form)) return `${site.form} sites are not supported`;
    if (!site.heads || !site.kvHeads || !site.headDim) return 'the analysis could not read its heads';
    return null;
  },
  apply(ctx, siteIds, params): RuleResult {
    const changes = [];
    const warnings: string[] = [];
    // Shapes as the rule found the model: an earlier site's edit leaves the later sites' values as they were, but the
    // shape inference through it can lose the static sizes (a hidden size read at run time) that fixShapes needs.
    const shapes = new ShapeInfo(ctx.builder.graph);
    for (const id of siteIds) {
      const { info, raw } = siteById(ctx, id);
      const nodes = trackNodes(ctx.builder);
      const removed = new Set(params.heads[id]);
      let s: SiteStructure;
      try {
        s = siteStructure(ctx.builder.graph, raw, info, { needOutput: true, exclusive: ALL_ROLES, cutsHeads: true }, shapes);
      } catch (e) {
        if (e instanceof StructureError) throw new RuleError(NAME, `site ${id}: ${e.message}`);
        throw e;
      }
      const kept = Array.from({ length: s.heads }, (_, h) => h).filter((h) => !removed.has(h));
      const before = { heads: s.heads, kvHeads: s.kvHeads, params: projectionParams(s, s.heads, s.kvHeads) };
      const costBefore = cost(s.heads, s.headDim, s.vHeadDim, ctx.seqLen);
      try {
        if (kept.length === 0) {
          const o = s.proj.o!;
          warnings.push(...removeSublayer(ctx.builder, raw, { keepBias: true, ...(o.bias ? { bias: { data: o.bias.data, dtype: o.dtype } } : {}) }, NAME).map((w) => `site ${id}: ${w}`));
          warnings.push(`site ${id}: every head pruned; the attention computation is gone and only the output projection's bias remains`);
          changes.push(siteChange(id, before, { heads: 0, kvHeads: 0, prunedHeads: [...removed], params: o.bias?.data.length ?? 0 }, costBefore, cost(0, s.headDim, s.vHeadDim, ctx.seqLen), nodes()));
          continue;
        }
        const plan = pruningPlan(s, kept);
        const applied = applyHeadPlan(ctx.builder, s, plan, NAME);
        warnings.push(...applied.warnings);
        changes.push(
          siteChange(
            id,
            before,
            { heads: applied.heads, kvHeads: applied.kvHeads, prunedHeads: [...removed].sort((a, b) => a - b), params: projectionParams(s, applied.heads, applied.kvHeads) },
            costBefore,
            cost(applied.heads, s.headDim, s.vHeadDim, ctx.seqLen),
            nodes(),
          ),
        );
      } catch (e) {
        if (e instanceof PlanError || e instanceof SublayerError) throw new RuleError(NAME, `site ${id}: ${e.message}`);
        throw e;
      }
    }
    return { changes, warnings };
  },
};

/** Kept query heads as they are; a KV head stays while any of its query heads does, and each keeps its own. */
export function pruningPlan(s: Pick<SiteStructure, 'qToKv'>, kept: number[]): HeadPlan {
  const keptKv = [...new Set(kept.map((h) => s.qToKv[h]))].sort((a, b) => a - b);
  return {
    q: kept.map(keepHead),
    kv: keptKv.map(keepHead),
    qToKv: kept.map((h) => keptKv.indexOf(s.qToKv[h])),
  };
}
