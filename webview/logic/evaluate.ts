// The evaluation table: bits per token and perplexity of each model on the text, with the change from the original. Pure.
import type { EvalResults } from '../../src/protocol';
import { bitsUnit } from '../../src/shared/score-unit';

export function evalRows(e: EvalResults): { label: string; bits: string; perplexity: string; change: string }[] {
  const original = e.rows.find((r) => r.model === 'original');
  return e.rows.map((r) => ({
    label: r.label,
    bits: r.bitsPerToken.toFixed(4),
    perplexity: r.perplexity.toFixed(3),
    change: !original || r === original ? '–' : `${r.bitsPerToken >= original.bitsPerToken ? '+' : '−'}${Math.abs(r.bitsPerToken - original.bitsPerToken).toFixed(4)}`,
  }));
}

/** "bits per byte" for byte-level text, else "bits per token" (the rule the Advisor tab's scores follow too). */
export function unitOf(e: Pick<EvalResults, 'how'>): string {
  return bitsUnit(e.how);
}
