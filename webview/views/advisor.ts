// Advisor: per-head attention plans under budgets (density, attention FLOPs or latency) (the advisor of `attention-lens plan`), found on the
// calibration data and measured by running the model, beside the uniform rules at the same densities. The frontier
// as a chart, a plan as a site × head grid of patterns, and any plan kept as a variant for Speed and Accuracy.
import type { TooltipItem } from 'chart.js';
import type { AdvisorResults } from '../../src/protocol';
import { chart, theme } from '../charts';
import { h, table } from '../dom';
import { PATTERNS, budgetText, budgetUnitOf, budgetValueText, fmtDensity, frontierSeries, mixText, parseBenchSeq, parseBudgets, planGrid, planSpeedText, planVariant } from '../logic/advisor';
import { ms, num } from '../logic/format';
import { renderCalibration } from './calibration';
import type { ViewContext } from './context';
import { runForm } from './run-form';
import { valueOf } from './step-form';

export function renderAdvisor(root: HTMLElement, ctx: ViewContext): void {
  const session = ctx.state.session;
  root.append(h('h2', null, 'Advisor: per-head plans under a budget'));
  if (!session?.report) {
    root.append(h('p', { class: 'empty' }, 'The advisor is available once the model is analyzed.'));
    return;
  }
  renderCalibration(root, ctx);
  if (ctx.interactive) renderForm(root, ctx, session.report.sites.length > 0);
  const r = session.advisor ?? null;
  if (!r || r.frontier.length === 0) {
    root.append(h('p', { class: 'empty' }, 'No plans yet. The advisor profiles every head on the calibration data (the attention kept by each candidate pattern, and the head’s importance), chooses one pattern per head under each budget, and measures the plans and the uniform rules at the same densities.'));
    return;
  }
  renderSummary(root, r);
  renderFrontier(root, r);
  renderPlan(root, ctx, r);
}

function renderForm(root: HTMLElement, ctx: ViewContext, hasSites: boolean): void {
  root.append(...runForm({
    id: 'advisor',
    field: { id: 'advisor-budgets', label: 'Budgets', ariaLabel: 'budgets', value: ctx.state.ui.advisorBudgets, onInput: (t) => ctx.setUi({ advisorBudgets: t }, false) },
    button: 'Find plans',
    disabled: !hasSites,
    help: 'densities (mean visible keys per query as a share of dense attention, causal counted as causal), e.g. 0.25; or flops=0.3 (attention FLOPs of the compute-reducing form, a share of dense or a count such as 1.5G) or latency=0.6 (a share of the dense model’s measured latency, or a time such as 12ms), as the CLI’s plan --budget takes them. The first is the plan asked for, all make the frontier. Progress and Cancel are above.',
    parse: () => {
      const ui = ctx.state.ui;
      try {
        return { budgets: parseBudgets(ui.advisorBudgets), ...(ui.advisorBench ? { benchSeq: parseBenchSeq(ui.advisorBenchSeq) } : {}) };
      } catch (e) {
        return { error: (e as Error).message };
      }
    },
    run: (v) => ctx.post({ type: 'advise', ...v }),
  }));
  root.append(h('div', { class: 'actions' },
    h('vscode-checkbox', { id: 'advisor-bench', checked: ctx.state.ui.advisorBench, on: { change: (e) => ctx.setUi({ advisorBench: Boolean((e.target as HTMLInputElement).checked) }, false) } }, 'Time the plans at'),
    h('vscode-text-field', { id: 'advisor-bench-seq', value: ctx.state.ui.advisorBenchSeq, 'aria-label': 'tokens to time the plans at', on: { input: (e) => ctx.setUi({ advisorBenchSeq: valueOf(e) }, false) } }),
    h('span', { class: 'help' }, "tokens: each plan's blocked form (heads split into groups, each computing its pattern only) against the original and the fused model, timed interleaved with the Speed tab's runs and statistics; minutes at long lengths"),
  ));
}

