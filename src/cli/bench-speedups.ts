// Speedups of `bench`'s models over the first model and over a chosen baseline, point by point, each a ratio of
// medians with a paired-bootstrap 95% interval (the worker interleaves the models run by run, so the runs of one
// round pair up). The first model's own row is the identity.
import type { BenchEntry } from '../runtime/protocol';
import { type Interval, type Speedup, identity, speedup } from '../runtime/measure/stats';

export interface SpeedupVs {
  ratio: number;
  ci95: Interval;
  significant: boolean;
  paired: boolean;
}

/** The `speedup` field of a `bench --json` result. */
export interface SpeedupJson {
  vsFirst: number;
  ci95: Interval;
  significant: boolean;
  paired: boolean;
  /** Against the `--baseline` model (the first one unless given), e.g. the fastest exact dense variant. */
  vsBaseline: SpeedupVs & { baseline: string };
}

function vs(reference: BenchEntry, e: BenchEntry): Speedup {
  return reference === e ? identity() : speedup(reference.samplesMs, e.samplesMs);
}

/**
 * One entry per bench entry (same order): null with a single model. `baseline`: the models (indices) the baseline may
 * be; at each point it is the fastest of them. Entries come point by point, `models` per point
 * in request order, which is how the worker returns them.
 */
export function benchSpeedups(entries: BenchEntry[], models: number, baseline: number[]): (SpeedupJson | null)[] {
  if (models < 2) return entries.map(() => null);
  if (entries.length % models !== 0) throw new Error(`bench returned ${entries.length} entries for ${models} models`);
  return entries.map((e, i) => {
    const start = i - (i % models);
    const first = vs(entries[start], e);
    // Of several candidates (the first model and its fused copy), the point's fastest.
    const base = baseline.map((b) => entries[start + b]).reduce((a, b) => (b.latencyMs.p50 < a.latencyMs.p50 ? b : a));
    const b = vs(base, e);
    return {
      vsFirst: first.ratio,
      ci95: first.ci95,
      significant: first.significant,
      paired: first.paired,
      vsBaseline: { baseline: base.model, ratio: b.ratio, ci95: b.ci95, significant: b.significant, paired: b.paired },
    };
  });
}

/** "1.84× [1.79–1.90]", with "≈1" when the interval contains 1 (not distinguishable from the reference). */
export function speedupCell(s: Pick<Speedup, 'ratio' | 'ci95' | 'significant'>): string {
  const d = (x: number) => x.toFixed(x >= 10 ? 1 : 2);
  return `${d(s.ratio)}× [${d(s.ci95[0])}–${d(s.ci95[1])}]${s.significant ? '' : ' ≈1'}`;
}
