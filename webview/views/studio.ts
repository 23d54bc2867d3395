// Rewrite studio: choose a rule and its parameters for all sites or some, stack steps, preview what they change before
// anything is written or run, keep the result as a variant; then benchmark, compare or export the variants.
import type { RewritePreview } from '../../src/protocol';
import { h, table } from '../dom';
import { RULE_FORMS, type RuleForm, defaults, describeSteps, formErrors, labelOf, toFlags } from '../logic/rule-forms';
import { CHANGE_COLUMNS, changeRows, flopRatioText, totalsRows } from '../logic/preview';
import type { StudioState } from '../store';
import type { ViewContext } from './context';

/** Value of a toolkit form control (text field, dropdown) or a native one. */
function valueOf(e: Event): string {
  return String((e.target as HTMLInputElement).value ?? '');
}

export function previewView(p: RewritePreview, caption: string): HTMLElement {
  return h(
    'div',
    { class: 'preview' },
    table(caption, ['', 'before', 'after', 'change'], totalsRows(p), { class: 'totals' }),
    h('p', null, `Attention-FLOP bound: ${flopRatioText(p)} (the speedup of the attention core if its time followed its FLOPs).`),
    p.applied.length ? table('Changes per site', CHANGE_COLUMNS, changeRows(p), { class: 'changes' }) : null,
    ...p.warnings.map((w) => h('p', { class: 'warning' }, `⚠ ${w}`)),
  );
}

