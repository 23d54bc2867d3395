// The record a plan leaves on each site it rewrites, so that the analysis can report the plan of a planned model
// (analysis/attention/plan-site.ts reads it): the choices of the site's heads, in the plan file's notation and
// numbering, as the metadata entry PLAN_MARKER of the site's anchor node (its Softmax or fused operator, whose name
// every rewrite keeps). Node metadata is ignored by runtimes; the entry replaces an earlier one of the same key.
import { PLAN_MARKER } from '../../analysis/attention/plan-site';
import type { Graph } from '../../analysis/ir/graph';
import type { SiteInfo } from '../../analysis/report/types';
import { describeHeadChoice, type HeadChoice } from './choices';

type Entry = { key?: string | null; value?: string | null };

/** Records `choices` on the anchor of `site` (as the analysis named it before the rewrite). */
export function recordPlan(graph: Graph, site: SiteInfo, choices: readonly HeadChoice[]): void {
  const name = site.anchors.softmax ?? site.anchors.fused;
  const anchor = name ? graph.nodeByName(name) : undefined;
  if (!anchor) return;
  const others = ((anchor.proto.metadataProps as Entry[] | null | undefined) ?? []).filter((e) => e.key !== PLAN_MARKER);
  anchor.proto.metadataProps = [...others, { key: PLAN_MARKER, value: JSON.stringify({ version: 1, heads: choices.map(describeHeadChoice) }) }];
}
