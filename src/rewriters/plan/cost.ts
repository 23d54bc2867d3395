// The report of a plan per site: the choice of every head, the mean keys a query sees over the heads that remain, and
// the analytic cost of what the graph computes (sparse/cost.ts terms: rows × keys per head, padding included).
import type { SiteInfo } from '../../analysis/report/types';
import type { SiteChange } from '../rule';
import { costOf, denseKeysPerQuery, describeBefore, round, type Computed } from '../sparse/cost';
import { keysPerQueryOfHead } from '../sparse/pattern';
import { describeHeadChoice, summarizeDescriptions, type HeadChoice } from './choices';
import { patternOf, type PlanHead } from './heads';

/** What one group of heads computes. */
export interface GroupCost extends Computed {
  heads: number;
}

export function groupsCost(info: SiteInfo, groups: GroupCost[]): { flops: number | null; bytes: number | null } {
  let flops = 0;
  let bytes = 0;
  for (const g of groups) {
    const c = costOf({ ...info, heads: g.heads }, g);
    if (c.flops === null || c.bytes === null) return { flops: null, bytes: null };
    flops += c.flops;
    bytes += c.bytes;
  }
  return { flops, bytes };
}

/** Mean keys a query of this head sees at `seq` tokens (block-topk: its bound, at most k + 2 blocks). */
export function headKeys(info: SiteInfo, h: PlanHead, seq: number, origHeads: number): number {
  const c = h.choice;
  if (c.kind === 'dense') return denseKeysPerQuery(info, seq);
  if (c.kind === 'block-topk') return Math.min(Math.min(c.k + 2, Math.ceil(seq / c.block)) * c.block, denseKeysPerQuery(info, seq));
  return keysPerQueryOfHead(patternOf(c, info.causal, origHeads)!, seq, h.orig);
}

export function planChange(
  original: SiteInfo, choices: readonly HeadChoice[], heads: PlanHead[], seq: number,
  done: { impl: string; groups: GroupCost[]; nodesAdded: number; nodesRemoved: number; extra?: Record<string, unknown> },
  described: string[] = choices.map(describeHeadChoice),
): SiteChange {
  const cost = groupsCost(original, done.groups);
  const keys = heads.length ? heads.reduce((a, h) => a + headKeys(original, h, seq, choices.length), 0) / heads.length : 0;
  return {
    site: original.id,
    before: describeBefore(original, seq),
    after: {
      plan: summarizeDescriptions(described),
      heads: described,
      keptHeads: heads.length,
      impl: done.impl,
      keysPerQuery: round(keys),
      ...done.extra,
    },
    flopsBefore: original.flops,
    flopsAfter: cost.flops,
    bytesBefore: original.attnMatrixBytes,
    bytesAfter: cost.bytes,
    nodesAdded: done.nodesAdded,
    nodesRemoved: done.nodesRemoved,
  };
}
