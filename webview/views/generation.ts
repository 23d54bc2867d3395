// Accuracy over a generated continuation (models with a KV cache): the original decodes greedily, each variant is fed
// the same tokens through its own cache and compared step by step, and decodes on its own to show where it parts.
import { h, table } from '../dom';
import { agreedText, continuation, hasKvCache } from '../logic/decode';
import { num, pct } from '../logic/format';
import { runForm } from './run-form';
import type { ViewContext } from './context';

export function renderGeneration(root: HTMLElement, ctx: ViewContext): void {
  const session = ctx.state.session;
  if (!session?.report || !hasKvCache(session.report)) return;
  root.append(h('h3', null, 'Generated continuation'));
  if (ctx.interactive) {
    root.append(...runForm({
      id: 'generation',
      field: { id: 'generation-steps', label: 'New tokens', ariaLabel: 'new tokens', value: ctx.state.ui.generationSteps, onInput: (t) => ctx.setUi({ generationSteps: t }, false) },
      button: 'Generate and compare',
      disabled: session.variants.length === 0,
      help: 'greedy decoding one token at a time through the KV cache; each variant is fed the original’s tokens and compared at every step',
      parse: () => {
        const steps = Number(ctx.state.ui.generationSteps);
        return Number.isInteger(steps) && steps >= 1 && steps <= 1024 ? steps : { error: 'new tokens: a whole number from 1 to 1024' };
      },
      run: (steps) => ctx.post({ type: 'compareGeneration', steps }),
    }));
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
