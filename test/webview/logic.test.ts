// The dashboards' arithmetic and formatting: speedups with their intervals and verdicts, bounds against the original
// and the dense baseline, the heatmap's pattern overlay against the runtime's own recall, number formats.
import { describe, expect, it } from 'vitest';
import type { AttentionMaps, SpeedPoint, SpeedResults } from '../../src/protocol';
import { attentionStats } from '../../src/runtime/measure/attention-stats';
import { parsePattern } from '../../src/shared/sparse-pattern';
import { bytes, change, count, ms, pct, ratio } from '../../webview/logic/format';
import { colour, drawablePattern, heatmapImage, maskedMass } from '../../webview/logic/heatmap';
import { type Speedup, identity } from '../../src/runtime/measure/stats';
import { amdahl, baselineOf, defaultSeq, latencyCell, shareSeries, speedRows, speedupCell, sweepSeries } from '../../webview/logic/speed';

/** A speedup estimate: the ratio with an interval of ± `half` around it. */
function est(ratio: number, half: number): Speedup {
  const ci95: [number, number] = [ratio - half, ratio + half];
  return { ratio, ci95, significant: ci95[0] > 1 || ci95[1] < 1, paired: true };
}

function point(model: string, seq: number, p50: number, core: number | null, vsOriginal: Speedup = identity(), vsBaseline: Speedup = vsOriginal): SpeedPoint {
  return {
    model, seq, latencyMs: { p50, p90: p50 * 1.2, mean: p50, std: 0, runs: 5, ci95: [p50 * 0.9, p50 * 1.1], outliers: 0 },
    tokensPerSecond: seq / (p50 / 1000), attentionShare: core, attentionCoreShare: core, vsOriginal, vsBaseline, warnings: [],
  };
}

const speed: SpeedResults = {
  ep: 'cpu', iterations: 5, minTimeMs: 0, warmup: 1, seqs: [128, 512],
  variants: [{ id: 'v1', label: 'window 64', boundScope: 'core' }],
  points: [
    point('original', 128, 2, 0.2), point('v1', 128, 2.5, 0.1, est(0.8, 0.05)),
    point('original', 512, 16, 0.5), point('v1', 512, 8, 0.3, est(2, 0.1)),
  ],
  baselines: [{ seq: 128, model: 'original' }, { seq: 512, model: 'original' }],
  bounds: [{ variant: 'v1', seq: 128, flopsBefore: 100, flopsAfter: 50 }, { variant: 'v1', seq: 512, flopsBefore: 1600, flopsAfter: 200 }],
  warnings: [], finishedAt: '2026-01-01T00:00:00Z',
};

