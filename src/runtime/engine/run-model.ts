// `run` and `inspect`: one inference on given or synthesized inputs, and what a model takes and returns.
import type { InspectRequest, InspectResult, RunRequest, RunResult } from '../protocol';
import type { HostTensor } from '../tensor';
import type { TaskContext } from './context';
import { prepareFeeds, signaturesOf } from './feeds';
import { fromOrt, toOrt } from './ort-tensors';
import type { OpenedSession, SessionCache } from './sessions';

/** Runs a session once, returning every output (or those asked for) as host tensors, and the wall time. */
export async function runOnce(opened: OpenedSession, tensors: Record<string, HostTensor>, outputNames?: string[]): Promise<{ outputs: Record<string, HostTensor>; ms: number }> {
  const feeds = Object.fromEntries(Object.entries(tensors).map(([k, v]) => [k, toOrt(v)]));
  const names = outputNames ?? opened.session.outputNames;
  const unknown = names.filter((n) => !opened.session.outputNames.includes(n));
  if (unknown.length > 0) throw new Error(`${opened.model}: no output ${unknown.join(', ')} (outputs: ${opened.session.outputNames.join(', ')})`);
  const t0 = performance.now();
  const raw = await opened.session.run(feeds, names);
  const ms = performance.now() - t0;
  const outputs: Record<string, HostTensor> = {};
  for (const n of names) outputs[n] = fromOrt(n, raw[n]);
  return { outputs, ms };
}

export async function handleRun(req: RunRequest, sessions: SessionCache, ctx: TaskContext): Promise<RunResult> {
  const opened = await sessions.get(req.model, req.settings);
  ctx.throwIfCancelled();
  const prepared = prepareFeeds(opened, req.inputs);
  const { outputs, ms } = await runOnce(opened, prepared.tensors, req.outputNames);
  const result: RunResult = { provider: opened.provider, fed: prepared.fed, outputs, latencyMs: ms };
  if (req.returnInputs) result.inputs = prepared.tensors;
  return result;
}

export async function handleInspect(req: InspectRequest, sessions: SessionCache): Promise<InspectResult> {
  const opened = await sessions.get(req.model, req.settings);
  return {
    provider: opened.provider,
    inputs: signaturesOf(opened.session.inputMetadata, 'input'),
    outputs: signaturesOf(opened.session.outputMetadata, 'output'),
  };
}
