// Head importance from the dashboard (methods.md; orchestrate/importance.ts, the CLI's `importance`): per site and
// head, the change of the output when the head is zeroed, on the calibration data or on synthesized sets at the
// model's length. The Heads view ranks the heads and pre-fills prune-heads with the least important. No `vscode` here.
import { headImportance } from '../orchestrate/importance';
import type { ImportanceResults } from '../protocol';
import { defaultLength } from '../shared/lengths';
import { type RunContext, runInputs } from './runs';

/** Synthesized calibration sets averaged over, as the CLI's default. */
export const IMPORTANCE_SAMPLES = 4;

export async function runImportance(ctx: RunContext): Promise<ImportanceResults> {
  const length = defaultLength(ctx.report.model);
  const fed = ctx.calibration ? runInputs(ctx, length) : null;
  const r = await headImportance(ctx.runtime, ctx.modelPath, {
    ...(fed ? { source: fed.source } : { samples: IMPORTANCE_SAMPLES, synthesis: { seq: length.seq } }),
    settings: { ep: ctx.settings.executionProviders },
    signal: ctx.signal,
    onProgress: (done, total) => ctx.progress(done / total, `heads zeroed: ${done}/${total} runs`),
  });
  return {
    output: r.output,
    metric: r.metric,
    samples: r.samples,
    inputs: fed ? fed.description : `${IMPORTANCE_SAMPLES} synthesized sets: ${length.reason}`,
    sites: r.sites,
    warnings: r.warnings,
    finishedAt: new Date().toISOString(),
  };
}
