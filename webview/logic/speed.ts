// What the Speed dashboard shows, computed from a benchmark's results: one row per model at a chosen sequence length
// (latency, speedup over the original, and the bounds the removed FLOPs allow), and the series of the charts. Pure.
import { ORIGINAL, type SpeedPoint, type SpeedResults } from '../../src/protocol';

export interface ModelRef {
  key: string;
  label: string;
}

export interface SpeedRow extends ModelRef {
  point: SpeedPoint | null;
  /** Original p50 / this model's p50; 1 for the original. */
  speedup: number | null;
  /** Attention FLOPs before / after: the speedup of the attention core if time followed its FLOPs. */
  attentionBound: number | null;
  /**
   * The whole model's bound: Amdahl's law with the original's measured score-path share s of kernel time and the
   * FLOP ratio r = after/before of that path, 1 / ((1 − s) + s·r). Null without a profile of the original.
   */
  modelBound: number | null;
}

export function models(speed: SpeedResults): ModelRef[] {
  return [{ key: ORIGINAL, label: 'original' }, ...speed.variants.map((v) => ({ key: v.id, label: v.label }))];
}

export function pointOf(speed: SpeedResults, model: string, seq: number): SpeedPoint | null {
  return speed.points.find((p) => p.model === model && p.seq === seq) ?? null;
}

/** The sequence length the bars show by default: the longest, where attention matters most. */
export function defaultSeq(speed: SpeedResults): number | null {
  const seqs = [...new Set(speed.points.map((p) => p.seq))].sort((a, b) => a - b);
  return seqs.length ? seqs[seqs.length - 1] : null;
}

export function amdahl(share: number, flopRatio: number): number {
  return 1 / (1 - share + share * flopRatio);
}

export function speedRows(speed: SpeedResults, seq: number): SpeedRow[] {
  const base = pointOf(speed, ORIGINAL, seq);
  return models(speed).map((m) => {
    const point = pointOf(speed, m.key, seq);
    const speedup = base && point ? base.latencyMs.p50 / point.latencyMs.p50 : null;
    if (m.key === ORIGINAL) return { ...m, point, speedup, attentionBound: 1, modelBound: 1 };
    const b = speed.bounds.find((x) => x.variant === m.key && x.seq === seq);
    const r = b && b.flopsBefore > 0 ? b.flopsAfter / b.flopsBefore : null;
    const attentionBound = r === null ? null : r === 0 ? Infinity : 1 / r;
    const share = base?.attentionCoreShare ?? null;
    const modelBound = r === null || share === null ? null : amdahl(share, r);
    return { ...m, point, speedup, attentionBound, modelBound };
  });
}

export interface Series {
  key: string;
  label: string;
  points: { x: number; y: number }[];
}

/** p50 latency against sequence length, one series per model (drawn on log-log axes). */
export function sweepSeries(speed: SpeedResults): Series[] {
  return models(speed).map((m) => ({
    ...m,
    points: speed.points.filter((p) => p.model === m.key).sort((a, b) => a.seq - b.seq).map((p) => ({ x: p.seq, y: p.latencyMs.p50 })),
  }));
}

/** Attention's share of kernel time against sequence length, per model, in percent; models never profiled are left out. */
export function shareSeries(speed: SpeedResults, which: 'attentionShare' | 'attentionCoreShare'): Series[] {
  return models(speed)
    .map((m) => ({
      ...m,
      points: speed.points
        .filter((p) => p.model === m.key && p[which] !== null)
        .sort((a, b) => a.seq - b.seq)
        .map((p) => ({ x: p.seq, y: 100 * (p[which] as number) })),
    }))
    .filter((s) => s.points.length > 0);
}
