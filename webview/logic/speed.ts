// What the Speed dashboard shows, computed from a benchmark's results: one row per model at a chosen sequence length
// (latency with its interval, the speedup over the original and over the length's dense baseline, each with its
// interval and the bound the removed FLOPs allow), and the series of the charts. Pure.
import { ORIGINAL, type SessionSnapshot, type SpeedPoint, type SpeedResults } from '../../src/protocol';
import type { Units } from './units';
import { type BoundScope, type SiteMeasures, type Speedup, type Verdict, amdahl, boundWarning, dropsMaskBuild, modelBound, projectionRatio, sameKernels, verdict } from '../../src/shared/bench-stats';
import { isExactVariant } from '../../src/shared/run-results';

export { amdahl };
import { ms, ratio } from './format';

export interface ModelRef {
  key: string;
  label: string;
}

/** A model measured against a reference model (the original, or the dense baseline) at one length. */
export interface Comparison {
  against: ModelRef;
  /** The row is the reference itself (its speedup is the identity). */
  reference: boolean;
  /** Reference median / this model's median, with its paired-bootstrap interval; null in reports saved without one. */
  speedup: Speedup | null;
  /** Attention FLOPs of the reference / this model's: the attention core's speedup if time followed its FLOPs. */
  attentionBound: number | null;
  /**
   * The whole model's bound: Amdahl's law with the reference's measured share s of kernel time (the score path for a
   * sparse rule, the whole sites for pruning) and the FLOP ratio r = this model's / the reference's, 1 / ((1 − s) + s·r).
   * Null without a profile, for rewrites whose gain the analytic FLOPs do not bound (fusion, shared projections), and
   * between models whose scores other kernels compute (a fused baseline and a written-out variant).
   */
  modelBound: number | null;
  /** Why there is no model bound although the FLOPs are known (the two models' scores run on other kernels); else null. */
  boundNote: string | null;
  /** A win only when distinguishable from 1 and within the bound; see trust.ts. */
  verdict: Verdict | null;
}

