// Evaluate on real text from the dashboard: the task score (methods.md, the CLI's `eval`) of the original and of every
// variant on the calibration data's tokens, n evenly spaced windows of L tokens. No `vscode` here.
import { ORIGINAL, type EvalResults, type Variant } from '../protocol';
import { userError } from './errors';
import type { RunContext } from './runs';

export async function runEvaluation(ctx: RunContext, variants: Variant[], seq: number, windows: number): Promise<EvalResults> {
  const cal = ctx.calibration;
  if (!cal?.ids) {
    throw userError(cal ? `${cal.file} is an inputs file; evaluation needs token ids or text (choose a text file)` : 'choose a text file (or token ids) to evaluate on first');
  }
  if (cal.ids.length < seq + 1) throw userError(`${cal.file} holds ${cal.ids.length} tokens; a window of ${seq} needs ${seq + 1}`);
  const models = [{ key: ORIGINAL, label: 'original', file: Promise.resolve(ctx.modelPath) }, ...variants.map((v) => ({ key: v.id, label: v.label, file: ctx.files.get(v, ctx.signal) }))];
  const rows: EvalResults['rows'] = [];
  let ep = ctx.settings.executionProviders[0];
  let fileTokens = cal.ids.length;
  for (const [i, m] of models.entries()) {
    ctx.progress(i / models.length, `${m.label}: scoring ${windows} windows of ${seq} tokens`);
    const r = await ctx.runtime.evaluate(
      { model: await m.file, tokens: cal.ids, seq, windows, settings: { ep: ctx.settings.executionProviders }, infos: ctx.report.model.inputs },
      { signal: ctx.signal, onProgress: (p) => ctx.progress((i + p.done / Math.max(1, p.total)) / models.length, `${m.label}: window ${p.done}/${p.total}`) },
    );
    ep = r.provider.used;
    fileTokens = r.fileTokens;
    rows.push({ model: m.key, label: m.label, bitsPerToken: r.bitsPerToken, perplexity: r.perplexity, tokensScored: r.tokensScored });
  }
  return { file: cal.file, how: cal.how, windows, windowLength: seq, fileTokens, ep, rows, finishedAt: new Date().toISOString() };
}