function renderSummary(root: HTMLElement, r: AdvisorResults): void {
  const t = r.timings;
  root.append(
    h('p', { class: 'meta', id: 'advisor-objective' }, `At ${r.lengthNote}.${r.budget ? ` Budget: ${r.budget} (the budget column is in its unit).` : ''}`),
    // The objective of a token file already says how the calibration windows were kept apart from the evaluation ones.
    h('p', { class: 'meta' }, `Score: ${r.objective}.${r.objective.includes(r.calibration) ? '' : ` Calibration: ${r.calibration}.`}`),
    h('p', { class: 'meta' }, `Profile ${num(t.profileMs / 1000, 1)} s, search ${num(t.searchMs / 1000, 1)} s, measuring ${num(t.validateMs / 1000, 1)} s${t.speedMs === undefined ? '' : `, timing ${num(t.speedMs / 1000, 1)} s`}; ${new Date(r.finishedAt).toLocaleString()}.`),
  );
  const s = r.speed;
  if (s) {
    root.append(h('p', { class: 'meta', id: 'advisor-speed' },
      `Speed: blocked plans timed with the original (${ms(s.originalMs)})${s.fusedMs === null ? ` (no fused model: ${s.fusedReason ?? 'unknown reason'})` : ` and the fused model (${ms(s.fusedMs)})`} ` +
      `in one interleaved run${s.seq === null ? ' on the inputs file' : ` at ${s.seq} tokens`}, ${s.ep}, ${s.machine}; the best dense baseline is the ${s.baseline} model` +
      `${s.otherCpuShare !== null && s.otherCpuShare > 0.1 ? `; other processes used ${Math.round(100 * s.otherCpuShare)}% of the CPU meanwhile` : ''}.`));
  }
  for (const w of r.warnings) root.append(h('p', { class: 'warning' }, `⚠ ${w}`));
}

function renderFrontier(root: HTMLElement, r: AdvisorResults): void {
  const metric = r.frontier[0].evaluation.metric;
  const series = frontierSeries(r);
  const t = theme();
  const box = h('div', { class: 'chart-box', id: 'advisor-chart' });
  root.append(h('h3', null, `Frontier: ${metric} against density (lower is better)`), box);
  const styles = ['rect', 'triangle', 'rectRot', 'star', 'crossRot'] as const;
  const datasets = series.map((s, i) => ({
    label: s.label,
    data: s.points,
    borderColor: t.series[i % t.series.length],
    backgroundColor: t.series[i % t.series.length],
    // Plans: a solid line with round points; uniform rules: dashed, each family its own marker.
    borderDash: s.kind === 'plan' ? [] : [6, 4],
    borderWidth: s.kind === 'plan' ? 3 : 1.5,
    pointStyle: s.kind === 'plan' ? 'circle' : styles[(i - 1) % styles.length],
    pointRadius: s.kind === 'plan' ? 5 : 4,
  }));
  if (r.dense) datasets.push({ label: 'original (dense)', data: [{ x: 1, y: r.dense.value, what: 'original', budget: 1 }], borderColor: t.foreground, backgroundColor: t.foreground, borderDash: [], borderWidth: 1, pointStyle: 'crossRot', pointRadius: 7 });
  chart(box, `${metric} against density: per-head plans and uniform rules`, {
    type: 'line',
    data: { datasets },
    options: {
      parsing: false,
      scales: {
        x: { type: 'linear', title: { display: true, text: 'density (share of dense attention)' }, ticks: { callback: (v: number | string) => fmtDensity(Number(v)) } },
        y: { type: 'linear', title: { display: true, text: metric } },
      },
      plugins: {
        legend: { position: 'bottom' },
        tooltip: { callbacks: { label: (item: TooltipItem<'line'>) => {
          const p = item.raw as { x: number; y: number; what: string; budget: number };
          const point = item.dataset.label === 'per-head plan' ? r.frontier.find((f) => f.budget === p.budget) : undefined;
          const speed = point ? planSpeedText(r, point) : null;
          return `${item.dataset.label}: ${num(p.y, 4)} at ${fmtDensity(p.x)} (${p.what})${speed ? `; blocked ${speed}` : ''}`;
        } } },
      },
    },
  });
  const families = [...new Set(r.baselines.map((b) => b.family))];
  root.append(table(`Frontier (${metric}; original ${r.dense ? num(r.dense.value, 4) : 'not measured'})`,
    ['budget', 'plan density', 'plan', 'plan mix', ...(r.speed ? [`blocked: p50, speedup vs ${r.speed.baseline} [95% CI]`] : []), ...families.map((f) => `uniform ${f}`)],
    [...r.frontier].sort((a, b) => a.budget - b.budget).map((f) => [
      budgetValueText(budgetUnitOf(r), f.budget), fmtDensity(f.density), num(f.evaluation.value, 4), mixText(f.mix),
      ...(r.speed ? [planSpeedText(r, f) ?? '–'] : []),
      ...families.map((fam) => {
        const b = r.baselines.find((x) => x.budget === f.budget && x.family === fam);
        if (!b) return '–';
        if (!b.evaluation || b.density === null) return h('span', { class: 'unknown', title: b.reason ?? '' }, `unknown: ${b.reason ?? 'not measured'}`);
        return `${num(b.evaluation.value, 4)} (${b.rule}, ${fmtDensity(b.density)})`;
      }),
    ]), { id: 'advisor-table' }));
}

