// `compare`: the reference and the variant on the same inputs, output by output.
import { compareTensors, type OutputComparison, type OutputMismatch } from '../measure/compare-outputs';
import type { CompareRequest, CompareResult } from '../protocol';
import type { HostTensor } from '../tensor';
import type { TaskContext } from './context';
import { prepareFeeds, signaturesOf } from './feeds';
import { runOnce } from './run-model';
import type { SessionCache } from './sessions';

export async function handleCompare(req: CompareRequest, sessions: SessionCache, ctx: TaskContext): Promise<CompareResult> {
  const a = await sessions.get(req.a, req.settings);
  ctx.throwIfCancelled();
  const b = await sessions.get(req.b, req.settings);
  ctx.throwIfCancelled();
  const prepared = prepareFeeds(a, req.inputs);

  // B gets A's tensors wherever it takes an input of that name whose fixed dims fit; a variant that changed an
  // input's shape (fewer KV heads in its cache, say) gets that input synthesized for itself, with a warning.
  const warnings = [...prepared.fed.warnings];
  const givenB: Record<string, HostTensor> = {};
  for (const sig of signaturesOf(b.session.inputMetadata, 'input')) {
    const t = prepared.tensors[sig.name];
    if (!t) continue;
    const fits = t.dims.length === sig.shape.length && sig.shape.every((d, i) => typeof d !== 'number' || d === t.dims[i]);
    if (fits && t.dtype === sig.dtype) givenB[sig.name] = t;
    else warnings.push(`${sig.name}: the variant takes ${sig.dtype}[${sig.shape.join(',')}], synthesized separately`);
  }
  const preparedB = prepareFeeds(b, { ...req.inputs, file: undefined, tensors: givenB });

  ctx.progress({ phase: 'run', done: 0, total: 2, message: req.a });
  const outA = await runOnce(a, prepared.tensors);
  ctx.throwIfCancelled();
  ctx.progress({ phase: 'run', done: 1, total: 2, message: req.b });
  const outB = await runOnce(b, preparedB.tensors);
  ctx.progress({ phase: 'run', done: 2, total: 2 });

  const outputs: OutputComparison[] = [];
  const mismatched: OutputMismatch[] = [];
  for (const name of Object.keys(outA.outputs)) {
    const tb = outB.outputs[name];
    if (!tb) continue;
    const c = compareTensors(name, outA.outputs[name], tb);
    if ('reason' in c) mismatched.push(c);
    else outputs.push(c);
    if (!('reason' in c) && c.nonFinite > 0) warnings.push(nonFiniteWarning(c));
  }
  return {
    providerA: a.provider,
    providerB: b.provider,
    fed: { ...prepared.fed, warnings },
    outputs,
    mismatched,
    onlyInA: Object.keys(outA.outputs).filter((n) => !(n in outB.outputs)),
    onlyInB: Object.keys(outB.outputs).filter((n) => !(n in outA.outputs)),
  };
}

/** Says what the figures of an output with NaN or infinite elements cover (synthesized inputs can mask every key). */
function nonFiniteWarning(c: OutputComparison): string {
  const total = c.shape.reduce((a, b) => a * b, 1);
  const what = `${c.name}: ${c.nonFinite} of ${total} elements are NaN or infinite in one model or both`;
  if (c.nonFinite === total) return `${what}; nothing could be compared (check the inputs: a mask that hides every key gives NaN)`;
  return `${what}; the differences cover the other ${total - c.nonFinite}`;
}
