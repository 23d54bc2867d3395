// What an advisor budget is (issue 10): its kind, unit and value, and how to write and describe one. The types live
// here, in the core, because the advisor (src/orchestrate) may not import the shared layer; the parser that the CLI and
// the webview use (src/shared/budget.ts) re-exports them, so there is one definition. The forms are described there.

export type BudgetKind = 'density' | 'flops' | 'latency';
/** `share`: of the dense model's figure; `flops`: a FLOP count; `ms`: milliseconds. */
export type BudgetUnit = 'share' | 'flops' | 'ms';

export interface Budget {
  kind: BudgetKind;
  unit: BudgetUnit;
  /** In `unit`: a share in (0, 1], a FLOP count, or milliseconds. */
  value: number;
}

export const BUDGET_KINDS: readonly BudgetKind[] = ['density', 'flops', 'latency'];

export function sameBudget(a: Budget, b: Budget): boolean {
  return a.kind === b.kind && a.unit === b.unit && Number(a.value.toPrecision(6)) === Number(b.value.toPrecision(6));
}

/** "flops=0.3", "latency=12ms", "flops=1.5G": the form the parser reads back. */
export function formatBudget(b: Budget): string {
  return `${b.kind}=${formatBudgetValue(b)}`;
}

/** The value alone, as the parser reads it: "0.25", "12ms", "1.5G". */
export function formatBudgetValue(b: Budget): string {
  const short = (v: number) => String(Number(v.toPrecision(6)));
  if (b.unit === 'ms') return `${short(b.value)}ms`;
  if (b.unit === 'flops') {
    const units: [string, number][] = [['T', 1e12], ['G', 1e9], ['M', 1e6], ['K', 1e3]];
    const [suffix, scale] = units.find(([, s]) => b.value >= s) ?? ['', 1];
    return `${short(b.value / scale)}${suffix}`;
  }
  return short(b.value);
}

/** What the numbers of a budget of this kind and unit mean, in words. */
export function describeUnit(b: Pick<Budget, 'kind' | 'unit'>): string {
  const what = b.kind === 'density' ? 'density' : b.kind === 'flops' ? 'attention FLOPs' : 'latency';
  if (b.unit === 'share') return b.kind === 'density' ? 'density (a share of dense attention)' : `${what} as a share of the dense model's`;
  return b.unit === 'flops' ? 'attention FLOPs (a count)' : 'latency in milliseconds';
}

/** "density ≤ 0.25", "attention FLOPs ≤ 0.3 of dense", "latency ≤ 12 ms". */
export function describeBudget(b: Budget): string {
  if (b.kind === 'density') return `density ≤ ${formatBudgetValue(b)}`;
  const what = b.kind === 'flops' ? 'attention FLOPs' : 'latency';
  if (b.unit === 'share') return `${what} ≤ ${formatBudgetValue(b)} of dense`;
  return b.unit === 'ms' ? `latency ≤ ${Number(b.value.toPrecision(6))} ms` : `attention FLOPs ≤ ${formatBudgetValue(b)}`;
}
