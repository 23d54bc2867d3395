// Measuring a variant the way the advisor reports it (issue 10): the model is rewritten (a plan with the `plan` rule,
// a baseline with its uniform rule) into a temporary file and run.
// - A language model given a token file: bits per token, by `eval`'s own computation, on the evaluation windows; and,
//   to choose among candidate plans, the same score on the calibration windows (which no evaluation window reads).
// - Any other model: its outputs against the original's on the given inputs (`compare`): KL divergence for logits, and
//   1 − cosine otherwise, as the score to minimise.
import { join } from 'node:path';
import { rewriteModel, type RuleRequest } from '../../rewriters/pipeline';
import type { HeadPlanFile } from '../../rewriters/plan/choices';
import type { RuntimeClient } from '../../runtime/client';
import { crossEntropySumNats } from '../../runtime/measure/task-score';
import type { InputInfo } from '../../analysis/report/types';
import type { SessionSettings } from '../../runtime/protocol';
import { toFloat64 } from '../../runtime/tensor';
import { type TokenSplit, windowBatch } from './calibration';

export type Objective =
  | { kind: 'bits'; tokensFile: string; split: TokenSplit; idsInput: string; logitsOutput?: string }
  | { kind: 'outputs'; inputsFile: string };

export interface Score {
  /** What `value` is: "bits per token", "KL (nats)", "1 − cosine". Lower is better. */
  metric: string;
  value: number;
  /** For outputs: the output compared, its cosine and, for logits, top-1 agreement. */
  output?: string;
  cosine?: number;
  top1?: number | null;
  kl?: number | null;
}

export interface MeasureContext {
  client: RuntimeClient;
  model: string;
  infos: InputInfo[];
  objective: Objective;
  settings?: SessionSettings;
  signal?: AbortSignal;
  /** A fresh temporary folder for the variants. */
  dir: string;
}

let serial = 0;

/** Writes the variant of `requests` into the context's folder and returns its path. */
export function writeVariant(ctx: MeasureContext, requests: RuleRequest[], seq: number): string {
  const out = join(ctx.dir, `variant-${++serial}.onnx`);
  rewriteModel(ctx.model, requests, out, { seqLen: seq, save: { externalData: 'embed' } });
  return out;
}

export function planRequest(plan: HeadPlanFile): RuleRequest {
  return { rule: 'plan', params: { plan } };
}

/** The score on the evaluation data (eval windows, or the inputs file). */
export async function evaluationScore(ctx: MeasureContext, variant: string): Promise<Score> {
  const o = ctx.objective;
  if (o.kind === 'bits') {
    const r = await ctx.client.evaluate(
      { model: variant, tokens: o.tokensFile, seq: o.split.seq, windows: o.split.evalStarts.length, settings: ctx.settings, infos: ctx.infos, ...(o.logitsOutput ? { logitsOutput: o.logitsOutput } : {}) },
      { signal: ctx.signal },
    );
    return { metric: 'bits per token', value: r.bitsPerToken };
  }
  return outputsScore(ctx, variant);
}

/** The score on the calibration data: bits on the calibration windows, or the outputs on the inputs file. */
export async function calibrationScore(ctx: MeasureContext, variant: string): Promise<Score> {
  const o = ctx.objective;
  if (o.kind !== 'bits') return outputsScore(ctx, variant);
  const { ids, targets } = windowBatch(o.split, o.split.calibrationStarts);
  const r = await ctx.client.run({ model: variant, settings: ctx.settings, inputs: { tensors: { [o.idsInput]: ids }, infos: ctx.infos } }, { signal: ctx.signal });
  const name = o.logitsOutput ?? ('logits' in r.outputs ? 'logits' : Object.keys(r.outputs)[0]);
  const logits = r.outputs[name];
  const vocab = logits.dims[logits.dims.length - 1];
  const values = logits.data instanceof Float32Array || logits.data instanceof Float64Array ? logits.data : toFloat64(logits);
  const nats = crossEntropySumNats(values, vocab, targets, targets.length);
  return { metric: 'bits per token', value: nats / targets.length / Math.LN2 };
}

async function outputsScore(ctx: MeasureContext, variant: string): Promise<Score> {
  const o = ctx.objective as Extract<Objective, { kind: 'outputs' }>;
  const r = await ctx.client.compare({ a: ctx.model, b: variant, settings: ctx.settings, inputs: { file: o.inputsFile, infos: ctx.infos } }, { signal: ctx.signal });
  const first = r.outputs[0];
  if (!first) throw new Error(`the variant's outputs cannot be compared with the original's (${r.mismatched.map((m) => `${m.name}: ${m.reason}`).join('; ') || 'no shared output'})`);
  if (first.logits) {
    return { metric: 'KL (nats)', value: first.logits.klDivergence, output: first.name, cosine: first.cosine, top1: first.logits.top1Agreement, kl: first.logits.klDivergence };
  }
  return { metric: '1 − cosine', value: 1 - first.cosine, output: first.name, cosine: first.cosine, top1: null, kl: null };
}
