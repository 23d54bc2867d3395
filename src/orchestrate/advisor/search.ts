// The advisor's search (issue 10): one choice per head minimising the summed estimated loss under one budget row or
// several, solved exactly as a 0-1 integer program by HiGHS:
//
//   minimise   Σ_h Σ_o loss(h, o) · x(h, o)
//   subject to Σ_o x(h, o) = 1                      for every head h
//              Σ_h Σ_o cost_r(h, o) · x(h, o) ≤ limit_r   for every budget row r
//              (a latency budget also pays per head group beyond a site's first: GroupCosts)
//              x(h, o) ∈ {0, 1}
//
// One formulation for every kind of budget (budget-cost.ts gives the costs and the limit): density (each head's mean
// keys per query relative to dense, over the number of heads, against the share D), attention FLOPs (each head's FLOPs
// in the blocked realisation, against F times dense attention's or a count), latency (each head's cost in the fitted
// latency model, relative to dense, against the budget less the dense model's time). One length is one row
// (`searchPlan`); the advisor at several lengths (joint.ts) holds the budget at each profiled length, one row per
// length (`searchRows`). Options another option of the same head beats on loss and on every row's cost can never be
// optimal and are left out before the model is written.
import type { HeadChoice } from '../../rewriters/plan/choices';
import { highs } from './highs';

/** A head of the program: where it is, and the options it may take. */
export interface HeadOptions<O> {
  site: number;
  head: number;
  options: O[];
}

export type SearchHead<C = HeadChoice> = HeadOptions<SearchOption<C>>;

export interface SearchOption<C = HeadChoice> {
  choice: C;
  /** What the option spends of the budget (any unit, the same for all options: see budget-cost.ts). */
  cost: number;
  loss: number;
}

/** A head of the program with several budget rows: each option spends `costs[r]` of row r. */
export type RowsHead<C = HeadChoice> = HeadOptions<RowsOption<C>>;

export interface RowsOption<C = HeadChoice> {
  choice: C;
  costs: number[];
  loss: number;
}

export interface SearchResult<C = HeadChoice> {
  /** One entry per input head, in input order. */
  picks: { site: number; head: number; choice: C; cost: number; loss: number }[];
  /** Summed cost. */
  cost: number;
  /** Summed estimated loss. */
  loss: number;
  /** HiGHS's model status and the time it took. */
  status: string;
  solveMs: number;
}

export interface RowsResult<C = HeadChoice> {
  picks: { site: number; head: number; choice: C; costs: number[]; loss: number }[];
  /** Summed cost of each row. */
  costs: number[];
  loss: number;
  status: string;
  solveMs: number;
}

/**
 * A cost per head group beyond the first of a site (a latency budget: the Gather and Concat that split a site into
 * groups of heads with one choice each), by site, in the options' cost unit. With it, the program has a binary
 * y(s, o) ≥ x(h, o) for each head h of site s and option o, and the budget row adds Σ perGroup(s)·(Σ_o y(s, o) − 1).
 * Only with one budget row (latency budgets plan one length).
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

/**
 * With several rows: the options no other option beats, i.e. none has a loss and every row's cost at most its own
 * (of two identical options, the first is kept). With one row this is `undominated`'s set.
 */
export function undominatedRows<T extends { costs: number[]; loss: number }>(options: T[]): { option: T; index: number }[] {
  if (options.every((o) => o.costs.length === 1)) {
    return undominated(options.map((o) => ({ ...o, cost: o.costs[0] }))).map(({ index }) => ({ option: options[index], index }));
  }
  const beats = (a: T, b: T) => a.loss <= b.loss && a.costs.every((c, r) => c <= b.costs[r]);
  return options
    .map((option, index) => ({ option, index }))
    .filter(({ option, index }) => !options.some((other, j) => j !== index && beats(other, option) && (!beats(option, other) || j < index)));
}

const num = (v: number) => (Number.isFinite(v) ? Number(v.toPrecision(12)).toString() : '0');

/** The integer program in CPLEX LP format, with variable x_h_o for option o (index into the head's options) of head h. */
export function planProgram<C>(heads: RowsHead<C>[], limits: number[], groups?: GroupCosts): { lp: string; vars: { h: number; o: number; name: string }[] } {
  const vars: { h: number; o: number; name: string }[] = [];
  const objective: string[] = [];
  const rows: string[] = [];
  const budgetTerms: string[][] = limits.map(() => []);
  // Losses and costs are rescaled so that the largest is 1 (each row by its own): the solver's tolerances are absolute.
  const scale = Math.max(1e-30, ...heads.flatMap((h) => h.options.map((o) => o.loss)));
  const costScales = limits.map((_, r) => costScaleOf(heads, r));
  heads.forEach((head, h) => {
    const names: string[] = [];
    for (const { option, index } of undominatedRows(head.options)) {
      const name = `x_${h}_${index}`;
      vars.push({ h, o: index, name });
      names.push(name);
      objective.push(`${num(option.loss / scale)} ${name}`);
      limits.forEach((_, r) => budgetTerms[r].push(`${num(option.costs[r] / costScales[r])} ${name}`));
    }
    rows.push(` one_${h}: ${names.join(' + ')} = 1`);
  });
  if (groups && limits.length !== 1) throw new Error('head-group costs need exactly one budget row');
  const grouped = groupTerms(heads, vars, groups, costScales[0]);
  rows.push(...grouped.rows);
  if (grouped.names.length > 0) budgetTerms[0].push(...grouped.budgetTerms);
  const rhs = limits.map((limit, r) => (r === 0 ? limit + grouped.free : limit));
  const lp = [
    'Minimize',
    ` obj: ${objective.join(' + ')}`,
    'Subject To',
    ...rows,
    ...rhs.map((limit, r) => ` budget_${r}: ${budgetTerms[r].join(' + ')} <= ${num(limit / costScales[r])}`),
    'Binary',
    ` ${[...vars.map((v) => v.name), ...grouped.names].join(' ')}`,
    'End',
  ].join('\n');
  return { lp, vars };
}

