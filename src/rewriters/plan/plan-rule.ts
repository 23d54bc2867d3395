// `plan`: a per-head plan (issue 10; the file format is src/shared/head-plan.ts) applied to the sites it names. Each
// query head gets its own choice: dense, pruned, or one of the sparse patterns of methods.md with exactly the uniform
// rules' meaning for that head. Two steps per site:
// 1. pruned heads are removed physically by the prune-heads engine; the remaining heads are renumbered, and a strided
//    head keeps the shard of its index in the original site;
// 2. the other heads get their patterns, as one per-head mask over the dense scores (`mask`, the exact reference),
//    or (`blocked`) split into groups by choice, each computed on its own heads with its compute-reducing form
//    (split.ts); a site that cannot be split keeps the mask form, with a warning.
// Each site's choices are recorded on its anchor node (marker.ts), for the analysis of the planned model.
import type { SiteInfo } from '../../analysis/report/types';
import { expandRequested, reanalysed } from '../expand/expand-sites';
import { pruneHeads } from '../prune/prune-heads';
import { RuleError, siteById, type Rule, type RuleContext, type RuleResult, type SiteChange } from '../rule';
import { SITE_OPS_OPSET } from '../sparse/ops';
import { rewriteSites } from '../sparse/site-loop';
import { describeHeadChoice, type HeadChoice, type ResolvedPlan } from './choices';
import { describeChoiceAt, lawLength, planHasLaws, resolvePlan } from './span';
import { expandSkipReason } from '../expand/expand-rule';
import { groupHeads, keptHeads, type PlanHead } from './heads';
import { applyPlanMask, type PlanSite } from './mask';
import { planChange, type GroupCost } from './cost';
import { recordPlan } from './marker';
import { applyPlanSplit } from './split';
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
  apply(ctx, siteIds, given): RuleResult {
    // Span laws are resolved once, at the rewrite's length; everything below sees windows as numbers.
    const at = resolveLaws(ctx, siteIds, given);
    const p = { ...given, plan: at.plan };
    const choicesOf = (id: number): HeadChoice[] => p.plan.sites[id];
    const original = new Map<number, SiteInfo>(siteIds.map((id) => [id, siteById(ctx, id).info]));
    const nodes = new Map<number, { added: number; removed: number }>(siteIds.map((id) => [id, { added: 0, removed: 0 }]));
    const count = (c: SiteChange) => {
      const n = nodes.get(c.site)!;
      n.added += c.nodesAdded;
      n.removed += c.nodesRemoved;
    };
    const warnings: string[] = at.warning ? [at.warning] : [];

    const pruned = pruneStep(ctx, siteIds.filter((id) => prunedHeads(choicesOf(id)).length > 0), choicesOf);
    pruned.changes.forEach(count);
    warnings.push(...pruned.warnings);

    const sparse = sparseStep(pruned.ctx, siteIds.filter((id) => keptHeads(choicesOf(id)).some((h) => h.choice.kind !== 'dense')), p);
    sparse.result.changes.forEach(count);
    warnings.push(...sparse.result.warnings);

    const changes = siteIds.map((id) => {
      const info = original.get(id)!;
      const heads = keptHeads(choicesOf(id));
      const d = sparse.done.get(id) ?? { impl: 'none', groups: [{ heads: heads.length, rows: ctx.seqLen, keys: ctx.seqLen }] };
      const n = nodes.get(id)!;
      // The record holds what the graph computes: span laws resolved at this length.
      recordPlan(ctx.builder.graph, info, choicesOf(id));
      return planChange(info, choicesOf(id), heads, ctx.seqLen, { ...d, nodesAdded: n.added, nodesRemoved: n.removed }, at.describe(id));
    });
    return { changes, warnings };
  },
};

/**
 * The plan with its span laws resolved at the length they apply to (a refusal when it is not known), a warning that
 * says which length that was, and each site's choices as the report shows them (a law with its value).
 */
