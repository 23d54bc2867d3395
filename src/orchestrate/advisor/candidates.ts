// The advisor's candidate set per head and what each costs (issue 10). Cost is density: the mean number of keys a
// query sees, relative to dense attention at the same length, causal counted as causal (a causal query i sees i + 1
// keys, so dense is (L + 1)/2 per query on average). Static patterns are counted with the rewriters' closed forms
// (sparse/pattern.ts); `block-topk b k` by its bound: the diagonal block (causal part only) and at most k + 1 other
// full blocks that precede it, which is what the gather form computes at most; `pruned` sees nothing.
//
// Under a FLOP or latency budget (both counted on the blocked realisation) the windows also include, for each rung of
// the ladder, the largest window that costs the same there: the blocked form computes keys in whole blocks of rows,
// so at 128 tokens window 16 (and 8, and 4) computes what window 17 does, and the ladder alone would leave those keys
// paid for and unused. A density budget keeps the ladder alone (there every key costs).
import type { HeadChoice } from '../../rewriters/plan/choices';
import { patternOf } from '../../rewriters/plan/heads';
import { realisedHead } from '../../rewriters/plan/realised-cost';
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
  /**
   * Add to the window, sink and strided windows the largest window of each that costs what the rung costs in the
   * blocked realisation (FLOP and latency budgets); off by default and under a density budget.
   */
  blockAligned?: boolean;
}

type WindowedChoice = Extract<HeadChoice, { kind: 'window' | 'sink' | 'strided' }>;

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
  const ladder = (at: (w: number) => WindowedChoice) => (o.blockAligned ? withAligned(windows, at, seq, causal) : windows).map(at);
  const choices: HeadChoice[] = [{ kind: 'dense' }, ...ladder((w) => ({ kind: 'window', window: w }))];
  const families: UniformFamily[] = [{ name: 'window', at: (w) => ({ kind: 'window', window: w }), min: 1, max: seq }];
  if (causal) {
    choices.push(...ladder((w) => ({ kind: 'sink', sink, window: w })));
    choices.push(...ladder((w) => ({ kind: 'strided', stride, window: w })));
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

/** The ladder's windows and, for each, the largest window of the same blocked cost (alignedWindow), ascending. */
function withAligned(windows: number[], at: (w: number) => WindowedChoice, seq: number, causal: boolean): number[] {
  const all = new Set(windows);
  for (const w of windows) all.add(alignedWindow(at(w), seq, causal));
  return [...all].sort((a, b) => a - b);
}

/**
 * The largest window (below `seq`) whose choice of `c`'s kind computes as many query rows × keys as `c` in the blocked
 * realisation, read from realised-cost.ts (the rewrite's own block rows and keys per row), not restated here.
 */
export function alignedWindow(c: WindowedChoice, seq: number, causal: boolean): number {
  const work = (w: number) => {
    const r = realisedHead({ ...c, window: w }, seq, causal, 1);
    return r.rows * r.keys + (r.extraFlops ?? 0);
  };
  const same = work(c.window);
  let w = c.window;
  while (w + 1 < seq && work(w + 1) === same) w++;
  return w;
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
