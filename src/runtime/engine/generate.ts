// `generate`: the accuracy of a variant over a generated continuation, not only over one prefill. The reference
// decodes `steps` tokens greedily after the prompt; the variant is fed the same tokens (teacher forcing) and its
// next-token distribution is compared with the reference's at every step (KL, top-1); it also decodes on its own, so
// that the first step where the two continuations part is known. Decoders with a KV cache decode one token per run
// with the cache carried from each run's outputs into the next run's inputs: the cache path of the rewrite is what
// runs. Models without a cache run the whole sequence again at every step.
import type { InputInfo } from '../../analysis/report/types';
import { agreedPrefix, argmax, klDivergence, pairCache } from '../measure/greedy';
import type { GenerateRequest, GenerateResult } from '../protocol';
import { type HostTensor, toFloat64 } from '../tensor';
import type { TaskContext } from './context';
import { prepareFeeds, signaturesOf } from './feeds';
import { pickLogits } from './evaluate';
import { runOnce } from './run-model';
import type { OpenedSession, SessionCache } from './sessions';

interface Decoder {
  opened: OpenedSession;
  infos?: InputInfo[];
  ids: InputInfo;
  logits: string;
  /** KV-cache input → the output that holds its next value; empty for a model without a cache. */
  cache: Map<string, string>;
}

function decoderOf(opened: OpenedSession, infos: InputInfo[] | undefined): Decoder {
  const probe = prepareFeeds(opened, { infos, synthesis: { seq: 1 } });
  const ids = probe.infos.find((i) => i.role === 'input_ids');
  if (!ids) throw new Error(`${opened.model}: no token-id input, so nothing to generate`);
  if (ids.axes?.sequence === 0) throw new Error(`${opened.model}: ${ids.name} is sequence-first; generation takes [batch, sequence] token ids`);
  const outputs = signaturesOf(opened.session.outputMetadata, 'output');
  const logits = pickLogits(outputs.map((o) => ({ name: o.name, rank: o.shape.length, dtype: o.dtype })));
  const pasts = probe.infos.filter((i) => i.role === 'past_key' || i.role === 'past_value').map((i) => i.name);
  let cache = new Map<string, string>();
  if (pasts.length > 0) {
    const pairs = pairCache(pasts, outputs.map((o) => o.name));
    if ('unknown' in pairs) throw new Error(`${opened.model}: ${pairs.unknown}`);
    cache = pairs;
  }
  return { opened, infos, ids, logits, cache };
}

function idTensor(input: InputInfo, ids: readonly number[]): HostTensor {
  const dims = [1, ids.length];
  return input.dtype === 'int32' ? { dtype: 'int32', dims, data: Int32Array.from(ids) } : { dtype: 'int64', dims, data: BigInt64Array.from(ids, (v) => BigInt(v)) };
}

/** The logits of the last position, as float64. */
function lastRow(t: HostTensor): Float64Array {
  const vocab = t.dims[t.dims.length - 1];
  const values = toFloat64(t);
  return values.subarray(values.length - vocab);
}

/**
 * `steps` greedy steps after `prompt`; with `forced`, token i fed back is forced[i] instead of the model's own choice.
 * Returns the chosen tokens and the logit row each step chose from.
 */
async function decode(d: Decoder, prompt: number[], steps: number, forced: number[] | null, ctx: TaskContext, tick: () => void) {
  const tokens: number[] = [];
  const rows: Float64Array[] = [];
  let fed = prompt;
  let cache: Record<string, HostTensor> = {};
  const wanted = [d.logits, ...d.cache.values()];
  for (let i = 0; i < steps; i++) {
    const tensors = { [d.ids.name]: idTensor(d.ids, fed), ...cache };
    // Masks and positions are synthesized to match: past = the cache's length, mask over past + new tokens.
    const prepared = prepareFeeds(d.opened, { infos: d.infos, tensors, synthesis: { past: 0 } });
    const { outputs } = await runOnce(d.opened, prepared.tensors, wanted);
    const row = lastRow(outputs[d.logits]);
    const next = forced ? forced[i] : argmax(row);
    rows.push(row);
    tokens.push(next);
    if (d.cache.size > 0) {
      fed = [next];
      cache = Object.fromEntries([...d.cache].map(([past, present]) => [past, outputs[present]]));
    } else {
      fed = [...fed, next];
    }
    ctx.throwIfCancelled();
    tick();
  }
  return { tokens, rows };
}

export async function handleGenerate(req: GenerateRequest, sessions: SessionCache, ctx: TaskContext): Promise<GenerateResult> {
  if (!(Number.isInteger(req.steps) && req.steps >= 1)) throw new Error(`generate: steps must be a positive integer, got ${req.steps}`);
  const a = decoderOf(await sessions.get(req.a, req.settings), req.infos);
  const b = decoderOf(await sessions.get(req.b, req.settings), req.infos);
  const prompt = req.prompt ?? syntheticPrompt(a, req.promptLength ?? 16);
  if (prompt.length === 0) throw new Error('generate: the prompt is empty');
  let done = 0;
  const total = 3 * req.steps;
  const tick = () => ctx.progress({ phase: 'decode', done: ++done, total });
  const ref = await decode(a, prompt, req.steps, null, ctx, tick);
  const forced = await decode(b, prompt, req.steps, ref.tokens, ctx, tick);
  const own = await decode(b, prompt, req.steps, null, ctx, tick);
  const perStep = ref.rows.map((row, i) => ({ kl: klDivergence(row, forced.rows[i]), top1: argmax(row) === argmax(forced.rows[i]) }));
  return {
    providerA: a.opened.provider,
    providerB: b.opened.provider,
    prompt,
    tokensA: ref.tokens,
    tokensB: own.tokens,
    agreedSteps: agreedPrefix(ref.tokens, own.tokens),
    perStep,
    top1Agreement: perStep.filter((s) => s.top1).length / perStep.length,
    meanKl: perStep.reduce((sum, s) => sum + s.kl, 0) / perStep.length,
    cachedA: a.cache.size > 0,
    cachedB: b.cache.size > 0,
  };
}

/** Token ids drawn as input synthesis draws them (seeded, within the vocabulary), when no prompt is given. */
function syntheticPrompt(d: Decoder, length: number): number[] {
  const prepared = prepareFeeds(d.opened, { infos: d.infos, synthesis: { seq: length, past: 0 } });
  return Array.from(toFloat64(prepared.tensors[d.ids.name]));
}
