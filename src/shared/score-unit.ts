// What a language model's score is called: bits per byte for byte-level text (a token is then a byte), bits per token
// otherwise, decided from how the calibration's tokens were made (runtime/inputs/calibration.ts writes "bytes (a
// byte-level model)"). One rule, so the Accuracy tab's evaluation and the Advisor tab read the same unit for one model.

export type BitsUnit = 'bits per byte' | 'bits per token';

/** "bits per byte" for byte-level text, else "bits per token". */
export function bitsUnit(how: string): BitsUnit {
  return /byte/.test(how) ? 'bits per byte' : 'bits per token';
}

/**
 * A score's name in the unit of its text: "bits per token" (how the core names eval's score) becomes `bitsUnit(how)`,
 * at the start of the name or alone; other scores (KL, 1 − cosine) are unchanged. Without `how` (not token text), as is.
 */
export function inBitsUnit(metric: string, how: string | null | undefined): string {
  if (!how) return metric;
  return metric.replace(/^bits per token\b/, bitsUnit(how));
}
