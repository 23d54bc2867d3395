// What one head computes under each choice in the plan's compute-reducing realisation (`plan` with impl `blocked`,
// split.ts), on the terms of the rewrite report (sparse/cost.ts): query rows and keys per row as the graph computes
// them (rounded up to whole blocks), Q·Kᵀ and ·V at 2·rows·keys·headDim FLOPs each, plus block-topk's selection.
// - dense: S rows of S keys (also what a site left as it is computes);
// - window W: the blocked window, rows rounded up to blocks of R = defaultBlockRows(W), blockedKeys(W, R) per row;
// - block-topk b,k: the gather form, S rounded up to blocks of b, min(k + 2, blocks)·b keys per row, and the selection
//   (block means and their products: 2·blocks²·d + 2·S·d per head);
// - sink, strided, power: the blocked window plus the pattern's extra key columns (sparse/blocked-pattern.ts): rows
//   rounded up to blocks of R = defaultBlockRows(W), blockedKeys(W, R) + extraColumns keys per row;
// - pruned: nothing (the rewrite report counts attention only, not the projections the pruned head also loses).
// The advisor's FLOP budget is spent with these figures, and a test holds them equal to the rewrite report's
// flopsAfter for the same plan; a change to split.ts's forms must change this file too.
import { blockedKeys, defaultBlockRows } from '../sparse/blocked-window';
import type { Computed } from '../sparse/cost';
import { extraColumns } from '../sparse/pattern-extras';
import type { HeadChoice } from './choices';

export type RealisedForm = 'dense' | 'blocked' | 'gather' | 'pruned';

export interface RealisedHead extends Computed {
  form: RealisedForm;
}

/** Rows and keys one head computes under `c` at `seq` tokens in the blocked realisation; `headDim` for the selection. */
export function realisedHead(c: HeadChoice, seq: number, causal: boolean, headDim: number): RealisedHead {
  switch (c.kind) {
    case 'dense': return { form: 'dense', rows: seq, keys: seq };
    case 'pruned': return { form: 'pruned', rows: 0, keys: 0 };
    case 'window': {
      const R = defaultBlockRows(c.window);
      return { form: 'blocked', rows: Math.ceil(seq / R) * R, keys: blockedKeys(c.window, R, causal) };
    }
    case 'block-topk': {
      const blocks = Math.ceil(seq / c.block);
      return { form: 'gather', rows: blocks * c.block, keys: Math.min(c.k + 2, blocks) * c.block, extraFlops: 2 * blocks * blocks * headDim + 2 * seq * headDim };
    }
    case 'sink':
    case 'strided':
    case 'power': {
      const R = defaultBlockRows(c.window);
      // extraColumns reads only the pattern's own parameter (sink, stride, window), not the heads of a strided one.
      const pattern = c.kind === 'sink' ? { ...c } : c.kind === 'strided' ? { ...c, heads: 1 } : { ...c };
      return { form: 'blocked', rows: Math.ceil(seq / R) * R, keys: blockedKeys(c.window, R, causal) + extraColumns(pattern, seq, R) };
    }
  }
}

/** Attention FLOPs of one head under `c` (Q·Kᵀ and ·V, plus any selection), as costOf counts them. */
export function realisedHeadFlops(c: HeadChoice, seq: number, causal: boolean, headDim: number): number {
  const r = realisedHead(c, seq, causal, headDim);
  return 2 * r.rows * r.keys * 2 * headDim + (r.extraFlops ?? 0);
}
