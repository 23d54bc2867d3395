// The advisor's search (issue 10): one choice per head minimising the summed estimated loss under a budget, solved
// exactly as a 0-1 integer program by HiGHS:
//
//   minimise   Σ_h Σ_o loss(h, o) · x(h, o)
//   subject to Σ_o x(h, o) = 1                      for every head h
//              Σ_h Σ_o cost(h, o) · x(h, o) ≤ limit
//              x(h, o) ∈ {0, 1}
//
// One formulation for every kind of budget (budget.ts gives the costs and the limit): density (each head's mean keys
// per query relative to dense, over the number of heads, against the share D), attention FLOPs (each head's FLOPs in
// the blocked realisation, against F times dense attention's or a count), latency (each head's cost in the fitted
// latency model, relative to dense, against the budget less the dense model's time). Options another option of the
// same head beats on both loss and cost can never be optimal and are left out before the model is written.
import type { HeadChoice } from '../../rewriters/plan/choices';
import { highs } from './highs';

export interface SearchHead {
  site: number;
  head: number;
  options: SearchOption[];
}

export interface SearchOption {
  choice: HeadChoice;
  /** What the option spends of the budget (any unit, the same for all options: see budget.ts). */
  cost: number;
  loss: number;
}

export interface SearchResult {
  /** One entry per input head, in input order. */
  picks: { site: number; head: number; choice: HeadChoice; cost: number; loss: number }[];
  /** Summed cost. */
  cost: number;
  /** Summed estimated loss. */
  loss: number;
  /** HiGHS's model status and the time it took. */
  status: string;
  solveMs: number;
}

/**
 * A cost per head group beyond the first of a site (a latency budget: the Gather and Concat that split a site into
 * groups of heads with one choice each), by site, in the options' cost unit. With it, the program has a binary
 * y(s, o) ≥ x(h, o) for each head h of site s and option o, and the budget row adds Σ perGroup(s)·(Σ_o y(s, o) − 1).
 */
export type GroupCosts = Map<number, number>;

export class BudgetError extends Error {
  readonly userError = true;
}

