// The statistics behind every reported latency and speedup (src/runtime/measure/stats.ts and trust.ts), on synthetic
// samples from known distributions: seeded, so every number here is reproducible.
import { describe, expect, it } from 'vitest';
import {
  bootstrapMedianCI, identity, median, mulberry32, percentile, speedup, summarize, tukeyOutliers,
} from '../../src/runtime/measure/stats';
import { TRUST, amdahl, boundWarning, compareTimed, contentionWarning, dropsMaskBuild, exceedsBound, latencyWarnings, modelBound, verdict } from '../../src/runtime/measure/trust';

/** Exponential draws with rate 1 (median ln 2), by inversion from a seeded uniform generator. */
function exponential(rng: () => number, n: number): number[] {
  return Array.from({ length: n }, () => -Math.log(1 - rng()));
}

/** Standard normal draws (Box–Muller). */
function normal(rng: () => number, n: number): number[] {
  return Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng()));
}

describe('seeded generator', () => {
  it('repeats for a seed, differs across seeds, and is uniform on [0, 1)', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const first = Array.from({ length: 5 }, a);
    expect(Array.from({ length: 5 }, b)).toEqual(first);
    expect(Array.from({ length: 5 }, mulberry32(43))).not.toEqual(first);
    const draws = Array.from({ length: 100_000 }, mulberry32(7));
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(1);
    expect(draws.reduce((s, x) => s + x, 0) / draws.length).toBeCloseTo(0.5, 2);
    // Each tenth of the range gets its tenth of the draws (within 3 %).
    const bins = new Array(10).fill(0);
    for (const x of draws) bins[Math.floor(10 * x)]++;
    for (const c of bins) expect(Math.abs(c - 10_000)).toBeLessThan(300);
  });
});

describe('median and its bootstrap interval', () => {
  it('summarizes with the interval, the IQR and the outliers', () => {
    const s = summarize([10, 11, 12, 13, 14, 15, 16, 17, 18, 100]);
    expect(s.p50).toBe(14.5);
    expect(s.iqr).toBeCloseTo(percentile([10, 11, 12, 13, 14, 15, 16, 17, 18, 100], 75) - 12.25, 12);
    expect(s.outliers).toBe(1);
    expect(s.ci95[0]).toBeLessThanOrEqual(s.p50);
    expect(s.ci95[1]).toBeGreaterThanOrEqual(s.p50);
    // The interval of a median ignores how far the outlier is.
    expect(s.ci95[1]).toBeLessThan(18);
    expect(summarize([3]).ci95).toEqual([3, 3]);
    expect(() => summarize([])).toThrow(/no samples/);
    expect(() => summarize([1, NaN])).toThrow(/finite/);
  });

  it('is deterministic for a seed and changes with it', () => {
    const xs = exponential(mulberry32(1), 40);
    expect(bootstrapMedianCI(xs)).toEqual(bootstrapMedianCI(xs));
    expect(bootstrapMedianCI(xs, { seed: 99 })).not.toEqual(bootstrapMedianCI(xs));
  });

  it('covers the true median of an exponential about 95 % of the time', () => {
    const rng = mulberry32(2024);
    const trials = 200;
    let covered = 0;
    let width = 0;
    for (let t = 0; t < trials; t++) {
      const xs = exponential(rng, 60);
      const [lo, hi] = bootstrapMedianCI(xs, { resamples: 1000, seed: t });
      if (lo <= Math.LN2 && Math.LN2 <= hi) covered++;
      width += hi - lo;
    }
    // The percentile bootstrap of a median covers a little less than 95% at small n (0.93 at n = 10, 0.94 at 60 and
    // 0.96 at 200 over 1500 trials each); 200 trials of a 0.94 coverage lie above 0.88 with probability > 0.999. A
    // broken interval (too narrow, or centred elsewhere) falls far outside.
    expect(covered / trials).toBeGreaterThan(0.88);
    expect(covered / trials).toBeLessThan(0.99);
    // Its width shrinks like 1/√n: the asymptotic 95 % width of a median of Exp(1) at n = 60 is about 0.51.
    expect(width / trials).toBeGreaterThan(0.35);
    expect(width / trials).toBeLessThan(0.7);
  });

  it('is narrower with more runs', () => {
    const rng = mulberry32(5);
    const few = bootstrapMedianCI(exponential(rng, 20));
    const many = bootstrapMedianCI(exponential(rng, 2000));
    expect(many[1] - many[0]).toBeLessThan((few[1] - few[0]) / 4);
  });
});

