// How the dashboard speaks of a model's length and throughput: a text model's sequence is tokens and its throughput
// tokens per second; an image model's sequence is its patches (fixed by the image size) and its throughput images per
// second. "Latency at 1 tokens" or "1024 tokens" said of a ViT described a model that does not exist. Pure.
import type { AnalysisReport } from '../../src/shared/analysis-report';
import { isVision, unitOf } from '../../src/shared/lengths';
import type { SpeedPoint } from '../../src/protocol';

export interface Units {
  /** Image model: pixels in, patches inside. */
  vision: boolean;
  /** What one position is: "tokens" or "patches". */
  unit: 'tokens' | 'patches';
}

export function unitsOf(report: Pick<AnalysisReport, 'model'> | null | undefined): Units {
  const model = report?.model;
  return { vision: model ? isVision(model) : false, unit: unitOf(model) };
}

/** "512 tokens", "17 patches", "1 token". */
export function positions(n: number, u: Units): string {
  return `${n} ${n === 1 ? u.unit.replace(/s$/, '') : u.unit}`;
}

/** The throughput column's title. */
export function throughputTitle(u: Units): string {
  return u.vision ? 'images/s' : 'tokens/s';
}

/**
 * Throughput of a point: tokens per second, or for an image model images per second (a run processes batch × seq
 * positions, and a point's `seq` is its patch count, so images = positions / seq).
 */
export function throughput(p: SpeedPoint | null, u: Units): string {
  if (!p) return '–';
  const v = u.vision ? p.tokensPerSecond / p.seq : p.tokensPerSecond;
  return Number.isFinite(v) ? v.toFixed(v >= 10 ? 0 : 1) : '–';
}

/** The Speed tab's length dropdown label and the sweep's x-axis title. */
export function lengthTitle(u: Units): string {
  return u.vision ? 'patches' : 'sequence length (tokens)';
}