function resolveLaws(ctx: RuleContext, siteIds: number[], p: PlanParams): { plan: ResolvedPlan; warning: string | null; describe: (id: number) => string[] } {
  const original = p.plan;
  if (!planHasLaws(original, siteIds)) return { plan: resolvePlan(original, ctx.seqLen), warning: null, describe: (id) => original.sites[id].map(describeHeadChoice) };
  const at = lawLength(ctx, siteIds);
  if (typeof at === 'string') throw new RuleError(PLAN_RULE, at);
  const warning = at.source === 'model'
    ? `span laws resolved at L = ${at.seq}, the model's own length${ctx.seqLenGiven && ctx.seqLen !== at.seq ? ` (not the ${ctx.seqLen} given)` : ''}`
    : `span laws resolved at L = ${at.seq}, the length given: the rewritten model keeps these windows at whatever length it is run with`;
  return { plan: resolvePlan(original, at.seq), warning, describe: (id) => original.sites[id].map((c) => describeChoiceAt(c, at.seq)) };
}

type ResolvedParams = Omit<PlanParams, 'plan'> & { plan: ResolvedPlan };

type Done = { impl: string; groups: GroupCost[]; extra?: Record<string, unknown> };

/** Gives the remaining heads of `ids` their patterns; returns the changes and, per site, what each group computes. */
function sparseStep(ctx: RuleContext, ids: number[], p: ResolvedParams): { result: RuleResult; done: Map<number, Done> } {
  // Block-topk reads Q and K as they enter Q·Kᵀ, and the split form edits the score chain: fused sites are written
  // out first (those that cannot be keep the mask form, through the operator's mask input).
  const expand = ids.filter((id) => {
    const { info } = siteById(ctx, id);
    if (!info.anchors.fused) return false;
    return p.plan.sites[id].some((c) => c.kind === 'block-topk') || (p.impl === 'blocked' && expandSkipReason(info) === null);
  });
  const work = expandRequested(ctx, expand, PLAN_RULE);
  const done = new Map<number, Done>();
  const result = rewriteSites(work, PLAN_RULE, ids, (site) => {
    const r = realise(work, site, p);
    done.set(site.info.id, r.done);
    return { after: {}, computed: { rows: ctx.seqLen, keys: ctx.seqLen }, warnings: r.warnings };
  });
  return { result, done };
}

/** One site's sparse part: split into head groups (`blocked`, where possible), else the per-head mask. */
function realise(ctx: RuleContext, site: PlanSite, p: ResolvedParams): { done: Done; warnings: string[] } {
  const choices = p.plan.sites[site.info.id];
  const heads = keptHeads(choices);
  const warnings: string[] = [];
  if (p.impl === 'blocked') {
    const r = site.info.anchors.fused ? `${site.info.form} cannot be written out (${expandSkipReason(site.info)})` : applyPlanSplit(ctx, site, heads, choices.length);
    if (typeof r !== 'string') {
      const groups = r.groups.map((g) => `${g.heads}×${g.choice} (${g.form})`).join(', ');
      return { done: { impl: 'blocked', groups: r.groups, extra: { groups } }, warnings: r.warnings };
    }
    warnings.push(`site ${site.info.id}: the split into head groups is not possible (${r}); used the mask form`);
  }
  applyPlanMask(ctx, site, heads, choices.length);
  const seq = ctx.seqLen;
  return { done: { impl: 'mask', groups: [{ heads: heads.length, rows: seq, keys: seq, extraFlops: selectionFlops(site.info, heads, seq) }] }, warnings };
}

/** Removes the pruned heads of `ids` and returns the graph analysed again (the heads are renumbered). */
function pruneStep(ctx: RuleContext, ids: number[], choicesOf: (id: number) => HeadChoice[]): RuleResult & { ctx: RuleContext } {
  if (ids.length === 0) return { changes: [], warnings: [], ctx };
  const heads = Object.fromEntries(ids.map((id) => [id, prunedHeads(choicesOf(id))]));
  const r = pruneHeads.apply(ctx, ids, { heads });
  ctx.builder.sort();
  return { ...r, ctx: reanalysed(ctx) };
}

/** FLOPs of block-topk's selection (block means and their products) in the mask form: each block-topk choice
 * selects over all the site's heads. */
function selectionFlops(info: SiteInfo, heads: PlanHead[], seq: number): number {
  if (!info.headDim) return 0;
  let f = 0;
  for (const g of groupHeads(heads)) {
    if (g.choice.kind !== 'block-topk') continue;
    const blocks = Math.ceil(seq / g.choice.block);
    f += heads.length * (2 * blocks * blocks * info.headDim + 2 * seq * info.headDim);
  }
  return f;
}
