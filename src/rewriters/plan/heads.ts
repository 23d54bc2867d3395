// A site's heads as the sparse part of a plan sees them: after the pruned heads are gone, head n of the site is head
// `orig` of the original site (strided shards are by that original index), and heads that share a choice form a group.
import { describeHeadChoice, type HeadChoice } from './choices';
import type { Pattern } from '../sparse/pattern';

export interface PlanHead {
  /** Index in the original site (the plan's numbering). */
  orig: number;
  choice: Exclude<HeadChoice, { kind: 'pruned' }>;
}

export interface HeadGroup {
  choice: PlanHead['choice'];
  /** Positions of the group's heads in the site as it is now (after pruning), ascending. */
  heads: number[];
}

/** The heads that remain after pruning, in order, with their original indices. */
export function keptHeads(choices: readonly HeadChoice[]): PlanHead[] {
  return choices.flatMap((choice, orig) => (choice.kind === 'pruned' ? [] : [{ orig, choice }]));
}

/** Heads with the same choice, in order of first appearance. */
export function groupHeads(heads: readonly PlanHead[]): HeadGroup[] {
  const groups = new Map<string, HeadGroup>();
  heads.forEach((h, n) => {
    const key = describeHeadChoice(h.choice);
    const g = groups.get(key) ?? { choice: h.choice, heads: [] };
    g.heads.push(n);
    groups.set(key, g);
  });
  return [...groups.values()];
}

/**
 * The static pattern of a choice (null for dense and block-topk). A strided pattern is sized for the original site's
 * `origHeads` heads, so that row h of its per-head mask is the original head h's shard.
 */
export function patternOf(c: PlanHead['choice'], causal: boolean, origHeads: number): Pattern | null {
  switch (c.kind) {
    case 'window': return { kind: 'window', window: c.window, causal };
    case 'sink': return { kind: 'sink', window: c.window, sink: c.sink };
    case 'strided': return { kind: 'strided', window: c.window, stride: c.stride, heads: origHeads };
    case 'power': return { kind: 'power', window: c.window };
    case 'dense':
    case 'block-topk':
      return null;
  }
}
