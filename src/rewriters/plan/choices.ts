// What a per-head plan holds (issue 10): one choice per query head of a site. The types live here, in the rewriters,
// because the `plan` rule takes them as its parameters and the core may not import the shared layer; the plan file's
// reader and writer (src/shared/head-plan.ts) re-export them, so there is still one definition.

export type HeadChoice =
  | { kind: 'dense' }
  | { kind: 'pruned' }
  | { kind: 'window'; window: number }
  | { kind: 'sink'; sink: number; window: number }
  | { kind: 'strided'; stride: number; window: number }
  | { kind: 'power'; window: number }
  | { kind: 'block-topk'; block: number; k: number };

export interface HeadPlanFile {
  version: 1;
  /** The length the plan was chosen for (informative; a plan applies at any length). */
  seq?: number;
  /** Free text: how the plan was made (budget, calibration data, lengths profiled). */
  note?: string;
  /** Site id → one choice per query head. */
  sites: Record<number, HeadChoice[]>;
}

export function describeHeadChoice(c: HeadChoice): string {
  switch (c.kind) {
    case 'dense': return 'dense';
    case 'pruned': return 'pruned';
    case 'window': return `window ${c.window}`;
    case 'sink': return `sink ${c.sink} + window ${c.window}`;
    case 'strided': return `strided ${c.stride} + window ${c.window}`;
    case 'power': return `power + window ${c.window}`;
    case 'block-topk': return `block-topk ${c.block},${c.k}`;
  }
}

/** A site's choices counted, in order of first appearance: "2×dense, 4×window 64, 2×pruned". */
export function summarizeChoices(choices: readonly HeadChoice[]): string {
  const counts = new Map<string, number>();
  for (const c of choices) {
    const d = describeHeadChoice(c);
    counts.set(d, (counts.get(d) ?? 0) + 1);
  }
  return [...counts].map(([d, n]) => `${n}×${d}`).join(', ');
}