describe('speed', () => {
  it('puts each variant’s speedup and interval beside the bounds its FLOPs allow', () => {
    expect(defaultSeq(speed)).toBe(512);
    const [orig, v] = speedRows(speed, 512);
    expect([orig.vsOriginal.reference, orig.vsOriginal.attentionBound, orig.vsOriginal.modelBound]).toEqual([true, 1, 1]);
    expect(speedupCell(orig.vsOriginal)).toMatchObject({ text: '1× (reference)', verdict: 'reference' });
    expect(v.vsOriginal.speedup?.ratio).toBe(2);
    expect(v.vsOriginal.attentionBound).toBe(8);
    // Amdahl with the original's score-path share 0.5 and the FLOP ratio 1/8: 1 / (0.5 + 0.5/8).
    expect(v.vsOriginal.modelBound).toBeCloseTo(1 / (0.5 + 0.0625), 12);
    expect(amdahl(0, 0.1)).toBe(1);
    expect(v.vsOriginal.verdict).toBe('bound-exceeded'); // 2 [1.9–2.1] over a bound of 1.78
    expect(v.warnings).toEqual(['speedup 2.00× over original (95% CI 1.90–2.10) is above its bound of 1.78×: a measurement problem, not a win']);
    const slower = speedRows(speed, 128)[1];
    expect(slower.vsOriginal.verdict).toBe('slower');
    expect(speedupCell(slower.vsOriginal)).toMatchObject({ text: '0.80× [0.75–0.85]', verdict: 'slower' });
    expect(latencyCell(slower.point)).toBe('2.50 ms [2.25–2.75]');
    // Without a dense variant, the original is the baseline, and both comparisons agree.
    expect(v.isBaseline).toBe(false);
    expect(orig.isBaseline).toBe(true);
    expect(v.vsBaseline).toEqual(v.vsOriginal);
  });

  it('shows a speedup as a win only when its interval excludes 1 and stays within its bound', () => {
    const within = { ...speed, points: speed.points.map((p) => (p.model === 'v1' && p.seq === 512 ? { ...p, vsOriginal: est(1.5, 0.1) } : p)) };
    const win = speedRows(within, 512)[1];
    expect(win.vsOriginal.verdict).toBe('faster');
    expect(speedupCell(win.vsOriginal)).toMatchObject({ text: '1.50× [1.40–1.60]', verdict: 'faster' });
    expect(win.warnings).toEqual([]);
    const noise = { ...speed, points: speed.points.map((p) => (p.model === 'v1' && p.seq === 512 ? { ...p, vsOriginal: est(1.03, 0.05) } : p)) };
    const cell = speedupCell(speedRows(noise, 512)[1].vsOriginal);
    expect(cell).toMatchObject({ text: '1.03× [0.98–1.08] ≈1', verdict: 'indistinguishable' });
    expect(cell.title).toMatch(/not distinguishable from 1/);
    // The interval reaches down to the bound: plausible, not flagged.
    const edge = { ...speed, points: speed.points.map((p) => (p.model === 'v1' && p.seq === 512 ? { ...p, vsOriginal: est(1.8, 0.1) } : p)) };
    expect(speedRows(edge, 512)[1].vsOriginal.verdict).toBe('faster');
  });

  it('states the bound against the dense baseline when an exact variant is the fastest', () => {
    // v2 is a fused kernel that skips the masked half of the scores: half the attention FLOPs, exactly the same
    // result. At 512 tokens it is the dense baseline; v1 (window) is then measured against it.
    const dense: SpeedResults = {
      ...speed,
      variants: [...speed.variants, { id: 'v2', label: 'fused causal', boundScope: 'none' }],
      points: [
        point('original', 512, 16, 0.5, identity(), est(0.5, 0.02)),
        point('v1', 512, 8, 0.3, est(2, 0.1), est(1, 0.05)),
        point('v2', 512, 8, 0.25, est(2, 0.1), identity()),
      ],
      baselines: [{ seq: 512, model: 'v2' }],
      bounds: [...speed.bounds, { variant: 'v2', seq: 512, flopsBefore: 1600, flopsAfter: 800 }],
    };
    expect(baselineOf(dense, 512)).toBe('v2');
    const [orig, v1, v2] = speedRows(dense, 512);
    expect(v2.isBaseline).toBe(true);
    expect(v2.vsBaseline.reference).toBe(true);
    expect(v1.vsBaseline.against.label).toBe('fused causal');
    // Against the baseline: FLOPs 800 → 200, with the baseline's own score-path share 0.25.
    expect(v1.vsBaseline.attentionBound).toBe(4);
    expect(v1.vsBaseline.modelBound).toBeCloseTo(1 / (0.75 + 0.25 / 4), 12);
    expect(v1.vsBaseline.verdict).toBe('indistinguishable');
    // The original is slower than the baseline, and its bound against it is below 1 (it does twice the work).
    expect(orig.vsBaseline.attentionBound).toBe(0.5);
    expect(orig.vsBaseline.verdict).toBe('slower');
    // Fusion does the same work with less memory traffic: its FLOPs bound nothing, so its 2× is a plain win.
    expect(v2.vsOriginal.modelBound).toBeNull();
    expect(v2.vsOriginal.verdict).toBe('faster');
    expect(v2.warnings).toEqual([]);
  });

  it('bounds pruning by the whole sites’ share, sparse rules by the score path’s', () => {
    // Half the heads removed: projections shrink with the scores, so the bound uses attention's whole share (0.8),
    // 1 / (0.2 + 0.8·0.5) = 1.67, not the score path's (0.5), 1 / (0.5 + 0.5·0.5) = 1.33.
    const base = { ...point('original', 512, 16, 0.5), attentionShare: 0.8 };
    const written = (projectionWork: number) => ({ kernels: 'standard ops', projectionWork });
    const pruned: SpeedResults = {
      ...speed,
      originalMeasures: written(4096),
      variants: [{ id: 'p', label: 'prune-heads', boundScope: 'site', measures: written(2048) }, { id: 's', label: 'window', boundScope: 'core', measures: written(4096) }],
      points: [base, point('p', 512, 10, 0.4, est(1.6, 0.05)), point('s', 512, 10, 0.4, est(1.6, 0.05))],
      baselines: [{ seq: 512, model: 'original' }],
      bounds: [{ variant: 'p', seq: 512, flopsBefore: 1600, flopsAfter: 800 }, { variant: 's', seq: 512, flopsBefore: 1600, flopsAfter: 800 }],
    };
    const [, p, w] = speedRows(pruned, 512);
    expect(p.vsOriginal.modelBound).toBeCloseTo(1 / 0.6, 12);
    expect(p.vsOriginal.verdict).toBe('faster');
    expect(w.vsOriginal.modelBound).toBeCloseTo(1 / 0.75, 12);
    expect(w.vsOriginal.verdict).toBe('bound-exceeded');
    // A report saved without the sites' measures: the projections' share may all go, 1 / (0.2 + 0.5·0.5).
    const { originalMeasures: _, ...old } = pruned;
    expect(speedRows({ ...old, variants: old.variants.map(({ measures: _m, ...v }) => v) }, 512)[1].vsOriginal.modelBound).toBeCloseTo(1 / 0.45, 12);
  });

  it('states no bound between models whose scores other kernels compute', () => {
    // The fused baseline (GroupQueryAttention, counted at its causal half) against half the heads written out: the
    // same score FLOPs, but MatMuls run faster per FLOP than the fused kernel on a CPU, so 1.2× is a real gain.
    const fusedPruned: SpeedResults = {
      ...speed,
      originalMeasures: { kernels: 'standard ops', projectionWork: 4096 },
      variants: [
        { id: 'f', label: 'fused', boundScope: 'none', measures: { kernels: 'com.microsoft.GroupQueryAttention', projectionWork: 4096 } },
        { id: 'p', label: 'prune-heads', boundScope: 'site', measures: { kernels: 'standard ops', projectionWork: 2048 } },
      ],
      points: [
        { ...point('original', 512, 16, 0.5, identity(), est(0.7, 0.02)), attentionShare: 0.8 },
        { ...point('f', 512, 11, 0.4, est(1.45, 0.05), identity()), attentionShare: 0.6 },
        point('p', 512, 9, 0.4, est(1.6, 0.05), est(1.2, 0.03)),
      ],
      baselines: [{ seq: 512, model: 'f' }],
      bounds: [{ variant: 'f', seq: 512, flopsBefore: 1600, flopsAfter: 800 }, { variant: 'p', seq: 512, flopsBefore: 1600, flopsAfter: 800 }],
    };
    const [, , p] = speedRows(fusedPruned, 512);
    expect(p.vsBaseline.attentionBound).toBe(1);
    expect(p.vsBaseline.modelBound).toBeNull();
    expect(p.vsBaseline.boundNote).toBe('no bound: fused computes its scores with com.microsoft.GroupQueryAttention, this model with standard ops, at another speed per FLOP');
    expect(p.vsBaseline.verdict).toBe('faster');
    expect(p.warnings).toEqual([]);
    // Against the original (the same kernels) it is still bounded: 1 / (0.2 + 0.5·0.5 + 0.3·0.5).
    expect(p.vsOriginal.modelBound).toBeCloseTo(1 / 0.6, 12);
    expect(p.vsOriginal.boundNote).toBeNull();
  });

  it('reads reports saved before speedups had intervals', () => {
    const old = { ...speed, baselines: undefined, points: speed.points.map(({ vsOriginal: _a, vsBaseline: _b, ...p }) => p) } as unknown as SpeedResults;
    const [, v] = speedRows(old, 512);
    expect(v.vsOriginal.speedup).toBeNull();
    expect(speedupCell(v.vsOriginal)).toMatchObject({ text: '–', verdict: 'none' });
    expect(v.isBaseline).toBe(false);
  });

  it('makes one sweep series per model, ordered by length', () => {
    expect(sweepSeries(speed).map((s) => [s.label, s.points])).toEqual([
      ['original', [{ x: 128, y: 2 }, { x: 512, y: 16 }]],
      ['window 64', [{ x: 128, y: 2.5 }, { x: 512, y: 8 }]],
    ]);
    expect(shareSeries(speed, 'attentionCoreShare')[0].points).toEqual([{ x: 128, y: 20 }, { x: 512, y: 50 }]);
    const unprofiled = { ...speed, points: speed.points.map((p) => ({ ...p, attentionShare: null })) };
    expect(shareSeries(unprofiled, 'attentionShare')).toEqual([]);
  });
});

