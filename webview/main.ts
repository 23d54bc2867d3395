// The dashboard app: a header with the model and the running work, the tabs, and the active tab's view. State comes
// from the host's messages (or from the report embedded in an exported page) and is kept with setState, so the view
// survives being hidden, shown and reloaded.
import {
  provideVSCodeDesignSystem,
  vsCodeButton,
  vsCodeCheckbox,
  vsCodeDropdown,
  vsCodeOption,
  vsCodePanelTab,
  vsCodePanelView,
  vsCodePanels,
  vsCodeProgressRing,
  vsCodeTextField,
} from '@vscode/webview-ui-toolkit';
import type { ExportedReport } from '../src/shared/report';
import { type HostMessage, TABS, type TabId, isTabId } from '../src/protocol';
import { destroyCharts } from './charts';
import { h } from './dom';
import { connect } from './host';
import { type UiState, type ViewState, initialState, persisted, reduce, restore } from './store';
import { renderAccuracy } from './views/accuracy';
import { renderAdvisor } from './views/advisor';
import type { ViewContext } from './views/context';
import { renderHeads } from './views/heads';
import { renderMaps } from './views/maps';
import { renderOverview } from './views/overview';
import { renderSpeed } from './views/speed';
import { renderStudio } from './views/studio';
import { renderTasks } from './views/tasks';

provideVSCodeDesignSystem().register(
  vsCodeButton(), vsCodeCheckbox(), vsCodeDropdown(), vsCodeOption(), vsCodePanels(), vsCodePanelTab(), vsCodePanelView(), vsCodeProgressRing(), vsCodeTextField(),
);

const TITLES: Record<TabId, string> = { overview: 'Overview', studio: 'Rewrite studio', speed: 'Speed', accuracy: 'Accuracy', maps: 'Attention maps', heads: 'Heads', advisor: 'Advisor' };
const VIEWS: Record<TabId, (root: HTMLElement, ctx: ViewContext) => void> = {
  overview: renderOverview, studio: renderStudio, speed: renderSpeed, accuracy: renderAccuracy, maps: renderMaps, heads: renderHeads, advisor: renderAdvisor,
};

const { host, report } = connect();
let state: ViewState = report ? fromReport(report) : restore(host.getState());

function fromReport(r: ExportedReport): ViewState {
  return { ...initialState(), session: r.session };
}

const app = document.getElementById('app') as HTMLElement;
const header = h('header', { class: 'top' });
const tasks = h('div', { class: 'tasks' });
const notices = h('div', { class: 'notices' });
const status = h('div', { class: 'status', role: 'status' }, tasks, notices);
const panels = h('vscode-panels', { id: 'tabs', 'aria-label': 'dashboards', activeid: `tab-${state.ui.tab}` });
const views = new Map<TabId, HTMLElement>();
for (const tab of TABS) {
  panels.append(h('vscode-panel-tab', { id: `tab-${tab}` }, TITLES[tab]));
}
for (const tab of TABS) {
  const view = h('vscode-panel-view', { id: `view-${tab}`, class: `view view-${tab}` });
  views.set(tab, view);
  panels.append(view);
}
app.append(header, status, panels);

panels.addEventListener('change', (e) => {
  if (e.target !== panels) return; // dropdowns inside the views raise `change` too
  const id = (panels as HTMLElement & { activeid?: string }).activeid ?? '';
  const tab = id.replace(/^tab-/, '');
  if (isTabId(tab) && tab !== state.ui.tab) setUi({ tab });
});

function save(): void {
  host.setState(persisted(state));
}

function setUi(patch: Partial<UiState>, rerender = true): void {
  state = { ...state, ui: { ...state.ui, ...patch } };
  save();
  if (rerender) render();
}

/**
 * A view's context. `state` is a getter: handlers that run after typing or ticking (which do not re-render) must see
 * the state as it is then, not as it was when the view was drawn.
 */
const ctx = (): ViewContext => ({
  get state() {
    return state;
  },
  interactive: host.interactive,
  post: (m) => host.post(m),
  setUi,
});

function renderHeader(): void {
  header.replaceChildren();
  const s = state.session;
  header.append(h('h1', null, s ? s.modelName : 'Attention Lens'));
  if (s) header.append(h('span', { class: 'path', title: s.modelPath }, s.modelPath));
  if (report) {
    header.append(h('p', { class: 'meta' },
      `Report exported ${new Date(report.createdAt).toLocaleString()}: variant "${report.exported.label}" written to ${report.exported.model}; it ${report.exported.check}.`));
  }
}

function renderStatus(): void {
  renderTasks(tasks, state.tasks, host.interactive ? (id) => host.post({ type: 'cancelTask', id }) : null);
  notices.replaceChildren();
  // A failed analysis is said here, above every tab, and only here: the views have nothing to show without it.
  const analysisError = state.session?.analysisError;
  if (analysisError && analysisError !== 'cancelled') {
    notices.append(h('div', { class: 'failure', role: 'alert', id: 'analysis-failure' },
      h('strong', null, 'The analysis failed: '), `${analysisError}${/[.!?]$/.test(analysisError) ? '' : '.'}`,
      host.interactive ? ' Run “Attention Lens: Analyze Model” to try again. ' : ' ',
      host.interactive ? h('vscode-button', { appearance: 'secondary', on: { click: () => host.post({ type: 'showLog' }) } }, 'Show details') : null,
    ));
  }
  state.failures.forEach((f, i) => {
    notices.append(h('div', { class: 'failure', role: 'alert' },
      h('strong', null, `${f.title} failed: `), f.message, ' ',
      h('vscode-button', { appearance: 'secondary', on: { click: () => host.post({ type: 'showLog' }) } }, 'Show details'),
      h('vscode-button', { appearance: 'icon', 'aria-label': 'dismiss', title: 'Dismiss', on: { click: () => { state = { ...state, failures: state.failures.filter((_, j) => j !== i) }; renderStatus(); } } }, '✕'),
    ));
  });
}

function render(): void {
  // Keep the keyboard where it was: views are rebuilt, so focus is restored by element id. Only while this page has
  // the focus: focusing an element of a background webview would pull the focus out of VS Code's own inputs.
  const focused = document.hasFocus() ? document.activeElement?.id : undefined;
  destroyCharts();
  renderHeader();
  renderStatus();
  const tab = state.ui.tab;
  if ((panels as HTMLElement & { activeid?: string }).activeid !== `tab-${tab}`) panels.setAttribute('activeid', `tab-${tab}`);
  for (const [id, view] of views) {
    view.replaceChildren();
    if (id === tab) VIEWS[id](view, ctx());
  }
  if (focused) document.getElementById(focused)?.focus();
}

window.addEventListener('message', (event: MessageEvent<HostMessage>) => {
  const m = event.data;
  if (!m || typeof m !== 'object' || typeof (m as { type?: unknown }).type !== 'string') return;
  state = reduce(state, m);
  save();
  if (m.type === 'didChangeTasks') renderStatus();
  else render();
});

render();
host.post({ type: 'ready' });
