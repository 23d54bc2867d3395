// Checks shared by the rules whose parameters name sites and heads (prune-heads, drop-attention, share-attn,
// share-kv): every named site must exist, every head index must be one of the site's heads.
import type { AnalysisReport, SiteInfo } from '../../analysis/report/types';
import { RuleError } from '../rule';

export function requireSite(rule: string, report: AnalysisReport, id: unknown): SiteInfo {
  const site = Number.isInteger(id) ? report.sites.find((s) => s.id === id) : undefined;
  if (!site) {
    const ids = report.sites.map((s) => s.id);
    const range = ids.length ? `sites ${ids[0]}-${ids[ids.length - 1]}` : 'no attention sites';
    throw new RuleError(rule, `site ${String(id)} does not exist (the model has ${range})`);
  }
  return site;
}

export function requireHeads(rule: string, site: SiteInfo, heads: unknown): number[] {
  if (!Array.isArray(heads) || heads.length === 0) throw new RuleError(rule, `site ${site.id}: give at least one head`);
  if (!site.heads) throw new RuleError(rule, `site ${site.id}: the analysis could not read its head count`);
  const seen = new Set<number>();
  for (const h of heads) {
    if (!Number.isInteger(h) || h < 0 || h >= site.heads) {
      throw new RuleError(rule, `site ${site.id} has ${site.heads} heads (0-${site.heads - 1}); head ${String(h)} is out of range`);
    }
    if (seen.has(h)) throw new RuleError(rule, `site ${site.id}: head ${h} is listed twice`);
    seen.add(h);
  }
  return [...seen].sort((a, b) => a - b);
}

/** The site ids a `Record<site, heads>` names, as numbers. */
export function siteKeys(rule: string, record: unknown): number[] {
  if (!record || typeof record !== 'object' || Object.keys(record).length === 0) throw new RuleError(rule, 'name at least one site');
  return Object.keys(record).map((k) => {
    const n = Number(k);
    if (!Number.isInteger(n) || n < 0) throw new RuleError(rule, `'${k}' is not a site number`);
    return n;
  });
}