/** The options of a head that no other option beats on both cost and loss, in order of cost. */
export function undominated<T extends { cost: number; loss: number }>(options: T[]): { option: T; index: number }[] {
  const sorted = options.map((option, index) => ({ option, index })).sort((a, b) => a.option.cost - b.option.cost || a.option.loss - b.option.loss);
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
export function planProgram(heads: SearchHead[], limit: number, groups?: GroupCosts): { lp: string; vars: { h: number; o: number; name: string }[] } {
  const vars: { h: number; o: number; name: string }[] = [];
  const objective: string[] = [];
  const rows: string[] = [];
  const budgetTerms: string[] = [];
  // Losses and costs are rescaled so that the largest is 1: the solver's tolerances are absolute.
  const scale = Math.max(1e-30, ...heads.flatMap((h) => h.options.map((o) => o.loss)));
  const costScale = costScaleOf(heads);
  heads.forEach((head, h) => {
    const names: string[] = [];
    for (const { option, index } of undominated(head.options)) {
      const name = `x_${h}_${index}`;
      vars.push({ h, o: index, name });
      names.push(name);
      objective.push(`${num(option.loss / scale)} ${name}`);
      budgetTerms.push(`${num(option.cost / costScale)} ${name}`);
    }
    rows.push(` one_${h}: ${names.join(' + ')} = 1`);
  });
  const grouped = groupTerms(heads, vars, groups, costScale);
  rows.push(...grouped.rows);
  budgetTerms.push(...grouped.budgetTerms);
  limit += grouped.free;
  const lp = [
    'Minimize',
    ` obj: ${objective.join(' + ')}`,
    'Subject To',
    ...rows,
    ` budget: ${budgetTerms.join(' + ')} <= ${num(limit / costScale)}`,
    'Binary',
    ` ${[...vars.map((v) => v.name), ...grouped.names].join(' ')}`,
    'End',
  ].join('\n');
  return { lp, vars };
}

/** The group variables y_s_o of `groups` (options by index: a site's heads share its choices), their links and costs. */
function groupTerms(heads: SearchHead[], vars: { h: number; o: number; name: string }[], groups: GroupCosts | undefined, costScale: number) {
  const out = { rows: [] as string[], budgetTerms: [] as string[], names: [] as string[], free: 0 };
  for (const [site, perGroup] of groups ?? []) {
    if (!(perGroup > 0)) continue;
    const of = vars.filter((v) => heads[v.h].site === site);
    if (of.length === 0) continue;
    // Every site has at least one group; only the groups beyond the first cost.
    out.free += perGroup;
    for (const o of [...new Set(of.map((v) => v.o))]) {
      const y = `y_${site}_${o}`;
      out.names.push(y);
      out.budgetTerms.push(`${num(perGroup / costScale)} ${y}`);
      for (const v of of.filter((x) => x.o === o)) out.rows.push(` g_${v.name}: ${v.name} - ${y} <= 0`);
    }
  }
  return out;
}

/** The cost of the head groups of `picks` beyond each site's first (the part `groups` adds to a plan's cost). */
export function groupCost(picks: { site: number; choice: HeadChoice }[], groups: GroupCosts | undefined): number {
  let sum = 0;
  for (const [site, perGroup] of groups ?? []) {
    const kinds = new Set(picks.filter((p) => p.site === site).map((p) => JSON.stringify(p.choice)));
    if (kinds.size > 0) sum += perGroup * (kinds.size - 1);
  }
  return sum;
}

/** The largest |cost| of any option: costs and the limit are divided by it for the solver. */
function costScaleOf(heads: SearchHead[]): number {
  return Math.max(1e-300, ...heads.flatMap((h) => h.options.map((o) => Math.abs(o.cost))));
}

/**
 * The plan of least estimated loss whose summed cost is at most `limit`. `describe` words a summed cost for the refusal
 * of a limit below the cheapest plan (e.g. "density 0.2"), and defaults to the number.
 */
export async function searchPlan(heads: SearchHead[], limit: number, describe: (cost: number) => string = String, groups?: GroupCosts): Promise<SearchResult> {
  if (heads.length === 0) throw new Error('no heads to plan');
  const cheapest = heads.reduce((a, h) => a + Math.min(...h.options.map((o) => o.cost)), 0);
  // The cheapest plan is compared with a tolerance relative to the costs, as the solver's own feasibility test is.
  const tolerance = 1e-9 * costScaleOf(heads) * heads.length;
  if (cheapest > limit + tolerance) throw new BudgetError(`${describe(limit)} is below the cheapest plan of the candidates (${describe(cheapest)})`);
  const { lp, vars } = planProgram(heads, limit, groups);
  const solver = await highs();
  const t0 = performance.now();
  const r = solver.solve(lp, { output_flag: false, mip_rel_gap: 0, mip_abs_gap: 0 });
  const solveMs = performance.now() - t0;
  // The cheapest-plan test above leaves out the groups' cost, which can make the program infeasible on its own.
  if (r.Status === 'Infeasible' && groups) throw new BudgetError(`${describe(limit)} is below the cheapest plan of the candidates with the cost of its head groups`);
  if (r.Status !== 'Optimal') throw new Error(`HiGHS did not find an optimal plan: ${r.Status}`);
  const chosen = new Map<number, number>();
  for (const v of vars) if ((r.Columns[v.name]?.Primal ?? 0) > 0.5) chosen.set(v.h, v.o);
  const picks = heads.map((head, h) => {
    const o = chosen.get(h);
    if (o === undefined) throw new Error(`HiGHS returned no option for site ${head.site} head ${head.head}`);
    const opt = head.options[o];
    return { site: head.site, head: head.head, choice: opt.choice, cost: opt.cost, loss: opt.loss };
  });
  const cost = picks.reduce((a, p) => a + p.cost, 0) + groupCost(picks, groups);
  // The solver's feasibility tolerance is absolute (1e-7 on the rescaled row); a plan over by more is a bug, not a rounding.
  if (cost > limit + 1e-6 * costScaleOf(heads)) throw new Error(`HiGHS returned a plan of cost ${describe(cost)} over the budget ${describe(limit)}`);
  return { picks, cost, loss: picks.reduce((a, p) => a + p.loss, 0), status: r.Status, solveMs };
}
