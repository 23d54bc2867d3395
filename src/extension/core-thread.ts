// The core thread: a worker_threads entry (bundled to dist/core-thread.js) that runs the analysis and the rewriters for
// the extension host (and for the CLI's rewrite, which gets progress and a clean Ctrl-C from it). It never imports
// `vscode` and never onnxruntime. Errors go back as values with a flag saying whether the user caused them (bad file,
// bad rule parameters) so the host can word its message accordingly. Long requests post progress while they run, and
// stop at their next safe point when the host sets the request's shared cancel flag; what they half wrote is removed.
// The advisor runs here too (its analysis, rewrites and MILP take seconds of CPU); its models run in the host's runtime
// worker, reached through the port that comes with the request (runtime/relay.ts).
import { tmpdir } from 'node:os';
import { dirname } from 'node:path';
import { type MessagePort, parentPort } from 'node:worker_threads';
import { analyzeModel } from '../analysis/analyze';
import { ModelError } from '../analysis/onnx/errors';
import { loadModel, type Model } from '../analysis/ir/load';
import { WeightStore } from '../analysis/onnx/weight-store';
import { flagCheckpoint, type WorkControl, type WorkProgress } from '../analysis/onnx/progress';
import { UsageError } from '../cli/args';
import { allRules } from '../rewriters/registry';
import { type RuleRequest, rewriteLoaded, rewriteModel } from '../rewriters/pipeline';
import '../rewriters/rules';
import { exposeAttentionMaps } from '../runtime/maps-model';
import { RuntimeClient, RuntimeError } from '../runtime/client';
import { portLink } from '../runtime/relay';
import type { ProgressEvent } from '../runtime/protocol';
import { type AdviceResult, AdvisorCancelled, advise } from '../orchestrate/advisor/advisor';
import { readCalibration } from '../runtime/inputs/calibration';
import type { FlopBound, RewritePreview, RuleStep } from '../protocol';
import { checkStep } from '../shared/rule-steps';
import type { CoreMessage, CoreReply, CoreRequest, CoreRequestMap } from '../cli/core-protocol';

/**
 * The rule requests the steps stand for: a step is a request, checked once more against the rule declarations (the
 * same check the host applies to the dashboard's messages), so nothing undeclared reaches a rule.
 */
function requestsOf(steps: RuleStep[]): RuleRequest[] {
  return steps.map((raw, i) => {
    const step = checkStep(raw);
    if (typeof step === 'string') throw new UsageError(`step ${i + 1}: ${step}`);
    return step;
  });
}

function modelSize(model: Model): { nodes: number; parameters: number } {
  let parameters = 0;
  for (const t of model.graph.initializers.values()) parameters += t.size;
  return { nodes: model.graph.nodes.length, parameters };
}

/**
 * A rewrite that is only looked at (preview, bounds). A model with external data is a large one: the weights the rules
 * compute go to a scratch file that is deleted afterwards, so a preview of a 7B prune does not need its gigabytes in
 * memory; small models stay in memory. It stops at the rules' safe points when cancelled, like a write.
 */
function lookAt<T>(file: string, requests: RuleRequest[], seqLen: number, control: WorkControl, use: (r: ReturnType<typeof rewriteLoaded>) => T): T {
  const model = loadModel(file);
  const store = model.externalFiles.length > 0 ? new WeightStore(tmpdir(), 'attention-lens-preview') : undefined;
  try {
    return use(rewriteLoaded(model, requests, { seqLen, store, ...control }));
  } finally {
    store?.dispose();
  }
}

function preview(file: string, steps: RuleStep[], requested: number | undefined, control: WorkControl): RewritePreview {
  const requests = requestsOf(steps);
  const before = analyzeModel(file, requested !== undefined ? { seqLen: requested } : {});
  // Without a length: the analysis's default (the model's own where it is fixed, as a ViT's patch grid).
  const seqLen = before.costSeqLen;
  return lookAt(file, requests, seqLen, control, ({ model, report }) => {
    const after = modelSize(model);
    return {
      steps,
      seqLen,
      applied: report.applied,
      flopsBefore: report.flopsBefore,
      flopsAfter: report.flopsAfter,
      bytesBefore: report.bytesBefore,
      bytesAfter: report.bytesAfter,
      nodesBefore: before.model.nodeCount,
      nodesAfter: after.nodes,
      parametersBefore: before.model.parameterCount,
      parametersAfter: after.parameters,
      warnings: report.warnings,
    };
  });
}

function bounds(file: string, variant: string, steps: RuleStep[], seqs: number[], control: WorkControl): FlopBound[] {
  const requests = requestsOf(steps);
  return seqs.map((seq) => {
    const { report } = lookAt(file, requests, seq, control, (r) => r);
    return { variant, seq, flopsBefore: report.flopsBefore, flopsAfter: report.flopsAfter };
  });
}

/** How often the advisor looks at its cancel flag: a shared flag has no event, and a run should stop within a blink. */
const CANCEL_POLL_MS = 50;

