// The Accuracy dashboard's rows: per variant, per output, the comparison metrics of methods.md. Pure.
import type { AccuracyResults } from '../../src/protocol';
import { num, pct } from './format';

export const ACCURACY_COLUMNS = ['variant', 'output', 'shape', 'max |diff|', 'mean |diff|', 'relative', 'cosine', 'KL (nats)', 'top-1', 'top-5'];

export function accuracyRows(a: AccuracyResults): string[][] {
  return a.variants.flatMap((v) =>
    v.outputs.map((o) => [
      v.label,
      o.name,
      o.shape.join('×'),
      num(o.maxAbsDiff, 6),
      num(o.meanAbsDiff, 6),
      num(o.relativeDiff, 6),
      num(o.cosine, 6),
      o.logits ? num(o.logits.klDivergence, 6) : '–',
      o.logits ? pct(o.logits.top1Agreement) : '–',
      o.logits ? pct(o.logits.top5Overlap) : '–',
    ]),
  );
}

/** One number per variant for the chart: the first logits output's top-1 agreement, else the first output's cosine. */
export function headline(a: AccuracyResults): { metric: 'top-1 agreement' | 'cosine similarity'; values: { label: string; value: number | null }[] } {
  const logits = a.variants.some((v) => v.outputs.some((o) => o.logits));
  return {
    metric: logits ? 'top-1 agreement' : 'cosine similarity',
    values: a.variants.map((v) => {
      const o = logits ? v.outputs.find((x) => x.logits) : v.outputs[0];
      const value = !o ? null : logits ? (o.logits?.top1Agreement ?? null) : o.cosine;
      return { label: v.label, value };
    }),
  };
}
