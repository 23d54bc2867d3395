// Attention recall of many candidate patterns at once (the advisor's profiling, issue 10): for every head of a map, the
// share of its dense attention mass that each pattern keeps.
//
// Static patterns use the one visibility predicate (sparse-pattern.ts → rewriters/sparse/pattern.ts). It is evaluated
// once per pattern, length and head class into a list of visible (query, key) cells; each map then only sums its
// probabilities over those cells, so a pattern costs what it keeps rather than S² predicate calls per map.
//
// `block-topk b k` depends on the data: its rewrite ranks key blocks by (mean query)·(mean key)/√d. That score is the
// mean over the block pair of q·k/√d, and a softmax row's log-probabilities are its scores less one constant per row,
// so the mean of log p over a block pair ranks the key blocks of a query block exactly as the rewrite does, read from
// the probabilities alone, as long as the scores are plain scaled dot products (no bias, no soft-capping) and no
// probability underflows to 0 (then log p is clamped at ln 1e-45, which can only demote a block with no mass). One
// cell set it cannot read: on a causal site the diagonal block's future half is masked, so its rank is estimated
// from its visible half. The estimate is checked against the rewrite's own selection in test/runtime/pattern-recall.test.ts.
import type { ScoreLayout } from './score-layout';
import { type SparsePattern, describePattern, visibilityOf } from './sparse-pattern';

export type RecallPattern = SparsePattern | { kind: 'block-topk'; block: number; k: number };

export interface PatternRecallSums {
  /** [pattern][head]: probability mass inside the pattern, summed over every row of the map. */
  mass: number[][];
  /** Rows summed over per head (batch items × windows × queries). */
  rows: number;
}

export function describeRecallPattern(p: RecallPattern): string {
  return p.kind === 'block-topk' ? `block-topk ${p.block},${p.k}` : describePattern(p);
}

/** Visible cells of one static pattern: for row q, keys cells[offsets[q]] … cells[offsets[q + 1] − 1]. */
interface CellList {
  offsets: Int32Array;
  cells: Int32Array;
}

const cellCache = new Map<string, CellList>();
const CACHE_LIMIT = 256;

/** The head class that decides a pattern's visibility: h mod k for strided patterns, 0 for the others. */
function headClass(p: SparsePattern, h: number): number {
  return p.kind === 'strided' ? h % p.stride : 0;
}

function visibleCells(p: SparsePattern, queries: number, keys: number, head: number, causal: boolean): CellList {
  const key = `${describePattern(p)}|${queries}|${keys}|${causal}|${headClass(p, head)}`;
  const hit = cellCache.get(key);
  if (hit) return hit;
  const offset = keys - queries;
  const offsets = new Int32Array(queries + 1);
  const isVisible = visibilityOf(p, causal);
  let cells = new Int32Array(Math.max(16, queries));
  let n = 0;
  for (let q = 0; q < queries; q++) {
    const i = q + offset;
    for (let j = 0; j < keys; j++) {
      if (!isVisible(i, j, head)) continue;
      if (n === cells.length) {
        const grown = new Int32Array(cells.length * 2);
        grown.set(cells);
        cells = grown;
      }
      cells[n++] = j;
    }
    offsets[q + 1] = n;
  }
  const list = { offsets, cells: cells.slice(0, n) };
  if (cellCache.size >= CACHE_LIMIT) cellCache.clear();
  cellCache.set(key, list);
  return list;
}

function staticMass(probs: Float32Array | Float64Array, base: number, l: ScoreLayout, list: CellList): number {
  let sum = 0;
  for (let q = 0; q < l.queries; q++) {
    const row = base + q * l.keys;
    for (let c = list.offsets[q]; c < list.offsets[q + 1]; c++) sum += probs[row + list.cells[c]];
  }
  return sum;
}

/**
 * Per query block and key block of one (item, head) map: the probability mass and the mean log-probability.
 * Blocks are of `b` positions from position 0 (queries by absolute position, as the rewrite places them).
 */
