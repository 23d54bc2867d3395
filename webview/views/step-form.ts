// The Rewrite studio's step form: a rule, its fields (declared in src/shared/rule-decls.ts), the sites it applies to,
// and "Add step". Handlers read the studio's state when they run, through `ctx.state` (a live getter), never a copy
// taken at render time: typing and ticking do not re-render, so a copy would miss every change made since.
import { declOf } from '../../src/shared/rule-decls';
import type { RuleDecl } from '../../src/shared/rule-decls';
import { initialTexts, stepFromTexts, textErrors } from '../../src/shared/rule-steps';
import { interactiveChoices } from '../../src/shared/rule-fields';
import { h } from '../dom';
import type { StudioState } from '../store';
import type { ViewContext } from './context';

/** Value of a toolkit form control (text field, dropdown, checkbox) or a native one. */
export function valueOf(e: Event): string {
  return String((e.target as HTMLInputElement).value ?? '');
}

function checkedOf(e: Event): boolean {
  return Boolean((e.target as HTMLInputElement).checked);
}

/** The texts of the form: what was typed for this rule, the declared starting texts for the rest. */
export function formTexts(decl: RuleDecl, studio: StudioState): Record<string, string> {
  return { ...initialTexts(decl), ...(studio.rule === decl.rule ? studio.values : {}) };
}

export function renderStepForm(root: HTMLElement, ctx: ViewContext, forms: RuleDecl[]): void {
  const report = ctx.state.session?.report;
  const studio = (): StudioState => ctx.state.ui.studio;
  const setStudio = (patch: Partial<StudioState>, rerender = true) => ctx.setUi({ studio: { ...studio(), ...patch } }, rerender);
  const decl = forms.find((f) => f.rule === studio().rule) ?? forms[0];
  const texts = formTexts(decl, studio());
  const rules = ctx.state.session?.rules ?? [];

  const ruleSelect = h(
    'vscode-dropdown',
    { id: 'rule', 'aria-label': 'rewrite rule', on: { change: (e) => { if (declOf(valueOf(e))) setStudio({ rule: valueOf(e), values: {} }); } } },
    ...forms.map((f) => h('vscode-option', { value: f.rule, selected: f.rule === decl.rule }, `${f.rule}: ${f.title}`)),
  );
  const summary = rules.find((r) => r.name === decl.rule)?.summary ?? '';
  const errorLine = h('p', { class: 'error', id: 'form-errors', role: 'alert' }, textErrors(decl, texts).join('; '));
  const fields = decl.fields.map((f) => {
    const id = `field-${f.key}`;
    const onValue = (e: Event) => {
      const values = { ...formTexts(decl, studio()), [f.key]: valueOf(e) };
      setStudio({ rule: decl.rule, values }, false);
      errorLine.textContent = textErrors(decl, values).join('; ');
    };
    const control = f.type === 'choice'
      ? h('vscode-dropdown', { id, 'aria-label': f.label, on: { change: onValue } }, ...interactiveChoices(f).map((c) => h('vscode-option', { value: c, selected: c === texts[f.key] }, c)))
      : h('vscode-text-field', { id, value: texts[f.key], placeholder: f.example, 'aria-label': f.label, on: { input: onValue, change: onValue } });
    const dflt = f.default === undefined ? '' : ` (default ${f.default})`;
    return h('div', { class: 'field' }, h('label', { for: id }, f.label), control, h('span', { class: 'help' }, `${f.help}${dflt}`));
  });

  let siteBox: HTMLElement | null = null;
  if (decl.perSite && report && report.sites.length > 0) {
    const chosen = studio().sites;
    siteBox = h(
      'fieldset',
      { class: 'sites-choice' },
      h('legend', null, 'Sites'),
      h('vscode-checkbox', { id: 'site-all', checked: chosen === null, on: { change: (e) => setStudio({ sites: checkedOf(e) ? null : [] }) } }, 'All sites'),
      ...report.sites.map((s) =>
        h(
          'vscode-checkbox',
          {
            id: `site-${s.id}`,
            checked: chosen === null || chosen.includes(s.id),
            disabled: chosen === null,
            on: {
              change: (e) => {
                const cur = studio().sites;
                if (cur === null) return; // the boxes are disabled while "All sites" is ticked
                const next = new Set(cur);
                if (checkedOf(e)) next.add(s.id);
                else next.delete(s.id);
                setStudio({ sites: [...next].sort((a, b) => a - b) }, false);
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
        const cur = studio();
        try {
          const step = stepFromTexts(decl, formTexts(decl, cur), decl.perSite ? cur.sites : null);
          setStudio({ steps: [...cur.steps, step] });
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
