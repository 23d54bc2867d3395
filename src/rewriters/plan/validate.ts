// The checks of a plan against the model it is applied to, each refusal one line naming the site and the head: the
// site must exist, the plan must give one choice per query head, and each choice must be one the site can take (the
// same conditions under which the uniform rules skip a site, here refusals, since a plan names its sites).
import type { AnalysisReport, SiteInfo } from '../../analysis/report/types';
import { expandSkipReason } from '../expand/expand-rule';
import { pruneHeads } from '../prune/prune-heads';
import { requireSite } from '../prune/site-params';
import { RuleError } from '../rule';
import { formReason, oneOf } from '../sparse/params';
import { describeHeadChoice, type HeadPlanFile, type PlanChoice } from './choices';
import { spanProblem } from './span';

export interface PlanParams {
  plan: HeadPlanFile;
  /** `mask` (default): one per-head mask over the dense scores (the exact reference). `blocked`: the heads are split
   * into groups by choice and each window, sink, strided and power group is computed blocked, each block-topk group
   * gathered. */
  impl?: 'mask' | 'blocked';
}

export const PLAN_RULE = 'plan';

export function validatePlan(p: PlanParams, report: AnalysisReport): void {
  oneOf(PLAN_RULE, 'impl', p?.impl, ['mask', 'blocked'] as const);
  const sites = p?.plan?.sites;
  if (!sites || typeof sites !== 'object' || Object.keys(sites).length === 0) throw new RuleError(PLAN_RULE, 'the plan names no site');
  for (const [key, choices] of Object.entries(sites)) {
    const site = requireSite(PLAN_RULE, report, /^\d+$/.test(key) ? Number(key) : key);
    if (!site.heads) throw new RuleError(PLAN_RULE, `site ${site.id}: the analysis could not read its number of heads, which a per-head plan needs`);
    if (!Array.isArray(choices) || choices.length !== site.heads) {
      throw new RuleError(PLAN_RULE, `site ${site.id}: the plan gives ${Array.isArray(choices) ? choices.length : 0} heads, the site has ${site.heads} query heads`);
    }
    choices.forEach((c, h) => {
      const why = choiceProblem(site, c);
      if (why) throw new RuleError(PLAN_RULE, `site ${site.id}, head ${h} (${describeHeadChoice(c)}): ${why}`);
    });
    const pruned = prunedHeads(choices);
    if (pruned.length) {
      const why = pruneHeads.skipReason(site, { heads: { [site.id]: pruned } }, report);
      if (why) throw new RuleError(PLAN_RULE, `site ${site.id}, head ${pruned[0]} (pruned): heads cannot be removed here: ${why}`);
    }
  }
}

/** Why a site cannot give one of its heads this choice, or null. */
function choiceProblem(site: SiteInfo, c: PlanChoice): string | null {
  if (c.kind === 'dense' || c.kind === 'pruned') return null;
  const span = 'window' in c ? spanProblem(c.window) : null;
  if (span) return span;
  if (site.kind === 'cross') return 'cross-attention: its queries and keys are different sequences, so positions cannot be compared';
  const form = formReason(site);
  if (form) return form;
  if ((c.kind === 'sink' || c.kind === 'strided' || c.kind === 'power') && !site.causal) return `${c.kind} is defined for causal sites; this one is bidirectional`;
  if (c.kind === 'block-topk') {
    if (site.anchors.fused) return expandSkipReason(site);
    if (!site.anchors.qk || !site.anchors.softmax) return 'the site has no Q·Kᵀ product to read';
  }
  return null;
}

export function prunedHeads(choices: readonly PlanChoice[]): number[] {
  return choices.flatMap((c, h) => (c.kind === 'pruned' ? [h] : []));
}
