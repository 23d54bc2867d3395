// Accuracy: each variant against the original on the same inputs, output by output.
import { chart, theme } from '../charts';
import { h, table } from '../dom';
import { ACCURACY_COLUMNS, accuracyRows, headline } from '../logic/accuracy';
import type { AccuracyResults } from '../../src/protocol';
import { renderCalibration } from './calibration';
import type { ViewContext } from './context';
import { renderEvaluate } from './evaluate';
import { renderGeneration } from './generation';

export function renderAccuracy(root: HTMLElement, ctx: ViewContext): void {
  const session = ctx.state.session;
  root.append(h('h2', null, 'Accuracy'));
  renderCalibration(root, ctx);
  if (ctx.interactive) {
    root.append(h('div', { class: 'actions' },
      h('vscode-button', { id: 'run-compare', disabled: !session?.variants.length, on: { click: () => ctx.post({ type: 'compareAccuracy' }) } }, 'Compare accuracy'),
      h('span', { class: 'help' }, 'every output of each variant against the original, on the calibration data (or synthesized inputs of the model’s length)'),
    ));
  }
  const acc = session?.accuracy;
  if (!acc) {
    root.append(h('p', { class: 'empty' }, session?.variants.length ? 'No comparison yet.' : 'Make a variant first (Rewrite studio or "Rewrite Attention…").'));
  } else {
    renderComparison(root, acc);
  }
  renderEvaluate(root, ctx);
  renderGeneration(root, ctx);
}

function renderComparison(root: HTMLElement, acc: AccuracyResults): void {
  root.append(h('p', { class: 'meta' }, `On ${acc.ep}; inputs ${acc.inputs}; ${new Date(acc.finishedAt).toLocaleString()}.`));
  for (const w of acc.warnings) root.append(h('p', { class: 'warning' }, `⚠ ${w}`));
  const head = headline(acc);
  const box = h('div', { class: 'chart-box small', id: 'accuracy-chart' });
  root.append(h('h3', null, `${head.metric} with the original`), box);
  const t = theme();
  chart(box, `${head.metric} of each variant with the original`, {
    type: 'bar',
    data: {
      labels: head.values.map((v) => v.label),
      datasets: [{ label: head.metric, maxBarThickness: 28, data: head.values.map((v) => v.value), backgroundColor: head.values.map((_, i) => t.series[(i + 1) % t.series.length]) }],
    },
    options: { indexAxis: 'y', scales: { x: { min: 0, max: 1 } }, plugins: { legend: { display: false } } },
  });
  root.append(table('Comparison with the original, per output', ACCURACY_COLUMNS, accuracyRows(acc), { class: 'accuracy', id: 'accuracy-table' }));
  for (const v of acc.variants) {
    for (const m of v.mismatched) root.append(h('p', { class: 'warning' }, `${v.label}: ${m.name} not compared: ${m.reason}`));
    if (v.onlyInOriginal.length) root.append(h('p', { class: 'warning' }, `${v.label}: outputs only in the original: ${v.onlyInOriginal.join(', ')}`));
    if (v.onlyInVariant.length) root.append(h('p', { class: 'warning' }, `${v.label}: outputs only in the variant: ${v.onlyInVariant.join(', ')}`));
  }
}
