// The Heads view's numbers: each site's heads ranked by importance (the output's change when the head is zeroed), and
// the prune-heads plan of the least important ones that the view hands to the Rewrite studio. Pure.
import type { ImportanceResults } from '../../src/protocol';

type SiteScores = ImportanceResults['sites'][number];

/** Head indices from least to most important (ties in head order, so the plan is the same every time). */
export function rankHeads(site: SiteScores): number[] {
  return [...site.heads].sort((a, b) => a.outputChange - b.outputChange || a.head - b.head).map((h) => h.head);
}

/**
 * The `count` least important heads of each chosen site as a prune-heads parameter ("0:3,5;1:2"). A site keeps at
 * least one head: pruning all of a site's heads is drop-attention, another rule.
 */
export function prunePlan(results: ImportanceResults, count: number, site: number | null): string {
  if (!(Number.isInteger(count) && count >= 1)) throw new Error('the number of heads must be a positive integer');
  const parts: string[] = [];
  for (const s of results.sites) {
    if (site !== null && s.site !== site) continue;
    const heads = rankHeads(s).slice(0, Math.min(count, s.heads.length - 1)).sort((a, b) => a - b);
    if (heads.length > 0) parts.push(`${s.site}:${heads.join(',')}`);
  }
  if (parts.length === 0) throw new Error('no head can be pruned there (a site keeps at least one head)');
  return parts.join(';');
}

/** Each head's share of its site's total output change: how the bars compare within a site. */
export function shares(site: SiteScores): number[] {
  const total = site.heads.reduce((a, h) => a + h.outputChange, 0);
  return site.heads.map((h) => (total > 0 ? h.outputChange / total : 0));
}