describe('speedup as a ratio of medians', () => {
  it('recovers a known ratio and calls it significant', () => {
    const rng = mulberry32(11);
    const reference = normal(rng, 50).map((z) => 20 + z);
    const faster = normal(rng, 50).map((z) => 10 + 0.5 * z);
    const s = speedup(reference, faster);
    expect(s.ratio).toBeCloseTo(median(reference) / median(faster), 12);
    expect(s.ratio).toBeGreaterThan(1.8);
    expect(s.ci95[0]).toBeLessThan(2);
    expect(s.ci95[1]).toBeGreaterThan(2);
    expect(s.significant).toBe(true);
    expect(verdict(s)).toBe('faster');
    const slower = speedup(faster, reference);
    expect(slower.significant).toBe(true);
    expect(verdict(slower)).toBe('slower');
  });

  it('puts 1 inside the interval of an A/A comparison about 95 % of the time', () => {
    const rng = mulberry32(77);
    let containsOne = 0;
    const trials = 200;
    for (let t = 0; t < trials; t++) {
      // Same distribution for both, with a drift shared by each round (as interleaved runs share their moment).
      const drift = normal(rng, 40).map((z) => 5 * Math.abs(z));
      const a = normal(rng, 40).map((z, i) => 50 + drift[i] + z);
      const b = normal(rng, 40).map((z, i) => 50 + drift[i] + z);
      const s = speedup(a, b, { resamples: 1000, seed: t });
      if (s.ci95[0] <= 1 && 1 <= s.ci95[1]) containsOne++;
      expect(s.significant).toBe(!(s.ci95[0] <= 1 && 1 <= s.ci95[1]));
    }
    expect(containsOne / trials).toBeGreaterThan(0.9);
    expect(containsOne / trials).toBeLessThan(0.995);
  });

  it('pairs rounds so that drift shared by a round cancels', () => {
    const rng = mulberry32(3);
    // Large drift between rounds (a machine getting busy and quiet again), a real 5 % gain within each round.
    const drift = Array.from({ length: 60 }, (_, i) => 40 * (1 + Math.sin(i / 3)));
    const noise = () => normal(rng, 60).map((z) => 0.5 * z);
    const a = noise().map((e, i) => 100 + drift[i] + e);
    const b = noise().map((e, i) => (100 + drift[i]) / 1.05 + e);
    const paired = speedup(a, b);
    const independent = speedup(a, b, { paired: false });
    expect(paired.paired).toBe(true);
    expect(independent.paired).toBe(false);
    expect(paired.ci95[1] - paired.ci95[0]).toBeLessThan((independent.ci95[1] - independent.ci95[0]) / 3);
    expect(paired.significant).toBe(true);
    expect(paired.ci95[0]).toBeLessThan(1.05 * 1.02);
    expect(paired.ci95[1]).toBeGreaterThan(1.05 * 0.98);
  });

  it('resamples independently when the counts differ, and refuses to pair them', () => {
    const s = speedup([10, 11, 12], [5, 5.5, 6, 6.5]);
    expect(s.paired).toBe(false);
    expect(s.ratio).toBeCloseTo(11 / 5.75, 12);
    expect(() => speedup([1, 2], [1, 2, 3], { paired: true })).toThrow(/equal counts/);
    expect(identity()).toEqual({ ratio: 1, ci95: [1, 1], significant: false, paired: true });
    expect(speedup([4, 5, 6], [4, 5, 6]).ci95).toEqual([1, 1]);
  });
});

