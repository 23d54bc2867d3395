// The advisor's budgets (issue 10), written the same way on the command line (`plan --budget`, `--frontier`) and in
// the dashboard's Advisor tab, so both read them with this one parser. Pure: the CLI, the extension and the webview
// import it.
//
//   density=D     mean visible keys per query over all planned heads, as a share of dense attention (causal counted
//                 as causal); D in (0, 1], or a percentage (density=25%)
//   flops=F       attention FLOPs (Q·Kᵀ and ·V of the planned sites, as the rewrite report counts them, of the plan's
//                 compute-reducing realisation) as a share of dense attention's, F in (0, 1] or a percentage; or an
//                 absolute count per run of one sequence with a unit: flops=1.5G (K, M, G, T: 10^3 … 10^12)
//   latency=S     the whole model's latency, measured on the chosen provider at the planned length, as a share of the
//                 dense model's (S in (0, 1] or a percentage); or in time: latency=12ms (ms or s)
//
// A frontier's further values are of the same kind and unit as the budget, given bare ("0.125,0.5", "8ms,20ms") or
// with the kind ("flops=0.2").

import { type Budget, type BudgetKind, BUDGET_KINDS, describeUnit, formatBudget, sameBudget } from '../rewriters/plan/budget';

export { BUDGET_KINDS, describeBudget, describeUnit, formatBudget, formatBudgetValue, sameBudget, type Budget, type BudgetKind, type BudgetUnit } from '../rewriters/plan/budget';

export class BudgetFormatError extends Error {
  readonly userError = true;
}

const FORMS = 'density=D, flops=F or latency=S (a share in (0, 1], e.g. 0.25 or 25%; flops also as a count, e.g. 1.5G; latency also in time, e.g. 12ms)';
const UNIT_HINT: Record<BudgetKind, string> = { density: '', flops: '; a FLOP count needs its unit, e.g. 1.5G', latency: '; a time needs its unit, e.g. 12ms' };
const SCALE: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 };

/** Parses `kind=value`, e.g. "density=0.25", "flops=1.5G", "latency=12ms". Throws a one-line BudgetFormatError. */
export function parseBudget(text: string): Budget {
  const t = String(text).trim();
  const m = /^([a-z]+)\s*=\s*(.*)$/i.exec(t);
  if (!m) throw new BudgetFormatError(`"${t}" is not a budget; give ${FORMS}`);
  const kind = m[1].toLowerCase();
  if (!(BUDGET_KINDS as readonly string[]).includes(kind)) throw new BudgetFormatError(`"${t}": unknown budget kind "${m[1]}"; give ${FORMS}`);
  return parseBudgetValue(kind as BudgetKind, m[2]);
}

/** Parses a bare value of `kind`: "0.25", "25%", "1.5G" (flops), "12ms" (latency). */
export function parseBudgetValue(kind: BudgetKind, text: string): Budget {
  const t = String(text).trim();
  const share = shareOf(t);
  if (share !== undefined) {
    if (!(share > 0 && share <= 1)) throw new BudgetFormatError(`${kind}=${t}: a share must be in (0, 1] (e.g. 0.25 or 25%)${UNIT_HINT[kind]}`);
    return { kind, unit: 'share', value: share };
  }
  if (kind === 'flops') {
    const f = /^(\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+)\s*([kmgt]?)(?:flops?)?$/i.exec(t);
    const v = f ? Number(f[1]) * SCALE[f[2].toLowerCase()] : NaN;
    if (!(v > 0 && Number.isFinite(v))) throw new BudgetFormatError(`flops=${t}: give a share of dense attention's FLOPs in (0, 1] or a count with a unit (K, M, G, T), e.g. flops=1.5G`);
    return { kind, unit: 'flops', value: v };
  }
  if (kind === 'latency') {
    const l = /^(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)$/i.exec(t);
    const v = l ? Number(l[1]) * (l[2].toLowerCase() === 's' ? 1000 : 1) : NaN;
    if (!(v > 0 && Number.isFinite(v))) throw new BudgetFormatError(`latency=${t}: give a share of the dense model's latency in (0, 1] or a time with its unit, e.g. latency=12ms`);
    return { kind, unit: 'ms', value: v };
  }
  throw new BudgetFormatError(`density=${t}: give a share of dense attention in (0, 1], e.g. 0.25 or 25%`);
}

/** A plain number or a percentage; undefined when `t` has another unit (or is not a number at all). */
function shareOf(t: string): number | undefined {
  const m = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)\s*(%?)$/i.exec(t);
  if (!m) return undefined;
  return Number(m[1]) / (m[2] ? 100 : 1);
}

/**
 * A list, comma- or space-separated: the first item names the kind ("flops=0.3, 0.2, 0.5"; a bare first item is a
 * density), the others are bare or name the same kind. All must share one kind and one unit. Duplicates are dropped.
 */
export function parseBudgetList(text: string, max = Infinity): Budget[] {
  const parts = String(text).split(/[,\s]+/).filter((p) => p !== '');
  if (parts.length === 0) throw new BudgetFormatError(`give at least one budget: ${FORMS}`);
  if (parts.length > max) throw new BudgetFormatError(`at most ${max} budgets in one run (each is a search and several measured models)`);
  const first = parts[0].includes('=') ? parseBudget(parts[0]) : parseBudgetValue('density', parts[0]);
  return withFurther(first, parts.slice(1));
}

/** The budget followed by `more` (bare values or `kind=value`), each checked to be of its kind and unit. */
export function withFurther(first: Budget, more: string[]): Budget[] {
  const out = [first];
  for (const p of more) {
    const b = p.includes('=') ? parseBudget(p) : parseBudgetValue(first.kind, p);
    if (b.kind !== first.kind || b.unit !== first.unit) {
      throw new BudgetFormatError(`"${p}" is ${describeUnit(b)}; every budget of one run must be ${describeUnit(first)} like the first (${formatBudget(first)})`);
    }
    if (!out.some((o) => sameBudget(o, b))) out.push(b);
  }
  return out;
}

/** Whether `v` is a well-formed budget (for messages crossing from the webview). */
export function isBudget(v: unknown): v is Budget {
  if (!v || typeof v !== 'object') return false;
  const b = v as Budget;
  if (!BUDGET_KINDS.includes(b.kind) || typeof b.value !== 'number' || !Number.isFinite(b.value) || !(b.value > 0)) return false;
  if (b.unit === 'share') return b.value <= 1;
  return (b.unit === 'flops' && b.kind === 'flops') || (b.unit === 'ms' && b.kind === 'latency');
}
