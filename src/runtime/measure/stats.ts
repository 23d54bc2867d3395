// Statistics of repeated timings: summaries, bootstrap confidence intervals of the median and of a speedup (a ratio
// of medians). Pure, with no onnxruntime and no vscode: the worker, the CLI, the extension host and the dashboard's
// logic all import it. The bootstrap draws from a seeded generator, so the same samples always give the same
// interval (reports are reproducible, tests are deterministic).

/** A closed interval [lo, hi]. */
export type Interval = [number, number];

export interface LatencyStats {
  p50: number;
  p90: number;
  mean: number;
  /** Sample standard deviation (n - 1 in the denominator); 0 for a single sample. */
  std: number;
  min: number;
  max: number;
  n: number;
  /** Bootstrap 95% confidence interval of the median (p50). */
  ci95: Interval;
  /** Interquartile range, p75 − p25. */
  iqr: number;
  /** Runs beyond Tukey's fences (1.5 × IQR outside the quartiles). */
  outliers: number;
}

/** Resamples per bootstrap: enough for stable 2.5 % / 97.5 % percentiles (their Monte Carlo error is ~0.5 % of the width). */
export const BOOTSTRAP_RESAMPLES = 2000;
/** The default seed: a report computed twice from the same timings shows the same intervals. */
export const BOOTSTRAP_SEED = 0x5eed;

export interface BootstrapOptions {
  resamples?: number;
  seed?: number;
  /** Confidence level in (0, 1); default 0.95. */
  confidence?: number;
}

/** mulberry32: a small, fast 32-bit generator with good statistical quality for resampling; uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Percentile with linear interpolation between closest ranks (numpy's default), p in [0, 100]. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

export function median(samples: readonly number[]): number {
  return samples.length === 0 ? NaN : medianInPlace(Float64Array.from(samples));
}

function check(samples: readonly number[], what: string): void {
  if (samples.length === 0) throw new Error(`${what}: no samples`);
  if (!samples.every(Number.isFinite)) throw new Error(`${what}: samples must be finite numbers`);
}

function levels(opts: BootstrapOptions): { resamples: number; rng: () => number; lo: number; hi: number } {
  const confidence = opts.confidence ?? 0.95;
  if (!(confidence > 0 && confidence < 1)) throw new Error(`bootstrap: confidence must be in (0, 1), got ${confidence}`);
  const resamples = opts.resamples ?? BOOTSTRAP_RESAMPLES;
  if (!(Number.isInteger(resamples) && resamples >= 1)) throw new Error(`bootstrap: resamples must be a positive integer, got ${resamples}`);
  const tail = (100 * (1 - confidence)) / 2;
  return { resamples, rng: mulberry32(opts.seed ?? BOOTSTRAP_SEED), lo: tail, hi: 100 - tail };
}

/**
 * Moves the k-th smallest element of `a` to index k, smaller ones before it and larger ones after (Hoare's selection
 * with a median-of-three pivot): O(n) on average, where sorting each of thousands of resamples would be O(n log n).
 */
function select(a: Float64Array, k: number): void {
  let lo = 0;
  let hi = a.length - 1;
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    // Median of three as the pivot, which keeps sorted and constant inputs linear.
    if (a[mid] < a[lo]) swap(a, mid, lo);
    if (a[hi] < a[lo]) swap(a, hi, lo);
    if (a[hi] < a[mid]) swap(a, hi, mid);
    const pivot = a[mid];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) swap(a, i++, j--);
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return;
  }
}

function swap(a: Float64Array, i: number, j: number): void {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}

/** The median of `a` (reordered in place), equal to percentile(sorted, 50). */
function medianInPlace(a: Float64Array): number {
  const n = a.length;
  const k = (n - 1) >>> 1;
  select(a, k);
  if (n % 2 === 1) return a[k];
  let next = Infinity; // the smallest element after k: every one of them is >= a[k]
  for (let i = k + 1; i < n; i++) if (a[i] < next) next = a[i];
  return (a[k] + next) / 2;
}

/** Median of `samples` at the indices `idx` (written into `scratch`, which is reordered). */
function medianAt(samples: readonly number[], idx: Uint32Array, scratch: Float64Array): number {
  for (let i = 0; i < idx.length; i++) scratch[i] = samples[idx[i]];
  return medianInPlace(scratch);
}

function drawIndices(idx: Uint32Array, n: number, rng: () => number): void {
  for (let i = 0; i < idx.length; i++) idx[i] = Math.floor(rng() * n);
}

