// Finds every attention block: each Softmax is tried as the heart of written-out attention, each fused attention op
// is read from its attributes. Sites are numbered in graph order; every Softmax not claimed is reported with the
// reason the match failed.
import type { Graph } from '../ir/graph';
import { ShapeInfo } from '../ir/shapes';
import type { UnmatchedInfo } from '../report/types';
import { FUSED_OPS, fusedKey, matchFused } from './fused';
import { impossibleFigures } from './figures';
import { fail, type Ctx, type Match } from './match';
import { fusedBinding } from './layout/fused-binding';
import { planNodes, planSplit, sitePlan, type PlanSplit } from './plan-site';
import { hasLearnedPositions } from './positions';
import type { RawSite } from './site';
import { matchSoftmax } from './unfused';

export interface Detection {
  sites: RawSite[];
  unmatched: UnmatchedInfo[];
  ctx: Ctx;
}

export function detectAttention(graph: Graph, shapes = new ShapeInfo(graph)): Detection {
  const ctx: Ctx = { graph, shapes, order: graph.nodeIndex() };
  const sites: RawSite[] = [];
  const failures: UnmatchedInfo[] = [];
  const plans = planNodes(graph);
  for (const n of graph.nodes) {
    // A rewrite's own Softmax (`<anchor>::<rule>/…`, e.g. the dense rows of a blocked site's prefix tokens) is part
    // of its anchor's site, which claims it below, not a site of its own.
    if (n.opType === 'Softmax' && n.domain === '' && rewriteHelper(graph, n.name)) continue;
    if (n.opType === 'Softmax' && n.domain === '') {
      const split = plans.size ? planSplit(ctx, plans, n) : undefined;
      const m = possible(graph, matchSoftmax(ctx, n, split));
      if (m.ok) sites.push(withPlan(m.value, split));
      else failures.push({ node: n.name, reason: m.reason });
    } else if (FUSED_OPS.has(fusedKey(n))) {
      const m = possible(graph, matchFused(ctx, n));
      if (m.ok) {
        const binding = fusedBinding(ctx, n, m.value);
        sites.push(withPlan(binding ? { ...m.value, binding } : m.value, undefined));
      }
      else failures.push({ node: n.name, reason: m.reason });
    }
  }
  sites.sort((a, b) => ctx.order.get(a.anchor)! - ctx.order.get(b.anchor)!);
  claimRewriterNodes(graph, sites);
  if (sites.some((s) => s.position === 'none') && hasLearnedPositions(graph)) {
    for (const s of sites) if (s.position === 'none') s.position = 'learned-absolute';
  }
  return { sites, unmatched: failures, ctx };
}

/** The per-head plan recorded on the site, and its head groups, where it has them. */
function withPlan(site: RawSite, split: PlanSplit | undefined): RawSite {
  const r = sitePlan(site.anchor, split, site.heads);
  return r.plan ? { ...site, plan: r.plan, notes: [...site.notes, ...r.notes] } : site;
}

/** A match whose figures cannot be right becomes a failure with the reason. */
function possible(graph: Graph, m: Match<RawSite>): Match<RawSite> {
  if (!m.ok) return m;
  const why = impossibleFigures(graph, m.value);
  return why ? fail(`${m.value.form}: ${why}`) : m;
}

function rewriteHelper(graph: Graph, name: string): boolean {
  const cut = name.indexOf('::');
  return cut > 0 && graph.nodeByName(name.slice(0, cut)) !== undefined;
}

/**
 * Rewriters name the nodes they add `<anchor>::<rule>/...`, after the site's anchor node (its Softmax or fused op,
 * whose name a rewrite keeps). Those nodes belong to the site even where the matcher's walk does not reach them
 * (block gathers, padding), so that timing attributes them to attention.
 */
function claimRewriterNodes(graph: Graph, sites: RawSite[]): void {
  const byAnchor = new Map(sites.map((s) => [s.anchor.name, s]));
  for (const n of graph.nodes) {
    const cut = n.name.indexOf('::');
    if (cut <= 0) continue;
    byAnchor.get(n.name.slice(0, cut))?.nodes.add(n);
  }
}
