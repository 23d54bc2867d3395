// What the runtime needs from the analysis' sites to attribute profiler time: each site's nodes, and its score path
// (the part whose cost grows with the square of the sequence length).
import type { SiteInfo } from '../analysis/report/types';
import type { SiteNodes } from './measure/profile-trace';

/**
 * The score path of a site: the fused operator, or the site's nodes from the QK product to the PV product in graph
 * order (scale, mask, softmax and casts between them). Projections and rotary embeddings sit outside that span.
 */
export function scorePath(site: SiteInfo): string[] {
  if (site.anchors.fused) return [site.anchors.fused];
  const { qk, pv } = site.anchors;
  if (!qk || !pv) return site.anchors.softmax ? [site.anchors.softmax] : [];
  const from = site.nodes.indexOf(qk);
  const to = site.nodes.indexOf(pv);
  if (from < 0 || to < from) return [qk, ...(site.anchors.softmax ? [site.anchors.softmax] : []), pv];
  const first = site.nodes.slice(from, to + 1);
  if (!site.plan?.groups || !site.anchors.softmax) return first;
  // A plan's split site: the first group's path, and the other groups' copies, which the plan names after the anchor
  // (with the head slices and the merge: a Gather or Concat each, small next to the scores).
  const prefix = `${site.anchors.softmax}::plan/`;
  const core = new Set([...first, ...site.nodes.filter((n) => n.startsWith(prefix))]);
  return site.nodes.filter((n) => core.has(n));
}

export function profileSites(sites: SiteInfo[]): SiteNodes[] {
  return sites.map((s) => ({ id: s.id, nodes: [...s.nodes], core: scorePath(s) }));
}
