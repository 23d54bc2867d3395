// What every sparse rule does around its per-site rewrite: look the site up in the working graph, give it an op
// builder named after its anchor, count the nodes it added and removed, and report the change with its cost.
import type { RawSite } from '../../analysis/attention/site';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import type { SiteInfo } from '../../analysis/report/types';
import { siteById, type RuleContext, type RuleResult, type SiteChange } from '../rule';
import { siteChange, type Computed } from './cost';
import { dropDeadMasks } from './last-row';
import { SiteOps } from './ops';
import { prepareScoreChains } from './score-shape';
import { floatTypeOf } from './values';

export interface SiteOutcome {
  after: Record<string, unknown>;
  computed: Computed;
  warnings?: string[];
}

export type SiteRewrite = (site: { info: SiteInfo; raw: RawSite; ops: SiteOps; shapes: ShapeInfo }) => SiteOutcome;

export function rewriteSites(ctx: RuleContext, rule: string, siteIds: number[], rewrite: SiteRewrite): RuleResult {
  const changes: SiteChange[] = [];
  const warnings: string[] = [];
  // One shape analysis of the graph as the rule found it, once nothing outside the sites reads the scores' shape (the
  // masks expanded to it change shape): each site's rewrite only adds values (which need no shapes) and edits its own
  // nodes, so the facts stay true for the sites after it.
  const shapes = prepareScoreChains(ctx.builder, siteIds.map((id) => siteById(ctx, id).raw));
  for (const id of siteIds) {
    const { info, raw } = siteById(ctx, id);
    const ops = new SiteOps(ctx.builder, `${raw.anchor.name}::${rule}`, floatTypeOf(raw.io.q));
    const before = new Set(ctx.builder.graph.nodes);
    const outcome = rewrite({ info, raw, ops, shapes });
    const now = new Set(ctx.builder.graph.nodes);
    const added = [...now].filter((n) => !before.has(n)).length;
    const removed = [...before].filter((n) => !now.has(n)).length;
    changes.push(siteChange(info, ctx.seqLen, outcome.after, outcome.computed, { added, removed }));
    warnings.push(...(outcome.warnings ?? []));
  }
  // Full masks the sites no longer read (they read its last row instead) are not built at all.
  dropDeadMasks(ctx.builder);
  return { changes, warnings };
}
