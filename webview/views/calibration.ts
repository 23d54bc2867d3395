// The calibration data a view runs on, and the buttons that change it: Choose… (the host's file dialog) and
// Synthesized. Shown in Accuracy, Attention maps and Heads, which all run on it.
import { h } from '../dom';
import type { ViewContext } from './context';

export function renderCalibration(root: HTMLElement, ctx: ViewContext): void {
  const session = ctx.state.session;
  if (!session) return;
  const cal = session.calibration ?? null;
  const what = cal
    ? `${cal.file} (${cal.kind === 'inputs' ? 'model inputs' : `${cal.kind === 'text' ? 'text' : 'token ids'}, ${cal.tokens?.toLocaleString('en-US')} tokens, ${cal.how}`})${cal.fromSetting ? ', from attentionLens.calibrationInputs' : ''}`
    : session.settings.calibrationInputs
      ? `${session.settings.calibrationInputs} (attentionLens.calibrationInputs; read at the next run)`
      : 'synthesized inputs';
  root.append(h('div', { class: 'calibration', id: 'calibration' },
    h('span', { class: 'calibration-label' }, 'Calibration data: '),
    h('span', { id: 'calibration-file' }, what),
    ctx.interactive ? h('vscode-button', { id: 'choose-calibration', appearance: 'secondary', on: { click: () => ctx.post({ type: 'chooseCalibration' }) } }, 'Choose…') : null,
    ctx.interactive && cal ? h('vscode-button', { id: 'clear-calibration', appearance: 'secondary', on: { click: () => ctx.post({ type: 'clearCalibration' }) } }, 'Synthesized') : null,
    ctx.interactive ? h('span', { class: 'help' }, 'text (tokenised with the tokenizer.json beside the model, or as bytes for a byte-level model), token ids, or model inputs') : null,
  ));
}
