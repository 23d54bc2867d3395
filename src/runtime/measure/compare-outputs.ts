// Accuracy of a variant against the original on the same inputs, per output (methods.md, "What the profiler measures").
// Everything is computed in float64 from the outputs as returned, so a model compared with itself gives exactly 0.
import { type HostTensor, describeTensor, toFloat64 } from '../tensor';

export interface LogitsComparison {
  /** Mean over positions of KL(P_a || P_b) in nats, P = softmax over the last axis. */
  klDivergence: number;
  /** Share of positions where both argmaxes agree. */
  top1Agreement: number;
  /** Mean over positions of |top5(a) ∩ top5(b)| / 5. */
  top5Overlap: number;
  positions: number;
}

export interface OutputComparison {
  name: string;
  shape: number[];
  maxAbsDiff: number;
  meanAbsDiff: number;
  /** ||a - b||_2 / ||a||_2 (a is the reference); 0 when both are zero. */
  relativeDiff: number;
  /** a·b / (||a|| ||b||); 1 when a and b are equal (both zero included). */
  cosine: number;
  /** Elements where exactly one side is NaN, or both are NaN/inf and differ. */
  nonFiniteMismatches: number;
  /** Elements left out of the figures above because either side is NaN or infinite. When every element is, the
   * figures are NaN (unknown): two all-NaN outputs are not "equal". */
  nonFinite: number;
  logits?: LogitsComparison;
}

export interface OutputMismatch {
  name: string;
  reason: string;
}

export function looksLikeLogits(name: string, t: HostTensor): boolean {
  return /logit/i.test(name) && t.dims.length >= 1 && (t.dims[t.dims.length - 1] ?? 0) >= 2;
}

export function compareTensors(name: string, a: HostTensor, b: HostTensor, logits = looksLikeLogits(name, a)): OutputComparison | OutputMismatch {
  if (a.dims.length !== b.dims.length || a.dims.some((d, i) => d !== b.dims[i])) {
    return { name, reason: `shapes differ: ${describeTensor(a)} vs ${describeTensor(b)}` };
  }
  const x = toFloat64(a);
  const y = toFloat64(b);
  let maxAbs = 0;
  let sumAbs = 0;
  let diff2 = 0;
  let aa = 0;
  let bb = 0;
  let ab = 0;
  let finite = 0;
  let nonFinite = 0;
  let mismatches = 0;
  for (let i = 0; i < x.length; i++) {
    const xi = x[i];
    const yi = y[i];
    if (!Number.isFinite(xi) || !Number.isFinite(yi)) {
      nonFinite++;
      if (!Object.is(xi, yi)) mismatches++;
      continue;
    }
    const d = Math.abs(xi - yi);
    if (d > maxAbs) maxAbs = d;
    sumAbs += d;
    diff2 += d * d;
    aa += xi * xi;
    bb += yi * yi;
    ab += xi * yi;
    finite++;
  }
  const normA = Math.sqrt(aa);
  const normB = Math.sqrt(bb);
  // Nothing finite to compare (an empty output has nothing to differ, so it keeps 0 and 1).
  const unknown = finite === 0 && nonFinite > 0;
  const result: OutputComparison = {
    name,
    shape: [...a.dims],
    maxAbsDiff: unknown ? NaN : maxAbs,
    meanAbsDiff: unknown ? NaN : finite > 0 ? sumAbs / finite : 0,
    relativeDiff: unknown ? NaN : diff2 === 0 ? 0 : normA === 0 ? Infinity : Math.sqrt(diff2) / normA,
    // Identical outputs get exactly 1 rather than whatever rounding makes of a·a / (|a| |a|).
    cosine: unknown ? NaN : diff2 === 0 && (normA > 0) === (normB > 0) ? 1 : normA === 0 || normB === 0 ? 0 : ab / (normA * normB),
    nonFiniteMismatches: mismatches,
    nonFinite,
  };
  if (logits) result.logits = compareLogits(x, y, a.dims[a.dims.length - 1]);
  return result;
}

function logSoftmax(row: Float64Array): Float64Array {
  let max = -Infinity;
  for (const v of row) if (v > max) max = v;
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(row.length);
  for (let i = 0; i < row.length; i++) out[i] = row[i] - lse;
  return out;
}

/** Indices of the k largest values (ties broken by lower index). */
export function topK(row: Float64Array, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < row.length; i++) {
    if (best.length < k) {
      best.push(i);
      best.sort((p, q) => row[q] - row[p] || p - q);
    } else if (row[i] > row[best[k - 1]]) {
      best[k - 1] = i;
      best.sort((p, q) => row[q] - row[p] || p - q);
    }
  }
  return best;
}

function compareLogits(x: Float64Array, y: Float64Array, vocab: number): LogitsComparison {
  const positions = vocab > 0 ? x.length / vocab : 0;
  const k = Math.min(5, vocab);
  let kl = 0;
  let top1 = 0;
  let top5 = 0;
  for (let p = 0; p < positions; p++) {
    const rowA = x.subarray(p * vocab, (p + 1) * vocab);
    const rowB = y.subarray(p * vocab, (p + 1) * vocab);
    const la = logSoftmax(rowA);
    const lb = logSoftmax(rowB);
    let rowKl = 0;
    for (let v = 0; v < vocab; v++) {
      const pa = Math.exp(la[v]);
      if (pa > 0) rowKl += pa * (la[v] - lb[v]);
    }
    kl += rowKl;
    const ta = topK(rowA, k);
    const tb = topK(rowB, k);
    if (ta[0] === tb[0]) top1++;
    const setB = new Set(tb);
    top5 += ta.filter((i) => setB.has(i)).length / k;
  }
  return {
    klDivergence: positions > 0 ? kl / positions : 0,
    top1Agreement: positions > 0 ? top1 / positions : 1,
    top5Overlap: positions > 0 ? top5 / positions : 1,
    positions,
  };
}