/** An AbortSignal for async work, aborted once the host sets the request's cancel flag. */
function flagSignal(cancel: SharedArrayBuffer | undefined): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  if (!cancel) return { signal: controller.signal, dispose: () => undefined };
  const flag = new Int32Array(cancel);
  const timer = setInterval(() => {
    if (Atomics.load(flag, 0) !== 0) controller.abort();
  }, CANCEL_POLL_MS);
  return { signal: controller.signal, dispose: () => clearInterval(timer) };
}

/** The advisor with its runs relayed to the host's runtime worker; the port is closed whatever happens. */
async function adviseRelayed(req: CoreRequestMap['advise']['request'], msg: CoreMessage, post: (reply: CoreReply) => void): Promise<AdviceResult> {
  const port: MessagePort | undefined = msg.runtime;
  if (!port) throw new Error('advise needs the host\'s runtime: CoreClient.request was called without one');
  const runtime = new RuntimeClient({ connect: portLink(port) });
  const cancel = flagSignal(msg.cancel);
  try {
    return await advise(runtime, req.file, { ...req.options, signal: cancel.signal, onProgress: progressPoster<ProgressEvent>(msg, post) });
  } finally {
    cancel.dispose();
    await runtime.dispose();
    port.close();
  }
}

function handle(req: CoreRequest, msg: CoreMessage, post: (reply: CoreReply) => void): unknown {
  const control = controlFor(msg, post);
  switch (req.type) {
    case 'analyze':
      return analyzeModel(req.file, { seqLen: req.seqLen });
    case 'rules':
      return allRules().map((r) => ({ name: r.name, family: r.family, summary: r.summary }));
    case 'preview':
      return preview(req.file, req.steps, req.seqLen, control);
    case 'write':
      return rewriteModel(req.file, [...requestsOf(req.steps), ...(req.requests ?? [])], req.output, {
        seqLen: req.seqLen,
        save: { externalData: req.externalData ?? 'auto', copyExternal: req.copyExternal ?? false },
        ...(req.precision ? { precision: req.precision } : {}),
        ...control,
      });
    case 'bounds':
      return bounds(req.file, req.variant, req.steps, req.seqs, control);
    case 'calibration':
      return readCalibration(req.file, req.model, req.infos);
    case 'exposeMaps': {
      const report = analyzeModel(req.file);
      const sites = report.sites.filter((s) => req.sites.includes(s.id));
      if (sites.length !== req.sites.length) throw new UsageError(`site ${req.sites.join(', ')} is not in the model (it has ${report.sites.length})`);
      const exposed = exposeAttentionMaps(req.file, sites);
      return { model: exposed.model, dir: dirname(exposed.model), sites: exposed.sites };
    }
    case 'advise':
      return adviseRelayed(req, msg, post);
  }
}

/** Progress posted at most every PROGRESS_MS, and whenever the phase changes. */
const PROGRESS_MS = 200;

function progressPoster<P extends WorkProgress | ProgressEvent>(msg: CoreMessage, post: (reply: CoreReply) => void): (p: P) => void {
  let last = 0;
  let phase = '';
  return (p: P) => {
    const now = Date.now();
    if (p.phase === phase && now - last < PROGRESS_MS && p.done < p.total) return;
    last = now;
    phase = p.phase;
    post({ id: msg.id, progress: p });
  };
}

function controlFor(msg: CoreMessage, post: (reply: CoreReply) => void): WorkControl {
  return { onProgress: progressPoster<WorkProgress>(msg, post), ...(msg.cancel ? { checkpoint: flagCheckpoint(new Int32Array(msg.cancel)) } : {}) };
}

function isUserError(e: unknown): boolean {
  return e instanceof ModelError || e instanceof UsageError || (e instanceof Error && (e as { userError?: boolean }).userError === true);
}

function failure(id: number, e: unknown): CoreReply {
  const err = e instanceof Error ? e : new Error(String(e));
  const cancelled = (e as { cancelled?: boolean }).cancelled === true || e instanceof AdvisorCancelled || (e instanceof RuntimeError && e.code === 'cancelled');
  // A runtime error (a model onnxruntime refuses, a worker that died) is raised on the host as what it is.
  const runtime = e instanceof RuntimeError ? { runtime: e.code, stack: e.workerStack ?? err.stack } : { stack: err.stack };
  return { id, ok: false, message: err.message, userError: isUserError(e), ...(cancelled ? { cancelled } : {}), ...runtime };
}

const port = parentPort;
if (!port) throw new Error('core-thread.js must run in a worker thread');
const post = (reply: CoreReply) => port.postMessage(reply);
port.on('message', (msg: CoreMessage) => {
  // Most requests are synchronous (the thread is busy until they end); the advisor awaits its runs, and other requests
  // are answered in between.
  let result: unknown;
  try {
    result = handle(msg.request, msg, post);
  } catch (e) {
    post(failure(msg.id, e));
    return;
  }
  if (!(result instanceof Promise)) {
    post({ id: msg.id, ok: true, result });
    return;
  }
  result.then((r: unknown) => post({ id: msg.id, ok: true, result: r }), (e: unknown) => post(failure(msg.id, e)));
});
