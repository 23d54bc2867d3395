// The advisor's search (issue 10): one choice per head minimising the summed estimated loss under a density budget,
// solved exactly as a 0-1 integer program by HiGHS:
//
//   minimise   Σ_h Σ_o loss(h, o) · x(h, o)
//   subject to Σ_o x(h, o) = 1                      for every head h
//              Σ_h Σ_o density(h, o) · x(h, o) ≤ d · heads
//              x(h, o) ∈ {0, 1}
//
// where density(h, o) is head h's mean keys per query under option o relative to dense attention (candidates.ts), so
// that the constraint says "mean density over all heads of all planned sites ≤ d". Options another option of the same
// head beats on both loss and keys can never be optimal and are left out before the model is written.
import type { HeadChoice } from '../../rewriters/plan/choices';
import { highs } from './highs';

export interface SearchHead {
  site: number;
  head: number;
  options: { choice: HeadChoice; density: number; loss: number }[];
}

export interface SearchResult {
  /** One entry per input head, in input order. */
  picks: { site: number; head: number; choice: HeadChoice; density: number; loss: number }[];
  /** Mean density over heads. */
  density: number;
  /** Summed estimated loss. */
  loss: number;
  /** HiGHS's model status and the time it took. */
  status: string;
  solveMs: number;
}

export class BudgetError extends Error {
  readonly userError = true;
}

/** The options of a head that no other option beats on both density and loss, in order of density. */
export function undominated<T extends { density: number; loss: number }>(options: T[]): { option: T; index: number }[] {
  const sorted = options.map((option, index) => ({ option, index })).sort((a, b) => a.option.density - b.option.density || a.option.loss - b.option.loss);
  const kept: { option: T; index: number }[] = [];
  let best = Infinity;
  for (const o of sorted) {
    if (o.option.loss < best) {
      kept.push(o);
      best = o.option.loss;
    }
  }
  return kept;
}

const num = (v: number) => (Number.isFinite(v) ? Number(v.toPrecision(12)).toString() : '0');

/** The integer program in CPLEX LP format, with variable x_h_o for option o (index into the head's options) of head h. */
export function planProgram(heads: SearchHead[], budget: number): { lp: string; vars: { h: number; o: number; name: string }[] } {
  const vars: { h: number; o: number; name: string }[] = [];
  const objective: string[] = [];
  const rows: string[] = [];
  const budgetTerms: string[] = [];
  // Losses are rescaled so that the largest is 1: the solver's tolerances are absolute.
  const scale = Math.max(1e-30, ...heads.flatMap((h) => h.options.map((o) => o.loss)));
  heads.forEach((head, h) => {
    const names: string[] = [];
    for (const { option, index } of undominated(head.options)) {
      const name = `x_${h}_${index}`;
      vars.push({ h, o: index, name });
      names.push(name);
      objective.push(`${num(option.loss / scale)} ${name}`);
      budgetTerms.push(`${num(option.density)} ${name}`);
    }
    rows.push(` one_${h}: ${names.join(' + ')} = 1`);
  });
  const lp = [
    'Minimize',
    ` obj: ${objective.join(' + ')}`,
    'Subject To',
    ...rows,
    ` budget: ${budgetTerms.join(' + ')} <= ${num(budget * heads.length)}`,
    'Binary',
    ` ${vars.map((v) => v.name).join(' ')}`,
    'End',
  ].join('\n');
  return { lp, vars };
}

/** The plan of least estimated loss whose mean density is at most `budget` (a share of dense attention, 0 … 1). */
export async function searchPlan(heads: SearchHead[], budget: number): Promise<SearchResult> {
  if (heads.length === 0) throw new Error('no heads to plan');
  const cheapest = heads.reduce((a, h) => a + Math.min(...h.options.map((o) => o.density)), 0) / heads.length;
  if (cheapest > budget) throw new BudgetError(`density ${budget} is below the cheapest plan of the candidates (${cheapest.toFixed(4)})`);
  const { lp, vars } = planProgram(heads, budget);
  const solver = await highs();
  const t0 = performance.now();
  const r = solver.solve(lp, { output_flag: false, mip_rel_gap: 0, mip_abs_gap: 0 });
  const solveMs = performance.now() - t0;
  if (r.Status !== 'Optimal') throw new Error(`HiGHS did not find an optimal plan: ${r.Status}`);
  const chosen = new Map<number, number>();
  for (const v of vars) if ((r.Columns[v.name]?.Primal ?? 0) > 0.5) chosen.set(v.h, v.o);
  const picks = heads.map((head, h) => {
    const o = chosen.get(h);
    if (o === undefined) throw new Error(`HiGHS returned no option for site ${head.site} head ${head.head}`);
    const opt = head.options[o];
    return { site: head.site, head: head.head, choice: opt.choice, density: opt.density, loss: opt.loss };
  });
  const density = picks.reduce((a, p) => a + p.density, 0) / picks.length;
  // The solver's feasibility tolerance is absolute (1e-7 on the row); a plan over budget by more is a bug, not a rounding.
  if (density > budget + 1e-6) throw new Error(`HiGHS returned a plan of density ${density} over the budget ${budget}`);
  return { picks, density, loss: picks.reduce((a, p) => a + p.loss, 0), status: r.Status, solveMs };
}
