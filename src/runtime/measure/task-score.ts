// The task score of a causal language model (methods.md): mean next-token cross-entropy over n evenly spaced windows of
// length L in a file of N token ids. Window k starts at floor(k·(N − L − 1)/n), is fed tokens start … start+L−1 and
// predicts tokens start+1 … start+L, so every window needs L+1 tokens of the file.
import { existsSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parseNpy } from '../inputs/npy';
import { toFloat64 } from '../tensor';

export function windowStarts(fileTokens: number, windowLength: number, windows: number): number[] {
  if (!Number.isInteger(windowLength) || windowLength < 1) throw new Error(`window length must be a positive integer, got ${windowLength}`);
  if (!Number.isInteger(windows) || windows < 1) throw new Error(`window count must be a positive integer, got ${windows}`);
  const span = fileTokens - windowLength - 1;
  if (span < 0) throw new Error(`the token file holds ${fileTokens} tokens; a window of ${windowLength} needs at least ${windowLength + 1}`);
  const starts: number[] = [];
  // BigInt keeps the integer division exact for any file size (k·span can pass 2^53 only for absurd files, but cheaply).
  for (let k = 0; k < windows; k++) starts.push(Number((BigInt(k) * BigInt(span)) / BigInt(windows)));
  return starts;
}

/**
 * Sum over positions t of −log softmax(logits[t])[targets[t]] in nats. `logits` holds `positions` rows of `vocab`.
 */
export function crossEntropySumNats(logits: Float32Array | Float64Array, vocab: number, targets: ArrayLike<number>, positions: number): number {
  let total = 0;
  for (let t = 0; t < positions; t++) {
    const off = t * vocab;
    let max = -Infinity;
    for (let v = 0; v < vocab; v++) if (logits[off + v] > max) max = logits[off + v];
    let sum = 0;
    for (let v = 0; v < vocab; v++) sum += Math.exp(logits[off + v] - max);
    const target = targets[t];
    if (!(target >= 0 && target < vocab)) throw new Error(`target token ${target} is outside the model's ${vocab} logits`);
    total += max + Math.log(sum) - logits[off + target];
  }
  return total;
}

export interface TaskScore {
  bitsPerToken: number;
  perplexity: number;
  nats: number;
  windows: number;
  windowLength: number;
  tokensScored: number;
  fileTokens: number;
}

export function scoreFromNats(totalNats: number, tokensScored: number, windows: number, windowLength: number, fileTokens: number): TaskScore {
  const nats = totalNats / tokensScored;
  return {
    bitsPerToken: nats / Math.LN2,
    perplexity: Math.exp(nats),
    nats,
    windows,
    windowLength,
    tokensScored,
    fileTokens,
  };
}

/** A token file that cannot be read is the user's to fix: one line, not an internal error. */
const unreadable = (message: string) => Object.assign(new Error(message), { userError: true });

/** Token ids from a file: `.bytes` = one token per byte, `.npy` = an integer array, `.json` = an array or { ids: [...] }. */
export function loadTokenFile(path: string): Int32Array {
  if (!existsSync(path)) throw unreadable(`--tokens: ${path} does not exist`);
  const ext = extname(path).toLowerCase();
  const buf = readFileSync(path);
  if (ext === '.bytes') return Int32Array.from(buf);
  if (ext === '.npy') {
    const t = parseNpy(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), path);
    if (t.dtype.startsWith('float')) throw unreadable(`${path}: token ids must be integers, got ${t.dtype}`);
    return Int32Array.from(toFloat64(t));
  }
  if (ext === '.json') {
    let json: unknown;
    try {
      json = JSON.parse(buf.toString('utf8'));
    } catch (e) {
      throw unreadable(`${path}: not valid JSON (${(e as Error).message.replace(/\s+/g, ' ')})`);
    }
    const ids = Array.isArray(json) ? json : (json as { ids?: unknown })?.ids;
    if (!Array.isArray(ids)) throw unreadable(`${path}: expected an array of token ids or { "ids": [...] }`);
    const flat = (ids as unknown[]).flat(Infinity);
    if (!flat.every((v) => Number.isInteger(v))) throw unreadable(`${path}: token ids must be integers`);
    return Int32Array.from(flat as number[]);
  }
  throw unreadable(`--tokens: ${path} must be .bytes (one token per byte), .npy or .json`);
}
