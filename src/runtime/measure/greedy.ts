// The pure parts of greedy decoding: which output feeds which KV-cache input on the next step, the next token from a
// row of logits, and how two models' next-token distributions compare step by step. Used by engine/generate.ts.

/** The part of a cache name that says which layer and tensor it is: `past_key_values.0.key` and `present.0.key` → `0.key`. */
function cacheStem(name: string, prefixes: RegExp): string {
  return name.replace(prefixes, '').toLowerCase();
}

const PAST = /^(past_key_values|past_key_value|past|cache)[._]?/i;
const PRESENT = /^(present_key_values|present|new_cache|cache_out)[._]?/i;

/**
 * Pairs each KV-cache input with the output that holds its next value: by name (`past_key_values.N.key` with
 * `present.N.key`, as Hugging Face exports write them), else by order among the outputs that look like caches.
 * Returns the reason when they cannot be paired: feeding a cache into the wrong input would decode nonsense silently.
 */
export function pairCache(pasts: string[], outputs: string[]): Map<string, string> | { unknown: string } {
  const pairs = new Map<string, string>();
  const presents = outputs.filter((o) => PRESENT.test(o));
  for (const past of pasts) {
    const stem = cacheStem(past, PAST);
    const match = presents.filter((o) => cacheStem(o, PRESENT) === stem);
    if (match.length === 1) pairs.set(past, match[0]);
  }
  if (pairs.size === pasts.length) return pairs;
  if (presents.length === pasts.length) return new Map(pasts.map((p, i) => [p, presents[i]]));
  return { unknown: `cannot tell which outputs carry the KV cache forward (cache inputs ${pasts.join(', ')}; outputs ${outputs.join(', ')})` };
}

/** The index of the largest logit (the first on ties, as torch.argmax). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** log-softmax of one row, in float64. */
function logSoftmax(row: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(row, (v) => v - lse);
}

/** KL(p‖q) in nats of the softmaxes of two logit rows: how far the variant's next-token distribution is from the reference's. */
export function klDivergence(reference: ArrayLike<number>, variant: ArrayLike<number>): number {
  if (reference.length !== variant.length) throw new Error(`logit rows of ${reference.length} and ${variant.length} cannot be compared`);
  const lp = logSoftmax(reference);
  const lq = logSoftmax(variant);
  let kl = 0;
  for (let i = 0; i < lp.length; i++) kl += Math.exp(lp[i]) * (lp[i] - lq[i]);
  return Math.max(0, kl);
}

/** Steps until the first token that differs (the length when none does). */
export function agreedPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}
