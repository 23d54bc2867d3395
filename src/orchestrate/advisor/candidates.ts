// The advisor's candidate set per head and what each costs (issue 10). Cost is density: the mean number of keys a
// query sees, relative to dense attention at the same length, causal counted as causal (a causal query i sees i + 1
// keys, so dense is (L + 1)/2 per query on average). Static patterns are counted with the rewriters' closed forms
// (sparse/pattern.ts); `block-topk b k` by its bound: the diagonal block (causal part only) and at most k + 1 other
// full blocks that precede it, which is what the gather form computes at most; `pruned` sees nothing.
import type { HeadChoice } from '../../rewriters/plan/choices';
import { patternOf } from '../../rewriters/plan/heads';
import { keysPerQueryOfHead } from '../../rewriters/sparse/pattern';
import type { RecallPattern } from '../../runtime/measure/pattern-recall';

export interface CandidateSet {
  /** Choices in a fixed order; dense first, pruned last. */
  choices: HeadChoice[];
  /** The uniform rules the plans are compared with: one family per sparse kind, each with a free parameter. */
  families: UniformFamily[];
}

/** A uniform rule with one integer parameter that sets its density (window W, or blocks kept k). */
export interface UniformFamily {
  name: string;
  /** The choice at parameter value v; densities grow with v. */
  at: (v: number) => HeadChoice;
  min: number;
  max: number;
}

export interface CandidateOptions {
  /** Window sizes; default L/64 … L/2 by doubling (at least 4). */
  windows?: number[];
  sink?: number;
  /** Stride of the strided candidates; default L/16. */
  stride?: number;
  /** Block size of block-topk; default L/16 (at least 16). */
  block?: number;
  /** Blocks kept k of block-topk; default 0, 1, 2, 4, 8. */
  topk?: number[];
}

const pow2Ladder = (from: number, to: number) => {
  const out: number[] = [];
  for (let w = from; w <= to; w *= 2) out.push(w);
  return out;
};

/** The candidates for heads of a self-attention site of length `seq`. */
export function candidateSet(seq: number, causal: boolean, o: CandidateOptions = {}): CandidateSet {
  const windows = (o.windows ?? pow2Ladder(Math.max(4, seq / 64), seq / 2)).filter((w) => Number.isInteger(w) && w >= 1 && w < seq);
  const sink = o.sink ?? 4;
  const stride = o.stride ?? Math.max(2, Math.round(seq / 16));
  const block = o.block ?? Math.max(16, Math.round(seq / 16));
  const topk = o.topk ?? [0, 1, 2, 4, 8];
  const choices: HeadChoice[] = [{ kind: 'dense' }, ...windows.map((w): HeadChoice => ({ kind: 'window', window: w }))];
  const families: UniformFamily[] = [{ name: 'window', at: (w) => ({ kind: 'window', window: w }), min: 1, max: seq }];
  if (causal) {
    choices.push(...windows.map((w): HeadChoice => ({ kind: 'sink', sink, window: w })));
    choices.push(...windows.map((w): HeadChoice => ({ kind: 'strided', stride, window: w })));
    families.push(
      { name: `sink ${sink} + window`, at: (w) => ({ kind: 'sink', sink, window: w }), min: 1, max: seq },
      { name: `strided ${stride} + window`, at: (w) => ({ kind: 'strided', stride, window: w }), min: 1, max: seq },
    );
  }
  choices.push(...topk.map((k): HeadChoice => ({ kind: 'block-topk', block, k })));
  families.push({ name: `block-topk ${block},k`, at: (k) => ({ kind: 'block-topk', block, k }), min: 0, max: Math.ceil(seq / block) });
  choices.push({ kind: 'pruned' });
  return { choices, families };
}

/** Mean keys per query of dense attention at `seq` tokens (no cache). */
export function denseKeys(causal: boolean, seq: number): number {
  return causal ? (seq + 1) / 2 : seq;
}

/** Mean keys a query of head `head` (of `heads`) sees under choice `c` at `seq` tokens. */
export function choiceKeys(c: HeadChoice, causal: boolean, seq: number, head: number, heads: number): number {
  if (c.kind === 'dense') return denseKeys(causal, seq);
  if (c.kind === 'pruned') return 0;
  if (c.kind === 'block-topk') return blockTopkKeys(c.block, c.k, causal, seq);
  return keysPerQueryOfHead(patternOf(c, causal, heads)!, seq, head);
}

/** The bound of block-topk's keys per query: diagonal block (causal part on a causal site) plus k + 1 other blocks. */
function blockTopkKeys(b: number, k: number, causal: boolean, seq: number): number {
  let total = 0;
  for (let i = 0; i < seq; i++) {
    const qb = Math.floor(i / b);
    if (causal) {
      total += i - qb * b + 1 + b * Math.min(k + 1, qb);
    } else {
      const nb = Math.ceil(seq / b);
      // The diagonal block, then the largest others (every block is full but maybe the last).
      const last = seq - (nb - 1) * b;
      const others = Math.min(k + 1, nb - 1);
      const own = qb === nb - 1 ? last : b;
      const lastAmongOthers = qb !== nb - 1 && others === nb - 1 ? last - b : 0;
      total += own + others * b + lastAmongOthers;
    }
  }
  return total / seq;
}

/** The pattern whose recall the profile measures for a choice (null for dense and pruned: 1 and 0 by definition). */
export function recallPatternOf(c: HeadChoice): RecallPattern | null {
  switch (c.kind) {
    case 'dense':
    case 'pruned':
      return null;
    case 'block-topk':
      return { kind: 'block-topk', block: c.block, k: c.k };
    default:
      return c;
  }
}