function renderPlan(root: HTMLElement, ctx: ViewContext, r: AdvisorResults): void {
  const point = r.frontier.find((f) => f.budget === ctx.state.ui.advisorBudget) ?? r.frontier[0];
  const unit = budgetUnitOf(r);
  const density = unit.kind === 'density' ? '' : 'density ';
  root.append(h('h3', null, `The plan at ${budgetText(unit, point.budget)}: ${density}${fmtDensity(point.density)}, ${point.evaluation.metric} ${num(point.evaluation.value, 4)}`));
  const error = h('p', { class: 'error', id: 'keep-error', role: 'alert' });
  root.append(h('div', { class: 'actions' },
    h('label', { for: 'advisor-point' }, 'Plan'),
    h('vscode-dropdown', { id: 'advisor-point', on: { change: (e) => ctx.setUi({ advisorBudget: Number(valueOf(e)) }) } },
      ...r.frontier.map((f) => h('vscode-option', { value: String(f.budget), selected: f === point }, `${budgetText(unit, f.budget)} (${density}${fmtDensity(f.density)})`))),
    ctx.interactive ? h('vscode-dropdown', { id: 'keep-form', 'aria-label': 'form of the kept plan', on: { change: (e) => ctx.setUi({ advisorForm: valueOf(e) === 'blocked' ? 'blocked' : 'mask' }, false) } },
      h('vscode-option', { value: 'mask', selected: ctx.state.ui.advisorForm !== 'blocked' }, 'mask (exact, as measured)'),
      h('vscode-option', { value: 'blocked', selected: ctx.state.ui.advisorForm === 'blocked' }, 'blocked (computes less)')) : null,
    ctx.interactive ? h('vscode-button', {
      id: 'keep-plan',
      on: { click: () => {
        try {
          const v = planVariant(point, ctx.state.ui.advisorForm === 'blocked' ? 'blocked' : 'mask', unit);
          ctx.post({ type: 'addVariant', steps: v.steps, label: v.label });
        } catch (e) {
          error.textContent = (e as Error).message;
        }
      } },
    }, 'Keep as variant') : null,
    ctx.interactive ? h('span', { class: 'help' }, 'adds the plan as a variant (a plan rewrite step) for Speed, Accuracy and Export: the mask form computes what the advisor measured; the blocked form computes each group of heads with its own pattern only, for speed') : null,
  ), error);
  const grid = planGrid(r, point);
  root.append(h('p', { class: 'help' }, 'One pattern per site (rows) and query head (columns); hover a cell for its choice.'));
  root.append(h('div', { class: 'pattern-legend', id: 'plan-legend' },
    ...grid.patterns.map((p) => h('span', null, h('span', { class: `swatch ${patternClass(p)}`, 'aria-hidden': 'true' }), p))));
  const cell = (site: number, head: number, c: { choice: string; pattern: string } | null) => (c
    ? h('td', { class: `cell ${patternClass(c.pattern)}`, title: `site ${site}, head ${head}: ${c.choice}`, 'aria-label': `head ${head}: ${c.choice}` })
    : h('td', { class: 'cell pattern-other', title: `site ${site}: no head ${head}` }));
  root.append(h('table', { class: 'plan-grid', id: 'plan-grid' },
    h('caption', null, `Sites × query heads at ${budgetText(unit, point.budget)}`),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'site'), ...Array.from({ length: grid.heads }, (_, i) => h('th', { scope: 'col' }, String(i))))),
    h('tbody', null, ...grid.rows.map((row) => h('tr', null,
      h('th', { scope: 'row' }, String(row.site)),
      ...(row.note ? [h('td', { class: 'note', colspan: grid.heads }, row.note)] : row.cells.map((c, head) => cell(row.site, head, c)))))),
  ));
}

function patternClass(p: string): string {
  return (PATTERNS as readonly string[]).includes(p) ? `pattern-${p}` : 'pattern-other';
}