function sameSteps(a: string[][], b: string[][]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function stepForm(root: HTMLElement, ctx: ViewContext, forms: RuleForm[], studio: StudioState): void {
  const report = ctx.state.session?.report;
  const form = forms.find((f) => f.rule === studio.rule) ?? forms[0];
  const values = { ...defaults(form), ...(studio.rule === form.rule ? studio.values : {}) };
  const setStudio = (patch: Partial<StudioState>, rerender = true) => ctx.setUi({ studio: { ...ctx.state.ui.studio, ...patch } }, rerender);
  const rules = ctx.state.session?.rules ?? [];

  const ruleSelect = h(
    'vscode-dropdown',
    { id: 'rule', 'aria-label': 'rewrite rule', on: { change: (e) => setStudio({ rule: valueOf(e), values: {} }) } },
    ...forms.map((f) => h('vscode-option', { value: f.rule, selected: f.rule === form.rule }, `${f.rule}: ${f.title}`)),
  );
  const summary = rules.find((r) => r.name === form.rule)?.summary ?? '';
  const errorLine = h('p', { class: 'error', id: 'form-errors', role: 'alert' }, formErrors(form, values).join('; '));
  const fields = form.fields.map((f) => {
    const id = `field-${f.key}`;
    const onValue = (e: Event) => {
      values[f.key] = valueOf(e);
      setStudio({ rule: form.rule, values: { ...values } }, false);
      errorLine.textContent = formErrors(form, values).join('; ');
    };
    const control = f.kind === 'choice'
      ? h('vscode-dropdown', { id, 'aria-label': f.label, on: { change: onValue } }, ...(f.choices ?? []).map((c) => h('vscode-option', { value: c, selected: c === values[f.key] }, c)))
      : h('vscode-text-field', { id, value: values[f.key], 'aria-label': f.label, on: { input: onValue } });
    return h('div', { class: 'field' }, h('label', { for: id }, f.label), control, h('span', { class: 'help' }, f.help));
  });

  let siteBox: HTMLElement | null = null;
  if (form.perSite && report && report.sites.length > 0) {
    const chosen = studio.sites;
    siteBox = h(
      'fieldset',
      { class: 'sites-choice' },
      h('legend', null, 'Sites'),
      h('vscode-checkbox', { id: 'site-all', checked: chosen === null, on: { change: (e) => setStudio({ sites: (e.target as HTMLInputElement).checked ? null : [] }) } }, 'All sites'),
      ...report.sites.map((s) =>
        h(
          'vscode-checkbox',
          {
            id: `site-${s.id}`,
            checked: chosen === null || chosen.includes(s.id),
            disabled: chosen === null,
            on: {
              change: (e) => {
                const on = (e.target as HTMLInputElement).checked;
                const cur = new Set(ctx.state.ui.studio.sites ?? []);
                if (on) cur.add(s.id);
                else cur.delete(s.id);
                setStudio({ sites: [...cur].sort((a, b) => a - b) }, false);
              },
            },
          },
          `site ${s.id} (${s.kind}${s.causal ? ', causal' : ''})`,
        ),
      ),
    );
  }

  const add = h('vscode-button', {
    id: 'add-step',
    on: {
      click: () => {
        const cur = ctx.state.ui.studio;
        const vals = { ...defaults(form), ...(cur.rule === form.rule ? cur.values : {}) };
        const errors = formErrors(form, vals);
        if (errors.length) {
          errorLine.textContent = errors.join('; ');
          return;
        }
        try {
          const sites = form.perSite ? cur.sites : null;
          const flags = toFlags(form, vals, sites);
          // The name grows with the steps; the person can still edit it before keeping the variant.
          setStudio({ steps: [...cur.steps, flags], label: [cur.label, labelOf(form, vals, sites)].filter(Boolean).join(' + ') });
        } catch (e) {
          errorLine.textContent = (e as Error).message;
        }
      },
    },
  }, 'Add step');

  root.append(
    h('section', { class: 'step-form', 'aria-labelledby': 'step-form-title' },
      h('h3', { id: 'step-form-title' }, 'Rule'),
      h('div', { class: 'field' }, h('label', { for: 'rule' }, 'Rule'), ruleSelect, h('span', { class: 'help' }, summary)),
      ...fields,
      siteBox,
      errorLine,
      h('div', { class: 'actions' }, add),
    ),
  );
}

export function renderStudio(root: HTMLElement, ctx: ViewContext): void {
  const session = ctx.state.session;
  if (!session?.report) {
    root.append(h('p', { class: 'empty' }, 'The studio opens once the model is analyzed.'));
    return;
  }
  const studio = ctx.state.ui.studio;
  const setStudio = (patch: Partial<StudioState>, rerender = true) => ctx.setUi({ studio: { ...ctx.state.ui.studio, ...patch } }, rerender);
  root.append(h('h2', null, 'Rewrite studio'));

  if (ctx.interactive) {
    const registered = new Set(session.rules.map((r) => r.name));
    const forms = RULE_FORMS.filter((f) => registered.has(f.rule));
    if (forms.length === 0) {
      root.append(h('p', { class: 'empty' }, 'No rewrite rules are registered in this build of the extension.'));
    } else {
      stepForm(root, ctx, forms, studio);
    }

    const draft = session.draft && sameSteps(session.draft.steps, studio.steps) ? session.draft : null;
    root.append(
      h('section', { class: 'draft', 'aria-labelledby': 'draft-title' },
        h('h3', { id: 'draft-title' }, `Draft (${studio.steps.length} step${studio.steps.length === 1 ? '' : 's'})`),
        studio.steps.length === 0
          ? h('p', { class: 'empty' }, 'Add a step: a rule with its parameters, on all sites or some. Steps apply in order.')
          : h('ol', { class: 'steps' }, ...studio.steps.map((s, i) =>
              h('li', null, h('code', null, s.join(' ')), ' ',
                h('vscode-button', { appearance: 'icon', 'aria-label': `remove step ${i + 1}`, title: 'Remove step', on: { click: () => setStudio({ steps: studio.steps.filter((_, j) => j !== i) }) } }, '✕')))),
        studio.steps.length ? h('p', { class: 'cli' }, 'Same from a terminal: ', h('code', null, `attention-lens rewrite ${session.modelName} ${describeSteps(studio.steps)} -o OUT.onnx`)) : null,
        h('div', { class: 'actions' },
          h('vscode-button', { id: 'preview', disabled: studio.steps.length === 0, on: { click: () => ctx.post({ type: 'previewRewrite', steps: studio.steps }) } }, 'Preview'),
        ),
        draft ? previewView(draft, 'What the draft changes (nothing is written until it is kept and run)') : null,
        studio.steps.length
          ? h('div', { class: 'actions' },
              h('vscode-text-field', { id: 'variant-label', value: studio.label, placeholder: 'name (optional)', 'aria-label': 'variant name', on: { input: (e) => setStudio({ label: valueOf(e) }, false) } }),
              h('vscode-button', {
                id: 'keep-variant',
                on: { click: () => {
                  ctx.post({ type: 'addVariant', steps: studio.steps, label: ctx.state.ui.studio.label });
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
      h('code', null, describeSteps(v.steps)),
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
    root.append(h('details', null, h('summary', null, `What ${v.id} (${v.label}) changes`), previewView(v.preview, `${v.label}: before and after`)));
  }
  if (ctx.interactive) {
    root.append(h('div', { class: 'actions' },
      h('vscode-button', { id: 'run-benchmark', on: { click: () => ctx.post({ type: 'benchmark' }) } }, 'Benchmark variants'),
      h('vscode-button', { id: 'run-compare', appearance: 'secondary', on: { click: () => ctx.post({ type: 'compareAccuracy' }) } }, 'Compare accuracy'),
    ));
  }
}