/** Causal attention spread evenly over the visible keys: row i gives 1/(i+1) to each key j ≤ i. */
function uniformCausal(heads: number, n: number): AttentionMaps {
  const probabilities: number[] = [];
  for (let h = 0; h < heads; h++) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) probabilities.push(j <= i ? 1 / (i + 1) : 0);
  return {
    site: 0, tokens: null, lengthNote: '', causal: true, pattern: null, dims: [heads, n, n], probabilities, heads: [], maxRowSumError: 0, maxFutureMass: 0,
    ep: 'cpu', inputs: '', finishedAt: '',
  };
}

describe('heatmap', () => {
  it('measures a drawn pattern’s recall as the runtime does', () => {
    const maps = uniformCausal(4, 24);
    for (const text of ['window 4', 'sink 2 + window 4', 'strided 3 + window 2', 'power + window 2']) {
      const pattern = parsePattern(text);
      const runtime = attentionStats(Float64Array.from(maps.probabilities), [4, 24, 24], true, pattern);
      for (let h = 0; h < 4; h++) expect(maskedMass(maps, h, pattern)).toBeCloseTo(runtime.heads[h].recall!, 12);
    }
  });

  it('dims what the pattern hides and keeps the rest', () => {
    const maps = uniformCausal(1, 8);
    const plain = heatmapImage(maps, 0, null);
    const windowed = heatmapImage(maps, 0, drawablePattern('window 2'));
    expect([plain.width, plain.height, plain.data.length]).toEqual([8, 8, 256]);
    const px = (img: typeof plain, q: number, k: number) => Array.from(img.data.slice((q * 8 + k) * 4, (q * 8 + k) * 4 + 3));
    expect(px(windowed, 7, 7)).toEqual(px(plain, 7, 7)); // inside the window
    // Outside the window: a quarter of the brightness (stored as bytes, as the canvas takes them).
    expect(px(windowed, 7, 0)).toEqual(Array.from(Uint8ClampedArray.from(px(plain, 7, 0), (v) => v * 0.25)));
    expect(px(windowed, 7, 0)).not.toEqual(px(plain, 7, 0));
    expect(drawablePattern('block-topk 4 2')).toBeNull();
    expect(colour(0)).toEqual([68, 1, 84]);
    expect(colour(1)).toEqual([253, 231, 37]);
  });
});

describe('formats', () => {
  it('writes numbers the way the tables show them', () => {
    expect([count(1234), count(1_070_000_000), count(999), count(null)]).toEqual(['1.23K', '1.07G', '999', '–']);
    expect([bytes(512), bytes(32 * 1024 * 1024)]).toEqual(['512 B', '32.0 MiB']);
    expect([ms(1.234), ms(12.34), ms(123.4)]).toEqual(['1.23 ms', '12.3 ms', '123 ms']);
    expect([pct(0.1234), ratio(4), ratio(Infinity), ratio(null)]).toEqual(['12.3%', '4.00×', '∞', '–']);
    expect([change(100, 25), change(100, 103), change(5, 5)]).toEqual(['−75.0%', '+3.0%', 'no change']);
  });
});
