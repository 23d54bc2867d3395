// Bench entries → the Speed dashboard's points: each length's dense baseline is the fastest exact model, and every
// speedup (over the original, over the baseline) is the paired ratio of medians of the runs that were timed together.
import { describe, expect, it } from 'vitest';
import { speedPoints } from '../../src/extension/results';
import { speedup, summarize } from '../../src/runtime/measure/stats';
import type { BenchEntry } from '../../src/runtime/protocol';

function entry(model: string, seq: number, samplesMs: number[]): BenchEntry {
  return {
    model, ep: 'cpu', provider: { requested: ['cpu'], used: 'cpu', warnings: [] }, seq, past: 0, batch: 1, tokensPerRun: seq,
    sessionCreateMs: 1, warmupMs: [], latencyMs: summarize(samplesMs), samplesMs, otherCpuShare: 0, timingWarnings: [`w-${model}`],
    tokensPerSecond: 1, peakRssMB: 1, attentionShare: null, profile: null, inputWarnings: [],
  };
}

/** Runs around `ms` with a drift shared by each round, as interleaved runs have. */
const runs = (ms: number) => [1, 3, 2, 5, 4, 1, 2].map((d, i) => ms + d + 0.01 * i);
const keys = new Map([['/o.onnx', 'original'], ['/w.onnx', 'v1'], ['/f.onnx', 'v2']]);

describe('speed points', () => {
  it('takes the fastest exact model of each length as the baseline and pairs every speedup by round', () => {
    const entries = [
      entry('/o.onnx', 64, runs(20)), entry('/w.onnx', 64, runs(10)), entry('/f.onnx', 64, runs(15)),
      entry('/o.onnx', 256, runs(80)), entry('/w.onnx', 256, runs(30)), entry('/f.onnx', 256, runs(90)),
    ];
    const { points, baselines } = speedPoints(entries, keys, new Set(['v2']));
    // v1 (a window) is faster but not exact; v2 (fused) is exact and beats the original at 64, not at 256.
    expect(baselines).toEqual([{ seq: 64, model: 'v2' }, { seq: 256, model: 'original' }]);
    const at = (model: string, seq: number) => points.find((p) => p.model === model && p.seq === seq)!;
    expect(at('v1', 64).vsOriginal).toEqual(speedup(entries[0].samplesMs, entries[1].samplesMs));
    expect(at('v1', 64).vsBaseline).toEqual(speedup(entries[2].samplesMs, entries[1].samplesMs));
    expect(at('v1', 64).vsBaseline.paired).toBe(true);
    expect(at('v2', 64).vsBaseline).toEqual({ ratio: 1, ci95: [1, 1], significant: false, paired: true });
    expect(at('original', 256).vsBaseline).toEqual({ ratio: 1, ci95: [1, 1], significant: false, paired: true });
    expect(at('v1', 256).vsBaseline).toEqual(at('v1', 256).vsOriginal);
    expect(at('v1', 64).latencyMs).toMatchObject({ p50: entries[1].latencyMs.p50, ci95: entries[1].latencyMs.ci95, runs: 7 });
    expect(at('v1', 64).warnings).toEqual(['w-/w.onnx']);
  });

  it('keeps the original as the baseline when no variant is exact', () => {
    const { baselines } = speedPoints([entry('/o.onnx', 64, runs(20)), entry('/w.onnx', 64, runs(10))], keys, new Set());
    expect(baselines).toEqual([{ seq: 64, model: 'original' }]);
    expect(() => speedPoints([entry('/x.onnx', 64, runs(1))], keys, new Set())).toThrow(/not asked for/);
  });
});
