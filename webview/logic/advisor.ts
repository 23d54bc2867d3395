// The Advisor tab's logic, without a DOM: the budgets a person types, the frontier as chart series (plans and each
// uniform family apart), the chosen plan as a site × head grid of patterns, and the studio step that keeps a plan as
// a variant.
import type { AdvisorPlanPoint, AdvisorResults, AdvisorSpeedup, RuleStep } from '../../src/protocol';
import { MAX_BUDGETS } from '../../src/protocol';
import { type Budget, describeBudget, formatBudgetValue, parseBudgetList } from '../../src/shared/budget';
import { describeHeadChoice, parseHeadPlan, planJson } from '../../src/shared/head-plan';
import { checkSteps } from '../../src/shared/rule-steps';
import { ms, ratio } from './format';

/** Densities offered as the default: an eighth, a quarter and half of dense attention. */
export const DEFAULT_BUDGETS = '0.25, 0.125, 0.5';

/**
 * Parses the budgets a person typed, with the CLI's parser (src/shared/budget.ts): "0.25, 0.125, 50%" (densities),
 * "flops=0.3, 0.2" or "latency=12ms, 20ms"; the first is the plan asked for. Densities come back as numbers (the form
 * the host has always taken), other kinds as budget records. Throws a one-line reason.
 */
export function parseBudgets(text: string): (number | Budget)[] {
  const budgets = parseBudgetList(text, MAX_BUDGETS);
  return budgets[0].kind === 'density' ? budgets.map((b) => b.value) : budgets;
}

export interface FrontierSeries {
  /** "per-head plan" or the uniform family's name. */
  label: string;
  kind: 'plan' | 'uniform';
  /** x: measured density, y: measured score; sorted by x. `what` names the point (the plan, or the rule as applied). */
  points: { x: number; y: number; what: string; budget: number }[];
}

/** Plans first, then one series per uniform family; a baseline without a measurement is left out (its reason is in the table). */
export function frontierSeries(r: AdvisorResults): FrontierSeries[] {
  const byX = (a: { x: number }, b: { x: number }) => a.x - b.x;
  const plans: FrontierSeries = {
    label: 'per-head plan',
    kind: 'plan',
    points: r.frontier.map((f) => ({ x: f.density, y: f.evaluation.value, what: mixText(f.mix), budget: f.budget })).sort(byX),
  };
  const families = [...new Set(r.baselines.map((b) => b.family))];
  const uniform = families.map((family): FrontierSeries => ({
    label: `uniform ${family}`,
    kind: 'uniform',
    points: r.baselines
      .filter((b) => b.family === family && b.evaluation !== null && b.density !== null)
      .map((b) => ({ x: b.density!, y: b.evaluation!.value, what: b.rule ?? family, budget: b.budget }))
      .sort(byX),
  }));
  return [plans, ...uniform.filter((s) => s.points.length > 0)];
}

/** "window 64 ×20, dense ×2": the choices of a plan, most used first. */
export function mixText(mix: Record<string, number>): string {
  return Object.entries(mix).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([c, n]) => `${c} ×${n}`).join(', ');
}

/** The pattern family of a choice, which colours its cell: `window 64` → window, `sink 4 + window 64` → sink. */
export function patternOf(choice: string): string {
  const t = choice.trim().toLowerCase();
  if (t.startsWith('power')) return 'power';
  return t.split(/[\s,]/)[0];
}

/** Every pattern the legend can show, in a fixed order so that a pattern keeps its colour from run to run. */
export const PATTERNS = ['dense', 'window', 'sink', 'strided', 'power', 'block-topk', 'pruned'] as const;

export interface PlanGrid {
  /** Columns: head 0 … the most heads any planned site has. */
  heads: number;
  rows: { site: number; cells: ({ choice: string; pattern: string } | null)[]; note: string | null }[];
  /** Patterns present, in PATTERNS order (others after), for the legend. */
  patterns: string[];
}

