// A site that a plan's compute-reducing form split into head groups (split.ts) is analysed back as one site, with the
// whole Q, K, V and output (analysis/attention/plan-site.ts), but its scores, Softmax and ·V exist once per group.
// No rule can rewrite such a site as a whole (a mask would reach one group, a fusion would undo the plan, pruning
// would leave the groups' head indices behind), so every rule skips it, with this reason.
import type { SiteInfo } from '../../analysis/report/types';

export function splitReason(site: SiteInfo): string | null {
  if (!site.plan?.groups) return null;
  return `split into ${site.plan.groups.length} head groups by plan --impl blocked (each group computes its own scores); apply other rules before the plan`;
}