export interface SpeedRow extends ModelRef {
  point: SpeedPoint | null;
  vsOriginal: Comparison;
  vsBaseline: Comparison;
  /** This row is the length's dense baseline. */
  isBaseline: boolean;
  /** The point's timing warnings and any speedup above its bound. */
  warnings: string[];
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

/** The model every `vsBaseline` of this length is measured against (the original in reports without one). */
export function baselineOf(speed: SpeedResults, seq: number): string {
  return speed.baselines?.find((b) => b.seq === seq)?.model ?? ORIGINAL;
}

/** Attention FLOPs of a model at a length: the original's are every bound's "before", a variant's its "after". */
function flopsOf(speed: SpeedResults, key: string, seq: number): number | null {
  if (key === ORIGINAL) return speed.bounds.find((b) => b.seq === seq)?.flopsBefore ?? null;
  return speed.bounds.find((b) => b.variant === key && b.seq === seq)?.flopsAfter ?? null;
}

/** Reports saved before bound scopes: every variant's FLOP ratio was applied to the score path. */
function scopeOf(speed: SpeedResults, key: string): BoundScope {
  return key === ORIGINAL ? 'none' : (speed.variants.find((v) => v.id === key)?.boundScope ?? 'core');
}

/** What computes a model's scores and how wide its projections are, where the report says. */
function measuresOf(speed: SpeedResults, key: string): SiteMeasures | undefined {
  return key === ORIGINAL ? speed.originalMeasures : speed.variants.find((v) => v.id === key)?.measures;
}

function compare(speed: SpeedResults, ref: ModelRef, key: string, seq: number, s: Speedup | null): Comparison {
  if (key === ref.key) return { against: ref, reference: true, speedup: s, attentionBound: 1, modelBound: 1, boundNote: null, verdict: s && verdict(s, 1) };
  const before = flopsOf(speed, ref.key, seq);
  const after = flopsOf(speed, key, seq);
  const r = before === null || after === null || before <= 0 ? null : after / before;
  const attentionBound = r === null ? null : r === 0 ? Infinity : 1 / r;
  const none = { attentionShare: null, attentionCoreShare: null };
  const shares = pointOf(speed, ref.key, seq) ?? none;
  const [a, b] = [measuresOf(speed, ref.key), measuresOf(speed, key)];
  const scope = scopeOf(speed, key);
  const like = sameKernels(a, b);
  const bound = like ? modelBound(scope, shares, r, dropsMaskBuild(pointOf(speed, key, seq) ?? none), projectionRatio(a, b)) : null;
  const boundNote = like || r === null || scope === 'none' ? null : `no bound: ${ref.label} computes its scores with ${a?.kernels}, this model with ${b?.kernels}, at another speed per FLOP`;
  return { against: ref, reference: false, speedup: s, attentionBound, modelBound: bound, boundNote, verdict: s && verdict(s, bound) };
}

export function speedRows(speed: SpeedResults, seq: number): SpeedRow[] {
  const refs = models(speed);
  const original = refs[0];
  const baselineKey = baselineOf(speed, seq);
  const baseline = refs.find((m) => m.key === baselineKey) ?? original;
  return refs.map((m) => {
    const point = pointOf(speed, m.key, seq);
    const vsOriginal = compare(speed, original, m.key, seq, point?.vsOriginal ?? null);
    const vsBaseline = compare(speed, baseline, m.key, seq, point?.vsBaseline ?? null);
    const warnings = [...(point?.warnings ?? [])];
    for (const c of baseline.key === original.key ? [vsOriginal] : [vsOriginal, vsBaseline]) {
      const w = c.speedup && boundWarning(c.speedup, c.modelBound, c.against.label);
      if (w) warnings.push(w);
    }
    return { ...m, point, vsOriginal, vsBaseline, isBaseline: m.key === baseline.key, warnings };
  });
}

/** 1.234 → "1.23" (a ratio without its "×", for the ends of an interval). */
function plain(x: number): string {
  return Number.isFinite(x) ? x.toFixed(x >= 10 ? 1 : 2) : '∞';
}

/** A speedup cell: "1.84× [1.79–1.90]", with the verdict (for its style) and an explanation of what it may claim. */
export function speedupCell(c: Comparison): { text: string; verdict: Verdict | 'none' | 'reference'; title: string } {
  const s = c.speedup;
  if (c.reference) return { text: '1× (reference)', verdict: 'reference', title: `the others are measured against ${c.against.label}` };
  if (!s || !c.verdict) return { text: '–', verdict: 'none', title: 'measured without an interval' };
  const text = `${ratio(s.ratio)} [${plain(s.ci95[0])}–${plain(s.ci95[1])}]`;
  switch (c.verdict) {
    case 'faster':
      return { text, verdict: 'faster', title: `faster than ${c.against.label}: the 95% interval lies above 1` };
    case 'slower':
      return { text, verdict: 'slower', title: `slower than ${c.against.label}: the 95% interval lies below 1` };
    case 'indistinguishable':
      return { text: `${text} ≈1`, verdict: 'indistinguishable', title: 'not distinguishable from 1: the 95% interval contains 1' };
    case 'bound-exceeded':
      return { text: `⚠ ${text}`, verdict: 'bound-exceeded', title: `above its bound of ${ratio(c.modelBound)}: a measurement problem, not a win` };
  }
}

/** "12.3 ms [12.1–12.6]": the median with its 95% interval. */
export function latencyCell(p: Pick<SpeedPoint, 'latencyMs'> | null): string {
  if (!p) return '–';
  const ci = p.latencyMs.ci95;
  return ci ? `${ms(p.latencyMs.p50)} [${ms(ci[0]).replace(/ ms$/, '')}–${ms(ci[1]).replace(/ ms$/, '')}]` : ms(p.latencyMs.p50);
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

/**
 * What "Benchmark variants" will run, phrased as the next run's plan: the header used to list the configured lengths
 * as if they were results, which after a cancelled run named lengths that had none.
 */
export function nextRunText(session: Pick<SessionSnapshot, 'variants' | 'settings' | 'rules'>, units: Units): string {
  const s = session.settings;
  const where = units.vision ? 'at the model’s own image size' : `at ${s.sequenceLengths.join(', ')} tokens`;
  const family = (r: string) => session.rules?.find((x) => x.name === r)?.family; // a saved report may predate `rules`
  const noExact = session.variants.length > 0 && !session.variants.some((v) => isExactVariant(v.preview.applied.map((a) => a.rule), family));
  return `Times the original and ${session.variants.length} variant(s) ${where}: at least ${s.iterations} timed runs` +
    `${s.minTimeMs ? ` and ${s.minTimeMs / 1000} s` : ''}${units.vision ? '' : ' per length'} after ${s.warmup} warm-up, on ${s.executionProviders.join(', ')}.` +
    (noExact ? ' No variant computes exactly what the original does, so the original fused for the provider is timed too, as the dense baseline (where its attention can be fused).' : '');
}
