// The sparse rules of methods.md, as a predicate "may query i see key j in head h", used to measure a pattern's
// attention recall on dense attention maps. Positions are absolute (a query's position counts the past tokens).
// Dynamic (block-topk) and 2-D (neighborhood2d) rules depend on the data or the image grid and are not predicates of
// (i, j, h) alone; they are refused here rather than approximated. Visibility itself is the rewriters' definition
// (src/rewriters/sparse/pattern.ts), so the recall measured is that of the mask the rewrite builds.
import { type Visibility, visible } from '../../rewriters/sparse/pattern';

export type SparsePattern =
  | { kind: 'window'; window: number }
  | { kind: 'sink'; sink: number; window: number }
  | { kind: 'strided'; stride: number; window: number }
  | { kind: 'power'; window: number };

const INT = '(\\d+)';

/** Parses the notation of methods.md: `window 64`, `sink 4 + window 64`, `strided 8 + window 64`, `power + window 64`. */
export function parsePattern(text: string): SparsePattern {
  const t = text.trim().toLowerCase().replace(/\s+/g, ' ');
  let m: RegExpExecArray | null;
  const positive = (v: string, what: string): number => {
    const n = Number.parseInt(v, 10);
    if (!(n >= 1)) throw new Error(`pattern "${text}": ${what} must be >= 1`);
    return n;
  };
  if ((m = new RegExp(`^window ${INT}$`).exec(t))) return { kind: 'window', window: positive(m[1], 'window') };
  if ((m = new RegExp(`^sink ${INT} ?\\+ ?window ${INT}$`).exec(t))) {
    return { kind: 'sink', sink: Number.parseInt(m[1], 10), window: positive(m[2], 'window') };
  }
  if ((m = new RegExp(`^strided ${INT} ?\\+ ?window ${INT}$`).exec(t))) {
    return { kind: 'strided', stride: positive(m[1], 'stride'), window: positive(m[2], 'window') };
  }
  if ((m = new RegExp(`^power ?\\+ ?window ${INT}$`).exec(t))) return { kind: 'power', window: positive(m[1], 'window') };
  throw new Error(`pattern "${text}": expected "window W", "sink N + window W", "strided K + window W" or "power + window W"`);
}

/** The rewriters' pattern this notation names: a window is two-sided on a non-causal site, the others are causal. */
function asPattern(p: SparsePattern, causal: boolean): Visibility {
  return p.kind === 'window' ? { ...p, causal } : p;
}

export function isVisible(p: SparsePattern, i: number, j: number, head: number, causal: boolean): boolean {
  return visible(asPattern(p, causal), i, j, head);
}

/** The same predicate with the pattern read once, for callers that ask about many cells. */
export function visibilityOf(p: SparsePattern, causal: boolean): (i: number, j: number, head: number) => boolean {
  const v = asPattern(p, causal);
  return (i, j, head) => visible(v, i, j, head);
}

export function describePattern(p: SparsePattern): string {
  switch (p.kind) {
    case 'window': return `window ${p.window}`;
    case 'sink': return `sink ${p.sink} + window ${p.window}`;
    case 'strided': return `strided ${p.stride} + window ${p.window}`;
    case 'power': return `power + window ${p.window}`;
  }
}
