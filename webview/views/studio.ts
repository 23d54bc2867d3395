// Rewrite studio: choose a rule and its parameters for all sites or some, stack steps, preview what they change before
// anything is written or run, keep the result as a variant; then benchmark, compare or export the variants.
import type { RewritePreview, RuleStep } from '../../src/protocol';
import { RULE_DECLS } from '../../src/shared/rule-decls';
import { commandLine, stepFlags, stepLabel, stepsLabel } from '../../src/shared/rule-steps';
import { h, table } from '../dom';
import { CHANGE_COLUMNS, changeRows, flopRatioText, totalsRows } from '../logic/preview';
import { type Units, unitsOf } from '../logic/units';
import type { StudioState } from '../store';
import type { ViewContext } from './context';
import { renderStepForm, valueOf } from './step-form';

export function previewView(p: RewritePreview, caption: string, units: Units): HTMLElement {
  return h(
    'div',
    { class: 'preview' },
    table(caption, ['', 'before', 'after', 'change'], totalsRows(p, units), { class: 'totals' }),
    h('p', null, `Attention-FLOP bound: ${flopRatioText(p)} (the speedup of the attention core if its time followed its FLOPs).`),
    p.applied.length ? table('Changes per site', CHANGE_COLUMNS, changeRows(p), { class: 'changes' }) : null,
    ...p.warnings.map((w) => h('p', { class: 'warning' }, `⚠ ${w}`)),
  );
}

function sameSteps(a: RuleStep[], b: RuleStep[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Where "Same from a terminal" writes: beside the model, named like an export. */
function terminalOutput(modelPath: string): string {
  return modelPath.replace(/\.onnx$/i, '') + '.rewritten.onnx';
}

export function renderStudio(root: HTMLElement, ctx: ViewContext): void {
  const session = ctx.state.session;
  if (!session?.report) {
    root.append(h('p', { class: 'empty' }, 'The studio opens once the model is analyzed.'));
    return;
  }
  const studio = ctx.state.ui.studio;
  // Handlers read the live state (ctx.state is a getter): the name field does not re-render as it is typed in.
  const setStudio = (patch: Partial<StudioState>, rerender = true) => ctx.setUi({ studio: { ...ctx.state.ui.studio, ...patch } }, rerender);
  root.append(h('h2', null, 'Rewrite studio'));

  if (ctx.interactive) {
    const registered = new Set(session.rules.map((r) => r.name));
    const forms = RULE_DECLS.filter((f) => registered.has(f.rule));
    if (forms.length === 0) {
      root.append(h('p', { class: 'empty' }, 'No rewrite rules are registered in this build of the extension.'));
    } else {
      renderStepForm(root, ctx, forms);
    }
    const autoName = stepsLabel(studio.steps);

    const draft = session.draft && sameSteps(session.draft.steps, studio.steps) ? session.draft : null;
    root.append(
      h('section', { class: 'draft', 'aria-labelledby': 'draft-title' },
        h('h3', { id: 'draft-title' }, `Draft (${studio.steps.length} step${studio.steps.length === 1 ? '' : 's'})`),
        studio.steps.length === 0
          ? h('p', { class: 'empty' }, 'Add a step: a rule with its parameters, on all sites or some. Steps apply in order.')
          : h('ol', { class: 'steps' }, ...studio.steps.map((s, i) =>
              h('li', null, h('span', { class: 'step-label' }, stepLabel(s)), ' ', h('code', null, stepFlags(s).join(' ')), ' ',
                h('vscode-button', {
                  appearance: 'icon', 'aria-label': `remove step ${i + 1}`, title: 'Remove step',
                  on: { click: () => setStudio({ steps: ctx.state.ui.studio.steps.filter((_, j) => j !== i) }) },
                }, '✕')))),
        studio.steps.length
          ? h('p', { class: 'cli' }, 'Same from a terminal: ', h('code', { id: 'terminal-command' }, commandLine(session.modelPath, studio.steps, terminalOutput(session.modelPath))))
          : null,
        h('div', { class: 'actions' },
          h('vscode-button', { id: 'preview', disabled: studio.steps.length === 0, on: { click: () => ctx.post({ type: 'previewRewrite', steps: ctx.state.ui.studio.steps }) } }, 'Preview'),
        ),
        draft ? previewView(draft, 'What the draft changes (nothing is written until it is kept and run)', unitsOf(session.report)) : null,
        studio.steps.length
          ? h('div', { class: 'actions' },
              // Empty: the variant is named after its steps (the placeholder shows that name, and follows removals).
              h('vscode-text-field', {
                id: 'variant-label', value: studio.label, placeholder: autoName, 'aria-label': 'variant name',
                on: { input: (e) => setStudio({ label: valueOf(e) }, false), change: (e) => setStudio({ label: valueOf(e) }, false) },
              }),
              h('vscode-button', {
                id: 'keep-variant',
                on: { click: () => {
                  const cur = ctx.state.ui.studio;
                  ctx.post({ type: 'addVariant', steps: cur.steps, label: cur.label.trim() || stepsLabel(cur.steps) });
                  setStudio({ steps: [], label: '' });
                } },
              }, 'Keep as variant'),
            )
          : null,
      ),
    );
  }

  root.append(h('h3', null, `Variants (${session.variants.length})`));
  if (session.variants.length === 0) {
    root.append(h('p', { class: 'empty' }, ctx.interactive ? 'None yet: keep a draft, or run "Attention Lens: Rewrite Attention…".' : 'None.'));
    return;
  }
  const rows = session.variants.map((v) => {
    const cells: (string | HTMLElement)[] = [
      v.id,
      v.label,
      h('code', null, v.steps.map((s) => stepFlags(s).join(' ')).join(' --then ')),
      flopRatioText(v.preview),
      `${v.preview.nodesBefore} → ${v.preview.nodesAfter}`,
    ];
    if (ctx.interactive) {
      cells.push(h('span', { class: 'row-actions' },
        h('vscode-button', { appearance: 'secondary', 'aria-label': `export ${v.label}`, on: { click: () => ctx.post({ type: 'export', variant: v.id }) } }, 'Export…'),
        h('vscode-button', { appearance: 'secondary', 'aria-label': `remove ${v.label}`, on: { click: () => ctx.post({ type: 'removeVariant', id: v.id }) } }, 'Remove'),
      ));
    }
    return cells;
  });
  root.append(table('Variants of the model', ['id', 'name', 'rewrite', 'FLOP bound', 'nodes', ...(ctx.interactive ? [''] : [])], rows, { class: 'variants', id: 'variants-table' }));
  for (const v of session.variants) {
    root.append(h('details', null, h('summary', null, `What ${v.id} (${v.label}) changes`), previewView(v.preview, `${v.label}: before and after`, unitsOf(session.report))));
  }
  if (ctx.interactive) {
    root.append(h('div', { class: 'actions' },
      h('vscode-button', { id: 'run-benchmark', on: { click: () => ctx.post({ type: 'benchmark' }) } }, 'Benchmark variants'),
      h('vscode-button', { id: 'run-compare', appearance: 'secondary', on: { click: () => ctx.post({ type: 'compareAccuracy' }) } }, 'Compare accuracy'),
    ));
  }
}
