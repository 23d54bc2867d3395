// Decode steps (models with a KV cache): the time of one new token after chosen numbers of cached tokens, for the
// original and every variant, interleaved run by run, with the speedup over the original and its interval.
import { verdict } from '../../src/shared/bench-stats';
import { h, table } from '../dom';
import { decodeRows, hasKvCache, parsePasts } from '../logic/decode';
import { ms } from '../logic/format';
import { latencyCell, speedupCell } from '../logic/speed';
import { runForm } from './run-form';
import type { ViewContext } from './context';

export function renderDecode(root: HTMLElement, ctx: ViewContext): void {
  const session = ctx.state.session;
  if (!session?.report || !hasKvCache(session.report)) return;
  root.append(h('h3', { id: 'decode-title' }, 'Decode: one new token after a KV cache'));
  if (ctx.interactive) {
    root.append(...runForm({
      id: 'decode',
      field: { id: 'decode-pasts', label: 'Past lengths', ariaLabel: 'past lengths', value: ctx.state.ui.decodePasts, onInput: (t) => ctx.setUi({ decodePasts: t }, false) },
      button: 'Benchmark decode',
      help: 'as the CLI’s bench --decode: batch 1, one new token, the cache filled with that many tokens',
      parse: () => {
        const pasts = parsePasts(ctx.state.ui.decodePasts);
        return typeof pasts === 'string' ? { error: pasts } : pasts;
      },
      run: (pasts) => ctx.post({ type: 'benchmarkDecode', pasts }),
    }));
  }
  const d = session.decode;
  if (!d) return;
  root.append(h('p', { class: 'meta' }, `On ${d.ep}, models interleaved run by run; ${new Date(d.finishedAt).toLocaleString()}.`));
  for (const w of d.warnings) root.append(h('p', { class: 'warning' }, `⚠ ${w}`));
  const rows = d.pasts.flatMap((past) => decodeRows(d, past).map((r) => ({ ...r, past })));
  root.append(table('Latency of one decode step', ['model', 'past', 'p50 [95% CI]', 'p90', 'tokens/s', 'speedup vs original'],
    rows.map((r) => {
      const s = r.point && r.label !== 'original'
        ? speedupCell({ against: { key: 'original', label: 'original' }, reference: false, speedup: r.point.vsOriginal, attentionBound: null, modelBound: null, boundNote: null, verdict: verdict(r.point.vsOriginal) })
        : { text: '1× (reference)', verdict: 'reference', title: '' };
      return [r.label, String(r.past), latencyCell(r.point), ms(r.point?.latencyMs.p90), r.point ? r.point.tokensPerSecond.toFixed(0) : '–', h('span', { class: `speedup ${s.verdict}`, title: s.title }, s.text)];
    }), { class: 'decode', id: 'decode-table' }));
}
