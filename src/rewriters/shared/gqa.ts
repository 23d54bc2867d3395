// `gqa g` (methods.md; Ainslie et al., GQA by mean pooling): the query heads are split into g groups of consecutive
// heads; each group's new K and V projection (weights and bias) is the mean of its heads' projections, and the site
// becomes grouped-query with g KV heads. In a site that is already grouped-query, a query head's projection is that of
// the KV head it reads, so g equal to the present KV-head count changes nothing.
//
// Unfused sites get real grouped-query attention (K/V projected to g heads, a Gather of KV heads before the core).
// Fused GroupQueryAttention and ONNX Attention take kv_num_heads = g. MultiHeadAttention and packed Attention need one
// KV head per query head: the group means are written into every head of the group (same outputs, nothing saved).
import { RuleError, siteById, type Rule, type RuleResult } from '../rule';
import { applyHeadPlan, keepHead, PlanError, type HeadPlan } from '../prune/edit/head-plan';
import { cost, projectionParams, siteChange, trackNodes } from '../prune/edit/report';
import { siteForm, siteStructure, StructureError } from '../prune/edit/structure';
import type { HeadMix } from '../prune/edit/weights';

export interface GqaParams {
  groups: number;
}

const NAME = 'gqa';

export const gqa: Rule<GqaParams> = {
  name: NAME,
  family: 'shared',
  editsProjections: true,
  summary: 'grouped-query attention with g KV heads, each the mean of its group of heads',
  validate(params, report) {
    const g = params?.groups;
    if (!Number.isInteger(g) || g < 1) throw new RuleError(NAME, `the number of groups must be a positive integer, got ${String(g)}`);
    const heads = [...new Set(report.sites.map((s) => s.heads).filter((h): h is number => !!h))];
    if (heads.length && !heads.some((h) => h % g === 0)) {
      throw new RuleError(NAME, `g=${g} does not divide the number of query heads of any site (${heads.join(', ')})`);
    }
  },
  skipReason(site, params) {
    if (!siteForm(site.form)) return `${site.form} sites are not supported`;
    if (!site.heads || !site.kvHeads || !site.headDim) return 'the analysis could not read its heads';
    if (site.heads % params.groups !== 0) return `g=${params.groups} does not divide its ${site.heads} query heads`;
    // Each group's mean of KV heads it already shares would only add copies (multi-query attention's one KV head).
    if (params.groups > site.kvHeads) return `it has ${site.kvHeads} KV head${site.kvHeads === 1 ? '' : 's'}, fewer than g=${params.groups}: grouping only merges KV heads`;
    return null;
  },
  apply(ctx, siteIds, params): RuleResult {
    const changes = [];
    const warnings: string[] = [];
    for (const id of siteIds) {
      const { info, raw } = siteById(ctx, id);
      const nodes = trackNodes(ctx.builder);
      try {
        const s = siteStructure(ctx.builder.graph, raw, info, { exclusive: ['k', 'v', 'packed', 'krep', 'vrep'], cutsHeads: true });
        const plan = groupPlan(s.heads, s.qToKv, params.groups);
        const before = { heads: s.heads, kvHeads: s.kvHeads, params: projectionParams(s, s.heads, s.kvHeads) };
        const applied = applyHeadPlan(ctx.builder, s, plan, NAME);
        warnings.push(...applied.warnings);
        const c = cost(s.heads, s.headDim, s.vHeadDim, ctx.seqLen);
        changes.push(
          siteChange(id, before, { heads: s.heads, kvHeads: params.groups, kvHeadsInGraph: applied.kvHeads, params: projectionParams(s, s.heads, applied.kvHeads) }, c, c, nodes()),
        );
      } catch (e) {
        if (e instanceof StructureError || e instanceof PlanError) throw new RuleError(NAME, `site ${id}: ${e.message}`);
        throw e;
      }
    }
    return { changes, warnings };
  },
};

/** Groups of consecutive query heads; each group's KV head averages the KV heads its members read (with multiplicity). */
export function groupPlan(heads: number, qToKv: number[], groups: number): HeadPlan {
  const size = heads / groups;
  const kv: HeadMix[] = [];
  for (let a = 0; a < groups; a++) {
    const weights = new Map<number, number>();
    for (let h = a * size; h < (a + 1) * size; h++) weights.set(qToKv[h], (weights.get(qToKv[h]) ?? 0) + 1 / size);
    kv.push([...weights].map(([head, weight]) => ({ head, weight })));
  }
  return {
    q: Array.from({ length: heads }, (_, h) => keepHead(h)),
    kv,
    qToKv: Array.from({ length: heads }, (_, h) => Math.floor(h / size)),
  };
}
