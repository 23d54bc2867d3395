// `plan`: a per-head plan (issue 10; the file format is src/shared/head-plan.ts) applied to the sites it names. Each
// query head gets its own choice: dense, pruned, or one of the sparse patterns of methods.md with exactly the uniform
// rules' meaning for that head. Two steps per site:
// 1. pruned heads are removed physically by the prune-heads engine; the remaining heads are renumbered, and a strided
//    head keeps the shard of its index in the original site;
// 2. the other heads get their patterns, as one per-head mask over the dense scores (`mask`, the exact reference).
import type { SiteInfo } from '../../analysis/report/types';
import { expandRequested, reanalysed } from '../expand/expand-sites';
import { pruneHeads } from '../prune/prune-heads';
import { siteById, type Rule, type RuleContext, type RuleResult, type SiteChange } from '../rule';
import { SITE_OPS_OPSET } from '../sparse/ops';
import { rewriteSites } from '../sparse/site-loop';
import type { HeadChoice } from './choices';
import { keptHeads, type PlanHead } from './heads';
import { applyPlanMask } from './mask';
import { planChange, type GroupCost } from './cost';
import { PLAN_RULE, prunedHeads, validatePlan, type PlanParams } from './validate';

export const planRule: Rule<PlanParams> = {
  name: PLAN_RULE,
  family: 'sparse',
  summary: 'a choice per query head (dense, pruned, window, sink, strided, power, block-topk) from a plan file',
  minOpset: SITE_OPS_OPSET,
  validate: validatePlan,
  skipReason(site, p) {
    return site.id in p.plan.sites ? null : 'not in the plan';
  },
  apply(ctx, siteIds, p): RuleResult {
    const choicesOf = (id: number): HeadChoice[] => p.plan.sites[id];
    const original = new Map<number, SiteInfo>(siteIds.map((id) => [id, siteById(ctx, id).info]));
    const nodes = new Map<number, { added: number; removed: number }>(siteIds.map((id) => [id, { added: 0, removed: 0 }]));
    const count = (c: SiteChange) => {
      const n = nodes.get(c.site)!;
      n.added += c.nodesAdded;
      n.removed += c.nodesRemoved;
    };
    const warnings: string[] = [];

    const pruned = pruneStep(ctx, siteIds.filter((id) => prunedHeads(choicesOf(id)).length > 0), choicesOf);
    pruned.changes.forEach(count);
    warnings.push(...pruned.warnings);

    const sparse = siteIds.filter((id) => keptHeads(choicesOf(id)).some((h) => h.choice.kind !== 'dense'));
    const topk = sparse.filter((id) => choicesOf(id).some((c) => c.kind === 'block-topk'));
    const work = expandRequested(pruned.ctx, topk, PLAN_RULE);
    const done = new Map<number, { impl: string; groups: GroupCost[] }>();
    const result = rewriteSites(work, PLAN_RULE, sparse, (site) => {
      const choices = choicesOf(site.info.id);
      const heads = keptHeads(choices);
      applyPlanMask(work, site, heads, choices.length);
      done.set(site.info.id, { impl: 'mask', groups: [{ heads: heads.length, rows: ctx.seqLen, keys: ctx.seqLen, extraFlops: selectionFlops(site.info, heads, ctx.seqLen) }] });
      return { after: {}, computed: { rows: ctx.seqLen, keys: ctx.seqLen } };
    });
    result.changes.forEach(count);
    warnings.push(...result.warnings);

    const changes = siteIds.map((id) => {
      const info = original.get(id)!;
      const heads = keptHeads(choicesOf(id));
      const d = done.get(id) ?? { impl: 'none', groups: [{ heads: heads.length, rows: ctx.seqLen, keys: ctx.seqLen }] };
      const n = nodes.get(id)!;
      return planChange(info, choicesOf(id), heads, ctx.seqLen, { ...d, nodesAdded: n.added, nodesRemoved: n.removed });
    });
    return { changes, warnings };
  },
};

/** Removes the pruned heads of `ids` and returns the graph analysed again (the heads are renumbered). */
function pruneStep(ctx: RuleContext, ids: number[], choicesOf: (id: number) => HeadChoice[]): RuleResult & { ctx: RuleContext } {
  if (ids.length === 0) return { changes: [], warnings: [], ctx };
  const heads = Object.fromEntries(ids.map((id) => [id, prunedHeads(choicesOf(id))]));
  const r = pruneHeads.apply(ctx, ids, { heads });
  ctx.builder.sort();
  return { ...r, ctx: reanalysed(ctx) };
}

/** FLOPs of block-topk's selection (block means and their products) for the heads that use it. */
function selectionFlops(info: SiteInfo, heads: PlanHead[], seq: number): number {
  if (!info.headDim) return 0;
  let f = 0;
  for (const h of heads) {
    if (h.choice.kind !== 'block-topk') continue;
    const blocks = Math.ceil(seq / h.choice.block);
    f += 2 * blocks * blocks * info.headDim + 2 * seq * info.headDim;
  }
  return f;
}
