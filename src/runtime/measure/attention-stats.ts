// Per-head statistics of attention probabilities (methods.md): entropy, mass on the first token, mean attended
// distance, mass on the diagonal, and a sparse pattern's attention recall; plus the two invariants any softmax output
// must satisfy (rows sum to 1; a causal site puts no mass on future keys), reported so callers can check them.
import { type ScoreLayout, layoutSize, plainLayout } from './score-layout';
import { type SparsePattern, isVisible } from './sparse-pattern';

export interface HeadStats {
  head: number;
  /** Mean over queries of −Σ p ln p, in nats. */
  entropy: number;
  /** Mean over queries of the probability on key 0. */
  firstTokenMass: number;
  /** Mean over queries of Σ p·|i − j|, in positions. */
  meanDistance: number;
  /** Mean over queries of the probability on the key at the query's own position. */
  diagonalMass: number;
  /** Share of the dense attention mass that falls inside the pattern, when one is given. */
  recall?: number;
}

export interface MapStats {
  heads: HeadStats[];
  /** Largest |Σ_j p − 1| over all rows. */
  maxRowSumError: number;
  /** Largest mass on keys j > i over all rows (0 for a causal site). */
  maxFutureMass: number;
}

/**
 * One set of statistics per query head, over every batch item (and window) of the map.
 * @param probs  softmax output.
 * @param layout how it is laid out (score-layout.ts: `scoreLayout` reads it from the site and the output's shape), or
 *               the dims of an explicit [batch, heads, queries, keys] map (leading axes may be absent).
 * Queries are aligned to the end of the keys: query q sits at position q + keys − queries (the past comes first).
 */
export function attentionStats(probs: Float32Array | Float64Array, layout: ScoreLayout | number[], causal: boolean, pattern?: SparsePattern): MapStats {
  const l = Array.isArray(layout) ? plainLayout(layout) : layout;
  if (probs.length !== layoutSize(l)) throw new Error(`attention map of ${probs.length} values does not fill ${l.form} = ${layoutSize(l)}`);
  const { keys, queries, heads } = l;
  const blocks = l.batch * l.windows;
  const offset = keys - queries;
  const acc = Array.from({ length: heads }, () => ({ entropy: 0, first: 0, distance: 0, diagonal: 0, recall: 0 }));
  let maxRowSumError = 0;
  let maxFutureMass = 0;
  // Block (b, w) of every layout holds its heads contiguously: see score-layout.ts.
  for (let b = 0; b < blocks; b++) {
    for (let h = 0; h < heads; h++) {
      const a = acc[h];
      for (let q = 0; q < queries; q++) {
        const base = ((b * heads + h) * queries + q) * keys;
        const i = q + offset;
        let sum = 0;
        let future = 0;
        for (let j = 0; j < keys; j++) {
          const p = probs[base + j];
          sum += p;
          if (p > 0) a.entropy -= p * Math.log(p);
          a.distance += p * Math.abs(i - j);
          if (j > i) future += p;
          if (pattern && isVisible(pattern, i, j, h, causal)) a.recall += p;
        }
        a.first += probs[base];
        if (i >= 0 && i < keys) a.diagonal += probs[base + i];
        maxRowSumError = Math.max(maxRowSumError, Math.abs(sum - 1));
        maxFutureMass = Math.max(maxFutureMass, future);
      }
    }
  }
  const rows = blocks * queries;
  return {
    heads: acc.map((a, head) => {
      const s: HeadStats = {
        head,
        entropy: a.entropy / rows,
        firstTokenMass: a.first / rows,
        meanDistance: a.distance / rows,
        diagonalMass: a.diagonal / rows,
      };
      if (pattern) s.recall = a.recall / rows;
      return s;
    }),
    maxRowSumError,
    maxFutureMass,
  };
}
