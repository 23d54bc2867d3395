// The form in front of a long run: a text field (its text kept in the UI state as typed), the button that reads it and
// asks the host to run, a line of help, and an error line that says what is wrong with the text instead of posting.
import { h } from '../dom';
import { valueOf } from './step-form';

export interface RunFormOptions<T> {
  /** Names the elements: `${id}-error` for the error line, `run-${id}` for the button. */
  id: string;
  field: { id: string; label: string; ariaLabel: string; value: string; onInput: (text: string) => void };
  button: string;
  disabled?: boolean;
  help: string;
  /** The field's text read into what the run needs, or the message saying why it cannot be. */
  parse: () => T | { error: string };
  run: (value: T) => void;
}

export function runForm<T>(o: RunFormOptions<T>): HTMLElement[] {
  const error = h('p', { class: 'error', id: `${o.id}-error`, role: 'alert' });
  const click = () => {
    const v = o.parse();
    if (v && typeof v === 'object' && 'error' in v) {
      error.textContent = v.error;
      return;
    }
    error.textContent = '';
    o.run(v as T);
  };
  const f = o.field;
  return [
    h('div', { class: 'actions' },
      h('div', { class: 'field inline' }, h('label', { for: f.id }, f.label),
        h('vscode-text-field', { id: f.id, value: f.value, 'aria-label': f.ariaLabel, on: { input: (e) => f.onInput(valueOf(e)) } })),
      h('vscode-button', { id: `run-${o.id}`, disabled: o.disabled, on: { click } }, o.button),
      h('span', { class: 'help' }, o.help),
    ),
    error,
  ];
}