describe('trust checks', () => {
  it('counts outliers beyond Tukey’s fences', () => {
    expect(tukeyOutliers([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 1.5)).toBe(0);
    expect(tukeyOutliers([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 40], 1.5)).toBe(1);
    expect(tukeyOutliers([-30, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 40], 3)).toBe(2);
  });

  it('says nothing about steady runs', () => {
    const steady = summarize(normal(mulberry32(9), 50).map((z) => 10 + 0.1 * z));
    expect(latencyWarnings(steady)).toEqual([]);
  });

  it('flags the dashboard’s old case: three runs, one of them an outlier (81.16 ± 47.54 ms, p50 108 ms)', () => {
    const s = summarize([27.2, 108, 108.3]);
    expect(s.mean).toBeCloseTo(81.17, 1);
    const w = latencyWarnings(s);
    expect(w.some((x) => x.startsWith('only 3 timed run(s)'))).toBe(true);
    expect(w.some((x) => x.includes('fastest run took only 25%'))).toBe(true);
  });

  it('flags spread, outliers and a slow run', () => {
    const rng = mulberry32(4);
    const xs = normal(rng, 100).map((z) => 10 + 0.1 * z);
    xs[3] = 30;
    xs[50] = 31;
    xs[70] = 29;
    xs[90] = 28;
    xs[99] = 40;
    xs[10] = 33;
    const w = latencyWarnings(summarize(xs));
    expect(w).toContainEqual(expect.stringMatching(/^6 of 100 runs are outliers/));
    expect(w).toContainEqual(expect.stringMatching(/^the slowest run took (3\.9\d|4\.0\d)× the median/));
    const wide = latencyWarnings(summarize(normal(rng, 30).map((z) => 10 + 3 * z)));
    expect(wide).toContainEqual(expect.stringMatching(/^high spread/));
    expect(wide).toContainEqual(expect.stringMatching(/^the median's 95% interval is ±\d+% wide/));
  });

  it('says when other processes took the machine', () => {
    expect(contentionWarning(null)).toBeNull();
    expect(contentionWarning(TRUST.maxOtherCpu)).toBeNull();
    expect(contentionWarning(0.42)).toMatch(/^the machine was busy: other processes used 42% of its CPU time/);
  });

  it('states the model bound against the share the rewrite changes', () => {
    const shares = { attentionShare: 0.8, attentionCoreShare: 0.5 };
    expect(amdahl(0.5, 0.5)).toBeCloseTo(4 / 3, 12);
    expect(amdahl(0, 0.1)).toBe(1);
    expect(modelBound('core', shares, 0.5)).toBeCloseTo(4 / 3, 12);
    // Pruning half the heads: the score path (0.5) and the rest of the sites (0.3) both keep half their work.
    expect(modelBound('site', shares, 0.5, false, 0.5)).toBeCloseTo(1 / 0.6, 12);
    // Against a fused reference counted at its causal work the score path keeps all of it, the projections half:
    // the bound is not the score ratio applied to the whole site (which gave 1 and flagged a real 1.2× as impossible).
    expect(modelBound('site', shares, 1, false, 0.5)).toBeCloseTo(1 / (0.2 + 0.5 + 0.15), 12);
    // The projections' ratio unknown: they may all go, so the bound stays an upper bound.
    expect(modelBound('site', shares, 0.5)).toBeCloseTo(1 / (0.2 + 0.25), 12);
    expect(modelBound('site', { attentionShare: 0.8, attentionCoreShare: null }, 0.5, false, 0.75)).toBeCloseTo(1 / (0.2 + 0.4), 12);
    expect(modelBound('none', shares, 0.5)).toBeNull();
    expect(modelBound('core', shares, null)).toBeNull();
    expect(modelBound('core', { attentionShare: 0.8, attentionCoreShare: null }, 0.5)).toBeNull();
    // A dense baseline that skips the masked half does half the work: a variant with the eager graph's FLOPs is
    // bounded below 1 against it.
    expect(modelBound('core', shares, 2)).toBeCloseTo(2 / 3, 12);
    // The reference's mask building (outside the sites) goes with a sparse rewrite that no longer builds the mask,
    // not with one that still does, nor with pruning.
    const withMask = { ...shares, maskBuildShare: 0.1 };
    expect(modelBound('core', withMask, 0.5, true)).toBeCloseTo(1 / (1 - 0.5 - 0.1 + 0.25), 12);
    expect(modelBound('core', withMask, 0.5)).toBeCloseTo(4 / 3, 12);
    expect(modelBound('site', withMask, 0.5, true, 0.5)).toBeCloseTo(1 / 0.6, 12);
    expect(modelBound('core', { ...shares, maskBuildShare: null }, 0.5, true)).toBeCloseTo(4 / 3, 12);
    // Whether a model dropped it: profiled, and no mask-building nodes of its own measured.
    expect(dropsMaskBuild({ attentionShare: 0.5, attentionCoreShare: 0.2, maskBuildShare: null })).toBe(true);
    expect(dropsMaskBuild({ attentionShare: 0.5, attentionCoreShare: 0.2, maskBuildShare: 0.05 })).toBe(false);
    expect(dropsMaskBuild({ attentionShare: null, attentionCoreShare: null })).toBe(false);
  });

  it('compares two models of one interleaved run: paired speedup, the bound on the reference\'s shares, and its verdict', () => {
    const shares = { attentionShare: 0.8, attentionCoreShare: 0.5 };
    const ref = { label: 'the original', samplesMs: [10, 11, 10.5, 10.2, 10.8, 10.1], shares, flops: 100, scope: 'none' as const };
    // Twice as fast in every round, with half the attention FLOPs: bound 4/3 on a score path of half the time, so flagged.
    const cur = { label: 'variant', samplesMs: ref.samplesMs.map((x) => x / 2), shares, flops: 50, scope: 'core' as const };
    const c = compareTimed(ref, cur);
    expect(c.speedup.ratio).toBeCloseTo(2, 12);
    expect(c.speedup.paired).toBe(true);
    expect(c.modelBound).toBeCloseTo(4 / 3, 12);
    expect(c.boundExceeded).toBe(true);
    expect(c.verdict).toBe('bound-exceeded');
    expect(c.warning).toMatch(/over the original .* above its bound of 1\.33×/);
    // The reference against itself: identity, bound 1, nothing to say.
    expect(compareTimed(ref, ref)).toMatchObject({ speedup: { ratio: 1, ci95: [1, 1], significant: false }, modelBound: 1, boundExceeded: false, verdict: 'indistinguishable', warning: null });
    // FLOPs unknown: no bound, and a plain verdict.
    const unknown = compareTimed(ref, { ...cur, flops: null });
    expect(unknown.modelBound).toBeNull();
    expect(unknown.verdict).toBe('faster');
    // Pruning against a reference with half its score FLOPs (a causal fused kernel): the projections' widths give the
    // second ratio. The bound is 1 / (0.2 + 0.5 + 0.3·0.5) ≈ 1.18: 1.2× in every round lies above it and is flagged,
    // 1.1× is not.
    const measures = (projectionWork: number | null) => ({ kernels: 'standard ops', projectionWork });
    const fused = { ...ref, flops: 50, measures: measures(64) };
    const pruned = (x: number) => ({ ...ref, label: 'pruned', samplesMs: ref.samplesMs.map((t) => t / x), flops: 50, scope: 'site' as const, measures: measures(32) });
    expect(compareTimed(fused, pruned(1.1))).toMatchObject({ boundExceeded: false, verdict: 'faster', boundNote: null });
    expect(compareTimed(fused, pruned(1.1)).modelBound).toBeCloseTo(1 / 0.85, 12);
    expect(compareTimed(fused, pruned(1.2)).boundExceeded).toBe(true);
    expect(compareTimed(fused, { ...pruned(1.1), measures: measures(null) }).modelBound).toBeCloseTo(1 / 0.7, 12);
    // Scores computed by other kernels (a fused operator against MatMuls): their speed per FLOP differs, so there is
    // no bound to hold the speedup to, and it is said why.
    const gqa = { ...fused, label: 'fuse', measures: { kernels: 'com.microsoft.GroupQueryAttention', projectionWork: 64 } };
    const far = compareTimed(gqa, pruned(1.5));
    expect(far).toMatchObject({ modelBound: null, boundExceeded: false, verdict: 'faster', warning: null });
    expect(far.boundNote).toBe("no bound against fuse: its scores are computed by com.microsoft.GroupQueryAttention, this model's by standard ops, at another speed per FLOP");
  });

  it('flags a speedup whose whole interval lies above its bound, and only then', () => {
    const s = { ratio: 2.14, ci95: [1.9, 2.4] as [number, number], significant: true, paired: true };
    expect(exceedsBound(s, 1.02)).toBe(true);
    expect(verdict(s, 1.02)).toBe('bound-exceeded');
    expect(boundWarning(s, 1.02, 'the original')).toBe(
      'speedup 2.14× over the original (95% CI 1.90–2.40) is above its bound of 1.02×: a measurement problem, not a win',
    );
    expect(verdict(s, 2)).toBe('faster'); // the interval reaches the bound: plausible
    expect(verdict(s, null)).toBe('faster');
    expect(verdict(s, Infinity)).toBe('faster');
    expect(boundWarning(s, 3, 'x')).toBeNull();
    expect(verdict({ ratio: 1.01, ci95: [0.97, 1.05], significant: false, paired: true }, 1.5)).toBe('indistinguishable');
  });
});

describe('median by selection', () => {
  it('agrees with the sorted percentile on odd, even, tied and sorted inputs', () => {
    const rng = mulberry32(8);
    const cases = [[5], [2, 1], [3, 1, 2], [1, 1, 1, 1], [4, 4, 1, 4, 9, 4], Array.from({ length: 101 }, (_, i) => i), Array.from({ length: 100 }, (_, i) => 100 - i)];
    for (let n = 1; n < 60; n++) cases.push(Array.from({ length: n }, () => Math.floor(10 * rng())));
    for (const xs of cases) expect(median(xs)).toBe(percentile([...xs].sort((a, b) => a - b), 50));
  });
});