function blockTables(probs: Float32Array | Float64Array, base: number, l: ScoreLayout, b: number) {
  const offset = l.keys - l.queries;
  const nbk = Math.ceil(l.keys / b);
  const qb0 = Math.floor(offset / b);
  const nbq = Math.ceil((offset + l.queries) / b) - qb0;
  const mass = new Float64Array(nbq * nbk);
  const logSum = new Float64Array(nbq * nbk);
  const count = new Float64Array(nbq * nbk);
  for (let q = 0; q < l.queries; q++) {
    const rowBlock = (Math.floor((q + offset) / b) - qb0) * nbk;
    const row = base + q * l.keys;
    for (let j = 0; j < l.keys; j++) {
      const p = probs[row + j];
      const cell = rowBlock + Math.floor(j / b);
      mass[cell] += p;
      // A masked (future) cell has p = 0 exactly and carries no score information: it is left out of the mean.
      if (p > 0) {
        logSum[cell] += Math.log(Math.max(p, 1e-45));
        count[cell] += 1;
      }
    }
  }
  return { mass, logSum, count, nbq, nbk, qb0 };
}

/** Mass kept by `block-topk b k` for each k of `ks`, for one (item, head) map. */
function blockTopkMass(probs: Float32Array | Float64Array, base: number, l: ScoreLayout, b: number, ks: number[], causal: boolean): number[] {
  const t = blockTables(probs, base, l, b);
  const out = ks.map(() => 0);
  for (let qb = 0; qb < t.nbq; qb++) {
    const abs = qb + t.qb0;
    const eligible: { kb: number; score: number }[] = [];
    for (let kb = 0; kb < t.nbk; kb++) {
      if (causal && kb > abs) continue;
      const c = qb * t.nbk + kb;
      eligible.push({ kb, score: t.count[c] > 0 ? t.logSum[c] / t.count[c] : Math.log(1e-45) });
    }
    // TopK's order: best score first, ties to the lower block index.
    eligible.sort((x, y) => y.score - x.score || x.kb - y.kb);
    ks.forEach((k, n) => {
      const kept = new Set<number>([abs, 0]);
      for (let r = 0; r < Math.min(k, eligible.length); r++) kept.add(eligible[r].kb);
      for (const kb of kept) if (kb < t.nbk && (!causal || kb <= abs)) out[n] += t.mass[qb * t.nbk + kb];
    });
  }
  return out;
}

/**
 * Recall sums of every pattern, per head, over a whole map (every batch item and window).
 * @param probs  softmax output laid out as `layout` (score-layout.ts).
 */
export function patternRecall(probs: Float32Array | Float64Array, layout: ScoreLayout, causal: boolean, patterns: RecallPattern[]): PatternRecallSums {
  const l = layout;
  const blocks = l.batch * l.windows;
  const mass = patterns.map(() => new Array<number>(l.heads).fill(0));
  // block-topk candidates sharing a block size share one pass over the map.
  const topkGroups = new Map<number, number[]>();
  patterns.forEach((p, n) => {
    if (p.kind === 'block-topk') topkGroups.set(p.block, [...(topkGroups.get(p.block) ?? []), n]);
  });
  for (let bw = 0; bw < blocks; bw++) {
    for (let h = 0; h < l.heads; h++) {
      const base = (bw * l.heads + h) * l.queries * l.keys;
      patterns.forEach((p, n) => {
        if (p.kind !== 'block-topk') mass[n][h] += staticMass(probs, base, l, visibleCells(p, l.queries, l.keys, h, causal));
      });
      for (const [b, members] of topkGroups) {
        const ks = members.map((n) => (patterns[n] as { k: number }).k);
        blockTopkMass(probs, base, l, b, ks, causal).forEach((m, x) => {
          mass[members[x]][h] += m;
        });
      }
    }
  }
  return { mass, rows: blocks * l.queries };
}