/** The group variables y_s_o of `groups` (options by index: a site's heads share its choices), their links and costs. */
function groupTerms<C>(heads: RowsHead<C>[], vars: { h: number; o: number; name: string }[], groups: GroupCosts | undefined, costScale: number) {
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
export function groupCost<C>(picks: { site: number; choice: C }[], groups: GroupCosts | undefined): number {
  let sum = 0;
  for (const [site, perGroup] of groups ?? []) {
    const kinds = new Set(picks.filter((p) => p.site === site).map((p) => JSON.stringify(p.choice)));
    if (kinds.size > 0) sum += perGroup * (kinds.size - 1);
  }
  return sum;
}

/** The largest |cost| of any option in row r: that row's costs and limit are divided by it for the solver. */
function costScaleOf<C>(heads: RowsHead<C>[], r: number): number {
  return Math.max(1e-300, ...heads.flatMap((h) => h.options.map((o) => Math.abs(o.costs[r]))));
}

/**
 * The plan of least estimated loss whose summed cost is at most `limit`. `describe` words a summed cost for the refusal
 * of a limit below the cheapest plan (e.g. "density 0.2"), and defaults to the number.
 */
export async function searchPlan<C = HeadChoice>(
  heads: SearchHead<C>[], limit: number, describe: (cost: number) => string = String, groups?: GroupCosts,
): Promise<SearchResult<C>> {
  const rowsHeads = heads.map((h) => ({ ...h, options: h.options.map((o) => ({ choice: o.choice, costs: [o.cost], loss: o.loss })) }));
  const r = await searchRows(rowsHeads, [limit], () => describe, groups);
  return { ...r, picks: r.picks.map(({ costs, ...p }) => ({ ...p, cost: costs[0] })), cost: r.costs[0] };
}

/**
 * The plan of least estimated loss whose summed cost in every row r is at most `limits[r]` (one formulation: one row is
 * `searchPlan`). `describe(r)` words row r's summed costs for the refusals.
 */
export async function searchRows<C = HeadChoice>(
  heads: RowsHead<C>[], limits: number[], describe: (row: number) => (cost: number) => string = () => String, groups?: GroupCosts,
): Promise<RowsResult<C>> {
  if (heads.length === 0) throw new Error('no heads to plan');
  if (limits.length === 0) throw new Error('no budget row');
  for (const h of heads) for (const o of h.options) if (o.costs.length !== limits.length) throw new Error(`site ${h.site} head ${h.head}: an option has ${o.costs.length} costs for ${limits.length} budget rows`);
  limits.forEach((limit, r) => {
    const cheapest = heads.reduce((a, h) => a + Math.min(...h.options.map((o) => o.costs[r])), 0);
    // The cheapest plan is compared with a tolerance relative to the costs, as the solver's own feasibility test is.
    const tolerance = 1e-9 * costScaleOf(heads, r) * heads.length;
    if (cheapest > limit + tolerance) throw new BudgetError(`${describe(r)(limit)} is below the cheapest plan of the candidates (${describe(r)(cheapest)})`);
  });
  const { lp, vars } = planProgram(heads, limits, groups);
  const solver = await highs();
  const t0 = performance.now();
  const r = solver.solve(lp, { output_flag: false, mip_rel_gap: 0, mip_abs_gap: 0 });
  const solveMs = performance.now() - t0;
  // Each row alone can be met (checked above), but with several rows no one plan may meet them all.
  // The cheapest-plan test above leaves out the groups' cost, which can make the program infeasible on its own.
  if (r.Status === 'Infeasible' && groups) throw new BudgetError(`${describe(0)(limits[0])} is below the cheapest plan of the candidates with the cost of its head groups`);
  if (r.Status === 'Infeasible') throw new BudgetError(`no plan of the candidates meets ${limits.map((l, i) => describe(i)(l)).join(' and ')} at once`);
  if (r.Status !== 'Optimal') throw new Error(`HiGHS did not find an optimal plan: ${r.Status}`);
  const chosen = new Map<number, number>();
  for (const v of vars) if ((r.Columns[v.name]?.Primal ?? 0) > 0.5) chosen.set(v.h, v.o);
  const picks = heads.map((head, h) => {
    const o = chosen.get(h);
    if (o === undefined) throw new Error(`HiGHS returned no option for site ${head.site} head ${head.head}`);
    const opt = head.options[o];
    return { site: head.site, head: head.head, choice: opt.choice, costs: opt.costs, loss: opt.loss };
  });
  const costs = limits.map((_, row) => picks.reduce((a, p) => a + p.costs[row], 0) + (row === 0 ? groupCost(picks, groups) : 0));
  // The solver's feasibility tolerance is absolute (1e-7 on the rescaled row); a plan over by more is a bug, not a rounding.
  limits.forEach((limit, row) => {
    if (costs[row] > limit + 1e-6 * costScaleOf(heads, row)) throw new Error(`HiGHS returned a plan of cost ${describe(row)(costs[row])} over the budget ${describe(row)(limit)}`);
  });
  return { picks, costs, loss: picks.reduce((a, p) => a + p.loss, 0), status: r.Status, solveMs };
}