/**
 * Percentile bootstrap interval of the median: resample the runs with replacement, take each resample's median, and
 * read the 2.5th and 97.5th percentiles of those medians. It assumes nothing about the distribution's shape, which
 * matters for latencies (skewed to the right, often with a few slow runs). A single run gives [x, x].
 */
export function bootstrapMedianCI(samples: readonly number[], opts: BootstrapOptions = {}): Interval {
  check(samples, 'bootstrapMedianCI');
  const { resamples, rng, lo, hi } = levels(opts);
  const n = samples.length;
  const idx = new Uint32Array(n);
  const scratch = new Float64Array(n);
  const medians = new Float64Array(resamples);
  for (let b = 0; b < resamples; b++) {
    drawIndices(idx, n, rng);
    medians[b] = medianAt(samples, idx, scratch);
  }
  medians.sort();
  return [percentile(medians, lo), percentile(medians, hi)];
}

export function summarize(samples: readonly number[], opts: BootstrapOptions = {}): LatencyStats {
  check(samples, 'summarize');
  const sorted = Float64Array.from(samples).sort();
  const n = sorted.length;
  const mean = sorted.reduce((a, b) => a + b, 0) / n;
  const variance = n > 1 ? sorted.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : 0;
  const q1 = percentile(sorted, 25);
  const q3 = percentile(sorted, 75);
  return {
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    mean,
    std: Math.sqrt(variance),
    min: sorted[0],
    max: sorted[n - 1],
    n,
    ci95: bootstrapMedianCI(samples, { ...opts, confidence: 0.95 }),
    iqr: q3 - q1,
    outliers: tukeyOutliers(sorted, 1.5),
  };
}

/** Runs beyond the fences `k` × IQR outside the quartiles (Tukey: 1.5 marks outliers, 3 marks far-out ones). */
export function tukeyOutliers(samples: ArrayLike<number>, k: number): number {
  const sorted = Float64Array.from(samples as ArrayLike<number>).sort();
  const q1 = percentile(sorted, 25);
  const q3 = percentile(sorted, 75);
  const lo = q1 - k * (q3 - q1);
  const hi = q3 + k * (q3 - q1);
  let count = 0;
  for (const x of sorted) if (x < lo || x > hi) count++;
  return count;
}

/** A speedup of one model over a reference: how many times faster, as a ratio of medians, with its interval. */
export interface Speedup {
  /** Reference median / this model's median; above 1 means faster than the reference. */
  ratio: number;
  ci95: Interval;
  /** The interval excludes 1: the two models are distinguishable at the 95 % level. */
  significant: boolean;
  /** Runs were resampled in pairs (same round of an interleaved run) rather than independently. */
  paired: boolean;
}

export interface SpeedupOptions extends BootstrapOptions {
  /**
   * The samples are paired run by run: index i of both arrays comes from the same round of an interleaved run.
   * Default: paired when both arrays have the same length. Resampling pairs keeps what a round's runs share (a slow
   * moment of the machine hits both), so drift cancels in the ratio instead of widening its interval.
   */
  paired?: boolean;
}

/**
 * Speedup of `model` over `reference` (latencies in the same unit): median(reference) / median(model), with a
 * percentile bootstrap interval of that ratio, resampling rounds (paired) or each model's runs on its own.
 */
export function speedup(reference: readonly number[], model: readonly number[], opts: SpeedupOptions = {}): Speedup {
  check(reference, 'speedup');
  check(model, 'speedup');
  const paired = opts.paired ?? reference.length === model.length;
  if (paired && reference.length !== model.length) throw new Error(`speedup: paired samples need equal counts, got ${reference.length} and ${model.length}`);
  const ratio = median(reference) / median(model);
  const { resamples, rng, lo, hi } = levels(opts);
  const idxRef = new Uint32Array(reference.length);
  const idxModel = paired ? idxRef : new Uint32Array(model.length);
  const scratchRef = new Float64Array(reference.length);
  const scratchModel = new Float64Array(model.length);
  const ratios = new Float64Array(resamples);
  for (let b = 0; b < resamples; b++) {
    drawIndices(idxRef, reference.length, rng);
    if (!paired) drawIndices(idxModel, model.length, rng);
    ratios[b] = medianAt(reference, idxRef, scratchRef) / medianAt(model, idxModel, scratchModel);
  }
  ratios.sort();
  const ci95: Interval = [percentile(ratios, lo), percentile(ratios, hi)];
  return { ratio, ci95, significant: ci95[0] > 1 || ci95[1] < 1, paired };
}

/** The identity: the reference compared with itself (its own row in a table). */
export function identity(): Speedup {
  return { ratio: 1, ci95: [1, 1], significant: false, paired: true };
}
