// The dashboards' arithmetic and formatting: speedup and bounds, the heatmap's pattern overlay against the runtime's
// own recall, number formats.
import { describe, expect, it } from 'vitest';
import type { AttentionMaps, SpeedPoint, SpeedResults } from '../../src/protocol';
import { attentionStats } from '../../src/runtime/measure/attention-stats';
import { parsePattern } from '../../src/shared/sparse-pattern';
import { bytes, change, count, ms, pct, ratio } from '../../webview/logic/format';
import { colour, drawablePattern, heatmapImage, maskedMass } from '../../webview/logic/heatmap';
import { amdahl, defaultSeq, shareSeries, speedRows, sweepSeries } from '../../webview/logic/speed';

function point(model: string, seq: number, p50: number, core: number | null): SpeedPoint {
  return { model, seq, latencyMs: { p50, p90: p50 * 1.2, mean: p50, std: 0, runs: 5 }, tokensPerSecond: seq / (p50 / 1000), attentionShare: core, attentionCoreShare: core };
}

const speed: SpeedResults = {
  ep: 'cpu', iterations: 5, warmup: 1, seqs: [128, 512],
  variants: [{ id: 'v1', label: 'window 64' }],
  points: [point('original', 128, 2, 0.2), point('v1', 128, 2.5, 0.1), point('original', 512, 16, 0.5), point('v1', 512, 8, 0.3)],
  bounds: [{ variant: 'v1', seq: 128, flopsBefore: 100, flopsAfter: 50 }, { variant: 'v1', seq: 512, flopsBefore: 1600, flopsAfter: 200 }],
  warnings: [], finishedAt: '2026-01-01T00:00:00Z',
};

describe('speed', () => {
  it('puts each variant’s speedup beside the bounds its FLOPs allow', () => {
    expect(defaultSeq(speed)).toBe(512);
    const [orig, v] = speedRows(speed, 512);
    expect([orig.speedup, orig.attentionBound, orig.modelBound]).toEqual([1, 1, 1]);
    expect(v.speedup).toBe(2);
    expect(v.attentionBound).toBe(8);
    // Amdahl with the original's score-path share 0.5 and the FLOP ratio 1/8: 1 / (0.5 + 0.5/8).
    expect(v.modelBound).toBeCloseTo(1 / (0.5 + 0.0625), 12);
    expect(amdahl(0, 0.1)).toBe(1);
    expect(speedRows(speed, 128)[1].speedup).toBe(0.8);
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
    site: 0, causal: true, pattern: null, dims: [heads, n, n], probabilities, heads: [], maxRowSumError: 0, maxFutureMass: 0,
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
