// What the runtime needs from the analysis' sites to attribute profiler time: each site's nodes, and its score path
// (the part whose cost grows with the square of the sequence length).
import type { SiteInfo } from '../analysis/report/types';
import { isRotaryNode } from '../rewriters/node-names';
import type { SiteNodes } from './measure/profile-trace';

/**
 * The score path of a site: the fused operator, or the site's nodes from the QK product to the PV product in graph
 * order (scale, mask, softmax and casts between them); and, in a rewritten model, every node a rule added to the site.
 * Rules name those `<anchor>::<rule>/…`, and most of them sit before the QK product in graph order (a blocked window
 * pads and gathers K and V per query block, `fuse` brings Q, K and V to its operator's layout and builds its bias), so
 * the span alone would leave a rewrite's own work out and make it look cheaper than it is. Projections (and their bias
 * Adds) and rotary embeddings are never part of it, whoever wrote them (a rule's rotation: rewriters/node-names.ts).
 */
export function scorePath(site: SiteInfo): string[] {
  const projections = projectionNodes(site);
  const added = addedByRules(site);
  const keep = (names: string[]) => site.nodes.filter((n) => (names.includes(n) || added.has(n)) && !projections.has(n) && !isRotaryNode(n));
  if (site.anchors.fused) return keep([site.anchors.fused]);
  const { qk, pv } = site.anchors;
  if (!qk || !pv) return keep(site.anchors.softmax ? [site.anchors.softmax] : []);
  const from = site.nodes.indexOf(qk);
  const to = site.nodes.indexOf(pv);
  if (from < 0 || to < from) return keep([qk, ...(site.anchors.softmax ? [site.anchors.softmax] : []), pv]);
  return keep(site.nodes.slice(from, to + 1));
}

/** The site's nodes that a rule added: named after its anchor (the Softmax, or the fused operator that took its name). */
function addedByRules(site: SiteInfo): Set<string> {
  const prefixes = [site.anchors.softmax, site.anchors.fused].filter((a): a is string => !!a).map((a) => `${a}::`);
  return new Set(site.nodes.filter((n) => prefixes.some((p) => n.startsWith(p))));
}

/** The projections' own nodes; not a fused operator that applies them inside (com.microsoft.Attention's packed weights). */
function projectionNodes(site: SiteInfo): Set<string> {
  const out = new Set<string>();
  for (const p of Object.values(site.projections)) {
    if (!p) continue;
    out.add(p.node);
    if (p.biasNode) out.add(p.biasNode);
  }
  if (site.anchors.fused) out.delete(site.anchors.fused);
  return out;
}

export function profileSites(sites: SiteInfo[]): SiteNodes[] {
  return sites.map((s) => ({ id: s.id, nodes: [...s.nodes], core: scorePath(s), ...(s.maskBuild ? { mask: [...s.maskBuild] } : {}) }));
}
