// Decoding in the dashboard: whether a model has a KV cache, the past lengths a person typed, and the rows of the
// decode benchmark and of the generation comparison. Pure.
import { ORIGINAL, type DecodePoint, type DecodeResults, type GenerationRow } from '../../src/protocol';
import type { AnalysisReport } from '../../src/shared/analysis-report';

export function hasKvCache(report: AnalysisReport): boolean {
  return report.model.inputs.some((i) => i.role === 'past_key' || i.role === 'past_value');
}

/** "64, 256 1024" → [64, 256, 1024]; an error in words for anything else. */
export function parsePasts(text: string): number[] | string {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  const values = parts.map(Number);
  if (parts.length === 0 || values.some((v) => !Number.isInteger(v) || v < 0)) return 'past lengths are whole numbers ≥ 0, separated by commas';
  if (values.length > 16) return 'at most 16 past lengths';
  return [...new Set(values)].sort((a, b) => a - b);
}

/** One row per model at one past length, the original first. */
export function decodeRows(d: DecodeResults, past: number): { label: string; point: DecodePoint | null }[] {
  const models = [{ key: ORIGINAL, label: 'original' }, ...d.variants.map((v) => ({ key: v.id, label: v.label }))];
  return models.map((m) => ({ label: m.label, point: d.points.find((p) => p.model === m.key && p.past === past) ?? null }));
}

/** A continuation as text: each id's label when known ("def", "␣"), else #id. */
export function continuation(ids: number[], pieces: Record<number, string> | null): string {
  return ids.map((id) => pieces?.[id] ?? `#${id}`).join(pieces ? '' : ' ');
}

/** "8 of 16" agreed steps, or "all 16". */
export function agreedText(r: GenerationRow): string {
  return r.agreedSteps === r.tokensOriginal.length ? `all ${r.agreedSteps}` : `${r.agreedSteps} of ${r.tokensOriginal.length}`;
}