/** The plan as a site × head grid; a planned site missing from the plan, or left dense by the advisor, says so. */
export function planGrid(r: AdvisorResults, point: AdvisorPlanPoint): PlanGrid {
  const heads = Math.max(1, ...r.sites.map((s) => s.heads));
  const seen = new Set<string>();
  const rows: PlanGrid['rows'] = r.sites.map((s) => {
    const choices = point.plan.sites[s.site];
    const cells = Array.from({ length: heads }, (_, h) => {
      if (!choices || h >= choices.length) return null;
      const choice = describeHeadChoice(choices[h]);
      const pattern = patternOf(choice);
      seen.add(pattern);
      return { choice, pattern };
    });
    return { site: s.site, cells, note: choices ? null : 'not in the plan: stays as it is' };
  });
  for (const k of r.skipped) rows.push({ site: k.site, cells: Array.from({ length: heads }, () => null), note: `stays dense: ${k.reason}` });
  rows.sort((a, b) => a.site - b.site);
  const known = PATTERNS.filter((p) => seen.has(p));
  return { heads, rows, patterns: [...known, ...[...seen].filter((p) => !(PATTERNS as readonly string[]).includes(p)).sort()] };
}

/** The kind and unit of a run's budgets (a run saved before they were kept is one of densities). */
export type BudgetUnitOf = Pick<Budget, 'kind' | 'unit'>;
const DENSITY: BudgetUnitOf = { kind: 'density', unit: 'share' };

export function budgetUnitOf(r: Pick<AdvisorResults, 'budgetUnit'>): BudgetUnitOf {
  return r.budgetUnit ?? DENSITY;
}

/** A frontier point's budget in words, by its kind and unit: "density ≤ 0.25", "attention FLOPs ≤ 0.3 of dense", "latency ≤ 12 ms". */
export function budgetText(unit: BudgetUnitOf, value: number): string {
  return describeBudget({ ...unit, value });
}

/** The budget's value alone, as it is typed: "0.25", "1.5G", "12ms" (the table's budget column). */
export function budgetValueText(unit: BudgetUnitOf, value: number): string {
  return formatBudgetValue({ ...unit, value });
}

/** How a kept plan is written: `mask`, the exact form the advisor measured; `blocked`, the form that computes less. */
export type PlanForm = 'mask' | 'blocked';

/**
 * The rewrite step that keeps a frontier point's plan as a variant: the `plan` rule with the plan the advisor measured,
 * read back from its file form, in the form chosen (checked as the host checks it, so a bad plan never reaches it).
 */
export function planVariant(point: AdvisorPlanPoint, impl: PlanForm = 'mask', unit: BudgetUnitOf = DENSITY): { steps: RuleStep[]; label: string } {
  const steps = checkSteps([{ rule: 'plan', params: { plan: parseHeadPlan(planJson(point.plan)), impl } }]);
  const budget = budgetText(unit, point.budget);
  if (!steps) throw new Error(`the plan at ${budget} is not a valid plan step`);
  // Under a density budget the percentage is plainly its density; under another kind it says what it is.
  const density = `${unit.kind === 'density' ? '' : 'density '}${fmtDensity(point.density)}`;
  return { steps, label: `advisor plan, ${budget} (${density})${impl === 'blocked' ? ', blocked' : ''}` };
}

/** A density as a percentage with the precision it needs: 25%, 12.5%, 3.13%. */
export function fmtDensity(d: number): string {
  return `${Number((d * 100).toPrecision(3))}%`;
}

/** The default length the plans' blocked forms are timed at (where a sparse pattern pays off on a CPU). */
export const DEFAULT_BENCH_SEQ = '4096';

/** Reads the speed step's length: a whole number of tokens, 16 … 1,048,576. Throws a one-line reason. */
export function parseBenchSeq(text: string): number {
  const n = Number(text.trim());
  if (!(Number.isInteger(n) && n >= 16 && n <= 1 << 20)) throw new Error(`"${text}" is not a length to time at (a whole number of tokens, 16 to 1048576, e.g. 4096)`);
  return n;
}

/** "1.84× [1.79–1.90]", "≈1" when the interval contains 1, "⚠" when the interval lies above what the removed FLOPs allow. */
export function speedupText(s: AdvisorSpeedup): string {
  const text = `${ratio(s.ratio)} [${s.ci95[0].toFixed(2)}–${s.ci95[1].toFixed(2)}]`;
  if (s.verdict === 'bound-exceeded') return `⚠ ${text} (above its bound: not a win)`;
  return s.verdict === 'indistinguishable' ? `${text} ≈1` : text;
}

/** The speed of a frontier point's blocked form, for its table cell and the chart's tooltip; null when not timed. */
export function planSpeedText(r: AdvisorResults, point: AdvisorPlanPoint): string | null {
  const s = point.speed;
  if (!s || !r.speed) return null;
  return `${ms(s.latencyMs.p50)}, ${speedupText(s.vsBaseline)} vs ${r.speed.baseline}`;
}
