// What a per-head plan holds (issue 10): one choice per query head of a site. The types live here, in the rewriters,
// because the `plan` rule takes them as its parameters and the core may not import the shared layer; the plan file's
// reader and writer (src/shared/head-plan.ts) re-export them, so there is still one definition.

/**
 * A window span that grows with the sequence length L (MoA's elastic span): W(L) = round(a + b·L), clamped to
 * [1, L], where round(x) = floor(x + 0.5) (halves round up). b ≥ 0: the span never shrinks as L grows. span.ts
 * resolves it; a plan may give it wherever a window size goes.
 */
export interface SpanLaw {
  a: number;
  b: number;
}

/** A window size as a plan gives it: a fixed number of keys, or a law of the length. */
export type Span = number | SpanLaw;

/** A head's choice with window sizes of type W (numbers once resolved at a length, or spans in a plan). */
export type ChoiceOf<W> =
  | { kind: 'dense' }
  | { kind: 'pruned' }
  | { kind: 'window'; window: W }
  | { kind: 'sink'; sink: number; window: W }
  | { kind: 'strided'; stride: number; window: W }
  | { kind: 'power'; window: W }
  | { kind: 'block-topk'; block: number; k: number };

/** A choice at a known length: every window is a number of keys (what the rewriters build). */
export type HeadChoice = ChoiceOf<number>;
/** A choice as a plan holds it: a window may be a span law, resolved at the rewrite's length (span.ts). */
export type PlanChoice = ChoiceOf<Span>;

export interface HeadPlanFile {
  version: 1;
  /** The length the plan was chosen for (informative; a plan applies at any length, its span laws resolved there). */
  seq?: number;
  /** The lengths the advisor profiled and searched at, when there were several (informative). */
  lengths?: number[];
  /** Free text: how the plan was made (budget, calibration data, lengths profiled). */
  note?: string;
  /** Site id → one choice per query head. */
  sites: Record<number, PlanChoice[]>;
}

/** A plan whose span laws are resolved at one length (span.ts, resolvePlan). */
export interface ResolvedPlan extends HeadPlanFile {
  sites: Record<number, HeadChoice[]>;
}

export function isSpanLaw(w: Span): w is SpanLaw {
  return typeof w === 'object' && w !== null;
}

/** A number as the plan notation writes it: shortest form that reads back to the same double. */
const num = (x: number) => String(x);

/** "64", or "16 + 0.125·L" (a negative a is written "-16 + 0.125·L"). */
export function describeSpan(w: Span): string {
  return isSpanLaw(w) ? `${num(w.a)} + ${num(w.b)}·L` : String(w);
}

export function describeHeadChoice(c: PlanChoice): string {
  switch (c.kind) {
    case 'dense': return 'dense';
    case 'pruned': return 'pruned';
    case 'window': return `window ${describeSpan(c.window)}`;
    case 'sink': return `sink ${c.sink} + window ${describeSpan(c.window)}`;
    case 'strided': return `strided ${c.stride} + window ${describeSpan(c.window)}`;
    case 'power': return `power + window ${describeSpan(c.window)}`;
    case 'block-topk': return `block-topk ${c.block},${c.k}`;
  }
}

/** A site's choices counted, in order of first appearance: "2×dense, 4×window 64, 2×pruned". */
export function summarizeChoices(choices: readonly PlanChoice[]): string {
  return summarizeDescriptions(choices.map(describeHeadChoice));
}

/** The same count over choices already described (e.g. with a span law's value at a length). */
export function summarizeDescriptions(described: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const d of described) counts.set(d, (counts.get(d) ?? 0) + 1);
  return [...counts].map(([d, n]) => `${n}×${d}`).join(', ');
}
