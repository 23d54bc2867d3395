// Where the advisor's data comes from (issue 10). For a language model, one token file serves both purposes, kept
// apart: the evaluation windows are exactly those of `eval` (methods.md: n evenly spaced windows of L tokens, window k
// at floor(k·(N − L − 1)/n), each reading L + 1 tokens), and the calibration windows are placed in the gaps between
// them, so that no token of a calibration window is read by any evaluation window. The profile and the choice among
// candidate plans see only calibration windows; the reported scores only evaluation windows.
import { loadTokenFile, windowStarts } from '../../runtime/measure/task-score';
import type { HostTensor } from '../../runtime/tensor';

export interface TokenSplit {
  tokens: Int32Array;
  seq: number;
  /** Starts of the evaluation windows (eval's definition). */
  evalStarts: number[];
  /** Starts of the calibration windows, each L + 1 tokens that no evaluation window reads. */
  calibrationStarts: number[];
  /** How the two were kept apart, for reports. */
  how: string;
}

export class CalibrationError extends Error {
  readonly userError = true;
}

/**
 * Calibration windows of `seq` + 1 tokens in the gaps between the evaluation windows: `count` of them, spread evenly
 * over the gaps that can hold one (a gap holding several may take several), each centred in its share of the gap.
 */
export function splitTokens(tokens: Int32Array, seq: number, evalWindows: number, count: number): TokenSplit {
  return splitTokensAt(tokens, [seq], evalWindows, count)[0];
}

/**
 * The same at several lengths (issue 10, plans for several lengths), one split per length in the order given. Each
 * length has its own evaluation windows (eval's, at that length); the gaps are those between the evaluation windows of
 * every length, cut for the longest, and the calibration windows of every length start at the same places (a shorter
 * one is the start of the longest), so no token of any calibration window is read by any evaluation window of any
 * length. With one length this is exactly the single-length split.
 */
export function splitTokensAt(tokens: Int32Array, seqs: number[], evalWindows: number, count: number): TokenSplit[] {
  const evals = seqs.map((seq) => ({ seq, starts: windowStarts(tokens.length, seq, evalWindows) }));
  const longest = Math.max(...seqs);
  const span = longest + 1;
  // Free stretches [from, to) outside every evaluation window, in file order.
  const taken = evals.flatMap((e) => e.starts.map((s) => ({ from: s, to: s + e.seq + 1 }))).sort((a, b) => a.from - b.from);
  const free: { from: number; to: number }[] = [];
  let cursor = 0;
  for (const t of taken) {
    if (t.from > cursor) free.push({ from: cursor, to: t.from });
    cursor = Math.max(cursor, t.to);
  }
  if (tokens.length > cursor) free.push({ from: cursor, to: tokens.length });
  const slots = free.flatMap((g) => {
    const fit = Math.floor((g.to - g.from) / span);
    return Array.from({ length: fit }, (_, n) => {
      // n-th of `fit` equal shares of the gap, the window centred in it.
      const share = (g.to - g.from) / fit;
      return g.from + Math.floor(n * share + (share - span) / 2);
    });
  });
  const lengths = seqs.length === 1 ? `${seqs[0]}` : `${seqs.join(', ')} tokens`;
  if (slots.length < count) {
    throw new CalibrationError(
      `the token file holds ${tokens.length} tokens: between its ${evalWindows} evaluation windows of ${lengths} there is room for ${slots.length} ` +
        `calibration window(s)${seqs.length > 1 ? ` of ${longest}` : ''}, ${count} asked; give a longer file, fewer --eval-windows or fewer --calib-windows`,
    );
  }
  const calibrationStarts = Array.from({ length: count }, (_, c) => slots[Math.floor(((c + 0.5) * slots.length) / count)]);
  for (const e of evals) {
    for (const c of calibrationStarts) {
      const hit = taken.find((t) => c < t.to && t.from < c + e.seq + 1);
      if (hit) throw new Error(`calibration window at ${c} overlaps an evaluation window at ${hit.from}`);
    }
  }
  const how = seqs.length === 1
    ? `${count} calibration windows of ${seqs[0]} tokens taken from the gaps between the ${evalWindows} evaluation windows of eval ` +
      `(window k at floor(k·(N − L − 1)/${evalWindows})); no token is read by both`
    : `${count} calibration windows at each of ${seqs.join(', ')} tokens, taken from the gaps between the ${evalWindows} evaluation windows of eval ` +
      `at every one of these lengths (window k at floor(k·(N − L − 1)/${evalWindows})), the shorter ones the starts of the ${longest}-token ones; ` +
      'no token is read by both';
  return evals.map((e) => ({ tokens, seq: e.seq, evalStarts: e.starts, calibrationStarts, how }));
}

export function loadTokenSplit(file: string, seq: number, evalWindows: number, count: number): TokenSplit {
  return splitTokens(loadTokenFile(file), seq, evalWindows, count);
}

/** Token ids of windows as one [windows, L] int64 tensor (inputs), and their next tokens (targets). */
export function windowBatch(split: TokenSplit, starts: number[]): { ids: HostTensor; targets: Int32Array } {
  const L = split.seq;
  const ids = new BigInt64Array(starts.length * L);
  const targets = new Int32Array(starts.length * L);
  starts.forEach((s, b) => {
    for (let t = 0; t < L; t++) {
      ids[b * L + t] = BigInt(split.tokens[s + t]);
      targets[b * L + t] = split.tokens[s + t + 1];
    }
  });
  return { ids: { dtype: 'int64', dims: [starts.length, L], data: ids }, targets };
}
