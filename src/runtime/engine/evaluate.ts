// `eval`: the task score of a causal LM on a token file (methods.md), window by window.
import { crossEntropySumNats, loadTokenFile, scoreFromNats, windowStarts } from '../measure/task-score';
import type { EvalRequest, EvalResult } from '../protocol';
import { type HostTensor, toFloat64 } from '../tensor';
import type { TaskContext } from './context';
import { prepareFeeds, signaturesOf } from './feeds';
import { runOnce } from './run-model';
import type { SessionCache } from './sessions';

export async function handleEval(req: EvalRequest, sessions: SessionCache, ctx: TaskContext): Promise<EvalResult> {
  const tokens = typeof req.tokens === 'string' ? loadTokenFile(req.tokens) : Int32Array.from(req.tokens);
  const L = req.seq ?? 512;
  const n = req.windows ?? 64;
  const batch = req.batch ?? 1;
  if (!(Number.isInteger(batch) && batch >= 1)) throw new Error(`eval: batch must be a positive integer, got ${batch}`);
  const starts = windowStarts(tokens.length, L, n);

  const opened = await sessions.get(req.model, req.settings);
  const inputs = signaturesOf(opened.session.inputMetadata, 'input');
  const outputs = signaturesOf(opened.session.outputMetadata, 'output');
  const logitsName = req.logitsOutput ?? pickLogits(outputs.map((o) => ({ name: o.name, rank: o.shape.length, dtype: o.dtype })));
  const probe = prepareFeeds(opened, { infos: req.infos, synthesis: { seq: 1 } });
  const ids = probe.infos.find((i) => i.role === 'input_ids');
  if (!ids) throw new Error(`${req.model}: no token-id input among ${inputs.map((i) => i.name).join(', ')}`);
  // Windows are fed as [batch, sequence] and logits read as [batch, sequence, vocab]; a sequence-first model would take
  // each token for a batch item of its own and still return logits of the expected shape.
  if (ids.axes?.sequence !== undefined && ids.axes.sequence !== ids.shape.length - 1) {
    throw new Error(`${req.model}: ${ids.name} is sequence-first ([${ids.shape.join(', ')}], sequence on axis ${ids.axes.sequence}); eval takes [batch, sequence] token ids`);
  }

  const t0 = performance.now();
  let nats = 0;
  let vocab = 0;
  for (let w = 0; w < starts.length; w += batch) {
    const group = starts.slice(w, w + batch);
    const idData = new BigInt64Array(group.length * L);
    group.forEach((s, b) => {
      for (let t = 0; t < L; t++) idData[b * L + t] = BigInt(tokens[s + t]);
    });
    const idTensor: HostTensor = { dtype: 'int64', dims: [group.length, L], data: idData };
    // Masks, position ids and empty KV caches come from synthesis, shaped after the given ids.
    const prepared = prepareFeeds(opened, { infos: req.infos, tensors: { [ids.name]: idTensor }, synthesis: { past: 0 } });
    const { outputs: out } = await runOnce(opened, prepared.tensors, [logitsName]);
    const logits = out[logitsName];
    vocab = logits.dims[logits.dims.length - 1];
    const expected = [group.length, L, vocab];
    if (logits.dims.length !== 3 || logits.dims[0] !== group.length || logits.dims[1] !== L) {
      throw new Error(`${req.model}: output ${logitsName} is [${logits.dims.join(',')}], expected [${expected.join(',')}]`);
    }
    const values = logits.data instanceof Float32Array || logits.data instanceof Float64Array ? logits.data : toFloat64(logits);
    group.forEach((s, b) => {
      nats += crossEntropySumNats(values.subarray(b * L * vocab, (b + 1) * L * vocab), vocab, tokens.subarray(s + 1, s + L + 1), L);
    });
    ctx.throwIfCancelled();
    ctx.progress({ phase: 'window', done: Math.min(w + batch, starts.length), total: starts.length });
  }
  return {
    ...scoreFromNats(nats, starts.length * L, starts.length, L, tokens.length),
    provider: opened.provider,
    logitsOutput: logitsName,
    elapsedMs: performance.now() - t0,
  };
}

export function pickLogits(outputs: { name: string; rank: number; dtype: string }[]): string {
  const named = outputs.find((o) => o.name === 'logits');
  if (named) return named.name;
  const candidates = outputs.filter((o) => o.rank === 3 && o.dtype.startsWith('float'));
  if (candidates.length === 1) return candidates[0].name;
  throw new Error(`cannot tell which output holds the logits (${outputs.map((o) => o.name).join(', ')}); name it with --logits`);
}
