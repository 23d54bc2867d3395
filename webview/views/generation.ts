// Accuracy over a generated continuation (models with a KV cache): the original decodes greedily, each variant is fed
// the same tokens through its own cache and compared step by step, and decodes on its own to show where it parts.
import { h, table } from '../dom';
import { agreedText, continuation, hasKvCache } from '../logic/decode';
import { num, pct } from '../logic/format';
import { valueOf } from './step-form';
import type { ViewContext } from './context';

export function renderGeneration(root: HTMLElement, ctx: ViewContext): void {
  const session = ctx.state.session;
  if (!session?.report || !hasKvCache(session.report)) return;
  root.append(h('h3', null, 'Generated continuation'));
  if (ctx.interactive) {
    const error = h('p', { class: 'error', id: 'generation-error', role: 'alert' });
    root.append(h('div', { class: 'actions' },
      h('div', { class: 'field inline' }, h('label', { for: 'generation-steps' }, 'New tokens'),
        h('vscode-text-field', { id: 'generation-steps', value: ctx.state.ui.generationSteps, 'aria-label': 'new tokens', on: { input: (e) => ctx.setUi({ generationSteps: valueOf(e) }, false) } })),
      h('vscode-button', {
        id: 'run-generation', disabled: session.variants.length === 0,
        on: { click: () => {
          const steps = Number(ctx.state.ui.generationSteps);
          if (!Number.isInteger(steps) || steps < 1 || steps > 1024) {
            error.textContent = 'new tokens: a whole number from 1 to 1024';
            return;
          }
          error.textContent = '';
          ctx.post({ type: 'compareGeneration', steps });
        } },
      }, 'Generate and compare'),
      h('span', { class: 'help' }, 'greedy decoding one token at a time through the KV cache; each variant is fed the original’s tokens and compared at every step'),
    ), error);
  }
  const g = session.generation;
  if (!g) return;
  root.append(h('p', { class: 'meta' }, `${g.steps} tokens after ${g.prompt}, on ${g.ep}; ${new Date(g.finishedAt).toLocaleString()}.`));
  root.append(table('Each variant over the original’s continuation', ['variant', 'same tokens', 'top-1 agreement', 'mean KL (nats)', 'KV cache', 'original continues', 'variant continues'],
    g.rows.map((r) => [
      r.label, agreedText(r), pct(r.top1Agreement), num(r.meanKl, 4), r.cached ? 'yes' : 'no (whole sequence per step)',
      h('code', null, continuation(r.tokensOriginal, g.pieces)), h('code', null, continuation(r.tokensVariant, g.pieces)),
    ]), { class: 'generation', id: 'generation-table' }));
}
