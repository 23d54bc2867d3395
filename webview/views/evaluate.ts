// Evaluate on real text: the task score (bits per token, perplexity) of the original and every variant over evenly
// spaced windows of the calibration text, as the CLI's `eval` computes it.
import { defaultLength } from '../../src/shared/lengths';
import { h, table } from '../dom';
import { evalRows, unitOf } from '../logic/evaluate';
import { valueOf } from './step-form';
import type { ViewContext } from './context';

export function renderEvaluate(root: HTMLElement, ctx: ViewContext): void {
  const session = ctx.state.session;
  if (!session?.report) return;
  root.append(h('h3', { id: 'evaluate-title' }, 'Evaluate on text'));
  const seqDefault = defaultLength(session.report.model).seq;
  if (ctx.interactive) {
    const error = h('p', { class: 'error', id: 'evaluate-error', role: 'alert' });
    const field = (id: string, label: string, value: string, placeholder: string, key: 'evalSeq' | 'evalWindows') =>
      h('div', { class: 'field inline' }, h('label', { for: id }, label),
        h('vscode-text-field', { id, value, placeholder, 'aria-label': label, on: { input: (e) => ctx.setUi({ [key]: valueOf(e) }, false), change: (e) => ctx.setUi({ [key]: valueOf(e) }, false) } }));
    const run = () => {
      const ui = ctx.state.ui;
      const seq = ui.evalSeq.trim() === '' ? seqDefault : Number(ui.evalSeq);
      const windows = Number(ui.evalWindows);
      if (!Number.isInteger(seq) || seq < 1 || !Number.isInteger(windows) || windows < 1) {
        error.textContent = 'window length and windows are whole numbers ≥ 1';
        return;
      }
      error.textContent = '';
      ctx.post({ type: 'evaluate', seq, windows });
    };
    const text = session.calibration && session.calibration.kind !== 'inputs';
    root.append(h('div', { class: 'actions' },
      field('eval-seq', 'Window length', ctx.state.ui.evalSeq, String(seqDefault), 'evalSeq'),
      field('eval-windows', 'Windows', ctx.state.ui.evalWindows, '64', 'evalWindows'),
      h('vscode-button', { id: 'run-evaluate', disabled: !text, on: { click: run } }, 'Evaluate'),
      h('span', { class: 'help' }, text
        ? `scores the original and every variant on ${session.calibration!.file}: mean next-token cross-entropy over evenly spaced windows`
        : 'choose a text file (Calibration data: Choose…) to evaluate on'),
    ), error);
  }
  const e = session.evaluation;
  if (!e) return;
  root.append(h('p', { class: 'meta' },
    `${e.windows} windows of ${e.windowLength} tokens over ${e.fileTokens.toLocaleString('en-US')} tokens of ${e.file} (${e.how}), on ${e.ep}; ${new Date(e.finishedAt).toLocaleString()}.`));
  const unit = unitOf(e);
  root.append(table(`Task score on ${e.file}`, ['model', unit, 'perplexity', `change (${unit})`],
    evalRows(e).map((r) => [r.label, r.bits, r.perplexity, r.change]), { class: 'evaluation', id: 'evaluation-table' }));
}
