// Heads: per site, how much the model's output changes when each query head is zeroed (the head importance of
// methods.md), beside the cheap scores from the attention maps; and a prune-heads plan of the least important heads,
// handed to the Rewrite studio to preview and keep.
import { chart, theme } from '../charts';
import { h, table } from '../dom';
import { num, pct } from '../logic/format';
import { prunePlan, rankHeads } from '../logic/importance';
import { renderCalibration } from './calibration';
import { valueOf } from './step-form';
import type { ViewContext } from './context';

export function renderHeads(root: HTMLElement, ctx: ViewContext): void {
  const session = ctx.state.session;
  root.append(h('h2', null, 'Head importance'));
  if (!session?.report) {
    root.append(h('p', { class: 'empty' }, 'Head importance is available once the model is analyzed.'));
    return;
  }
  renderCalibration(root, ctx);
  if (ctx.interactive) {
    root.append(h('div', { class: 'actions' },
      h('vscode-button', { id: 'run-importance', disabled: session.report.sites.length === 0, on: { click: () => ctx.post({ type: 'computeImportance' }) } }, 'Compute head importance'),
      h('span', { class: 'help' }, 'zeroes each query head of every site in turn and measures how much the output changes (KL divergence for logits); one run per head and calibration set'),
    ));
  }
  const imp = session.importance;
  if (!imp || imp.sites.length === 0) {
    root.append(h('p', { class: 'empty' }, 'No head importance yet.'));
    return;
  }
  const ui = ctx.state.ui;
  const site = imp.sites.find((s) => s.site === ui.headsSite) ?? imp.sites[0];
  const change = imp.metric === 'kl' ? `KL of ${imp.output} (nats)` : `mean |Δ ${imp.output}|`;
  root.append(h('p', { class: 'meta' }, `Over ${imp.samples} calibration set(s): ${imp.inputs}; zeroing a head changes ${change}. ${new Date(imp.finishedAt).toLocaleString()}.`));
  for (const w of imp.warnings) root.append(h('p', { class: 'warning' }, `⚠ ${w}`));
  root.append(h('div', { class: 'field inline' },
    h('label', { for: 'heads-site' }, 'Site'),
    h('vscode-dropdown', { id: 'heads-site', on: { change: (e) => ctx.setUi({ headsSite: Number(valueOf(e)) }) } },
      ...imp.sites.map((s) => h('vscode-option', { value: String(s.site), selected: s.site === site.site }, `site ${s.site}`))),
  ));

  const ranked = rankHeads(site);
  const box = h('div', { class: 'chart-box small', id: 'importance-chart' });
  root.append(h('h3', null, `Site ${site.site}: output change without each head`), box);
  const t = theme();
  chart(box, `output change when each head of site ${site.site} is zeroed`, {
    type: 'bar',
    data: {
      labels: site.heads.map((x) => `head ${x.head}`),
      datasets: [{ label: change, data: site.heads.map((x) => x.outputChange), backgroundColor: site.heads.map((x) => (ranked.indexOf(x.head) < Number(ui.pruneCount) ? t.series[4] : t.series[0])) }],
    },
    options: { scales: { y: { beginAtZero: true, title: { display: true, text: change } } }, plugins: { legend: { display: false } } },
  });
  root.append(table(`Heads of site ${site.site}, least important first`, ['head', 'rank', 'output change', 'entropy (nats)', 'first-token mass', 'diagonal mass'],
    ranked.map((head, i) => {
      const x = site.heads[head];
      return [String(head), String(i + 1), num(x.outputChange, 6), num(x.entropy, 3), pct(x.firstTokenMass), pct(x.diagonalMass)];
    }), { class: 'importance', id: 'importance-table' }));

  if (!ctx.interactive) return;
  const error = h('p', { class: 'error', id: 'prune-error', role: 'alert' });
  root.append(h('div', { class: 'actions' },
    h('span', null, 'Prune the'),
    h('vscode-text-field', { id: 'prune-count', value: ui.pruneCount, 'aria-label': 'heads to prune per site', on: { input: (e) => ctx.setUi({ pruneCount: valueOf(e) }, false) } }),
    h('span', null, 'least important heads of'),
    h('vscode-dropdown', { id: 'prune-scope', on: { change: (e) => ctx.setUi({ pruneScope: valueOf(e) === 'all' ? 'all' : 'site' }, false) } },
      h('vscode-option', { value: 'site', selected: ui.pruneScope === 'site' }, `site ${site.site}`),
      h('vscode-option', { value: 'all', selected: ui.pruneScope === 'all' }, 'every site')),
    h('vscode-button', {
      id: 'prune-in-studio',
      on: { click: () => {
        const cur = ctx.state.ui;
        try {
          const heads = prunePlan(imp, Number(cur.pruneCount), cur.pruneScope === 'all' ? null : site.site);
          ctx.setUi({ tab: 'studio', studio: { ...cur.studio, rule: 'prune-heads', values: { heads } } });
        } catch (e) {
          error.textContent = (e as Error).message;
        }
      } },
    }, 'Open in the Rewrite studio'),
  ), error);
}
