// Overview: the model's facts, its attention sites, and the softmaxes that are not attention (with the reason).
import { h, table } from '../dom';
import { SITE_COLUMNS, modelFacts, siteRows } from '../logic/overview';
import { positions, unitsOf } from '../logic/units';
import type { ViewContext } from './context';

export function renderOverview(root: HTMLElement, ctx: ViewContext): void {
  const session = ctx.state.session;
  const report = session?.report;
  if (!report) {
    // The failure itself is shown once, above the tabs.
    const text = !session?.analysisError ? 'Analyzing the model…' : session.analysisError === 'cancelled' ? 'The analysis was cancelled: run “Attention Lens: Analyze Model” to start it again.' : 'No analysis to show.';
    root.append(h('p', { class: 'empty' }, text));
    return;
  }
  root.append(
    h('h2', null, 'Model'),
    h('dl', { class: 'facts' }, ...modelFacts(report).flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)])),
  );
  for (const w of report.warnings) root.append(h('p', { class: 'warning' }, `⚠ ${w}`));

  root.append(h('h2', null, `Attention sites (${report.sites.length})`));
  if (report.sites.length === 0) {
    root.append(h('p', { class: 'empty' }, 'No attention blocks were found. The softmaxes below say why each was not one.'));
  } else {
    const rows = siteRows(report);
    const head = ctx.interactive ? [...SITE_COLUMNS, ''] : SITE_COLUMNS;
    const cells = rows.map((r, i) =>
      ctx.interactive
        ? [
            ...r,
            h('vscode-button', {
              appearance: 'secondary',
              'aria-label': `attention maps of site ${report.sites[i].id}`,
              on: {
                click: () => {
                  ctx.setUi({ mapsSite: report.sites[i].id, tab: 'maps' });
                },
              },
            }, 'Maps'),
          ]
        : r,
    );
    root.append(table(`Sites, numbered in graph order; FLOPs at ${positions(report.costSeqLen, unitsOf(report))}`, head, cells, { class: 'sites', id: 'sites-table' }));
  }

  root.append(h('h2', null, `Softmaxes that are not attention (${report.unmatched.length})`));
  root.append(
    report.unmatched.length === 0
      ? h('p', { class: 'empty' }, 'Every softmax in the graph belongs to an attention site.')
      : table('Unmatched softmax nodes and why', ['node', 'reason'], report.unmatched.map((u) => [u.node, u.reason]), { class: 'unmatched' }),
  );
}
