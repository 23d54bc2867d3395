// Parameters of the rules that make one site reuse another's tensors (share-attn, share-kv): `i:j` pairs, source i
// and target j. The source must come first in the graph (the target reads what the source computed), a target is
// rewritten at most once, and both must be the same kind of attention in the same form.
import type { AnalysisReport, SiteInfo } from '../../analysis/report/types';
import { RuleError } from '../rule';
import { requireSite } from '../prune/site-params';
import { siteForm } from '../prune/edit/structure';

export interface PairParams {
  pairs: [number, number][];
}

export function checkPairs(rule: string, params: PairParams, report: AnalysisReport, compatible: (i: SiteInfo, j: SiteInfo) => string | null): void {
  if (!Array.isArray(params?.pairs) || params.pairs.length === 0) throw new RuleError(rule, 'give at least one I:J pair');
  const targets = new Set<number>();
  for (const pair of params.pairs) {
    if (!Array.isArray(pair) || pair.length !== 2) throw new RuleError(rule, `'${JSON.stringify(pair)}' is not an I:J pair`);
    const [i, j] = pair;
    const si = requireSite(rule, report, i);
    const sj = requireSite(rule, report, j);
    if (i === j) throw new RuleError(rule, `site ${i} cannot share with itself`);
    if (i > j) throw new RuleError(rule, `${i}:${j}: the source site must come before the target in the graph (site ${j} would read what site ${i} computes later)`);
    if (targets.has(j)) throw new RuleError(rule, `site ${j} is the target of two pairs`);
    targets.add(j);
    for (const s of [si, sj]) if (!siteForm(s.form)) throw new RuleError(rule, `site ${s.id}: ${s.form} sites are not supported`);
    if (si.kind !== sj.kind) throw new RuleError(rule, `${i}:${j}: site ${i} is ${si.kind}-attention and site ${j} is ${sj.kind}-attention`);
    const reason = compatible(si, sj);
    if (reason) throw new RuleError(rule, `${i}:${j}: ${reason}`);
  }
}

export function sourceOf(params: PairParams, target: number): number | undefined {
  return params.pairs.find(([, j]) => j === target)?.[0];
}

/** Same head layout: heads, KV heads and head size. */
export function sameHeads(i: SiteInfo, j: SiteInfo, what: 'heads' | 'kv'): string | null {
  if (i.heads !== j.heads) return `${i.heads} and ${j.heads} query heads`;
  if (what === 'kv' && i.kvHeads !== j.kvHeads) return `${i.kvHeads} and ${j.kvHeads} KV heads`;
  if (i.headDim !== j.headDim) return `head sizes ${i.headDim} and ${j.headDim}`;
  return null;
}
