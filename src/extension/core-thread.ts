// The core thread: a worker_threads entry (bundled to dist/core-thread.js) that runs the analysis and the rewriters for
// the extension host. It never imports `vscode` and never onnxruntime. Errors go back as values with a flag saying
// whether the user caused them (bad file, bad rule parameters) so the host can word its message accordingly.
import { dirname } from 'node:path';
import { parentPort } from 'node:worker_threads';
import { analyzeModel } from '../analysis/analyze';
import { ModelError } from '../analysis/onnx/errors';
import type { Model } from '../analysis/ir/load';
import { UsageError } from '../cli/args';
import { allRules } from '../rewriters/registry';
import { type RuleRequest, rewriteInMemory, rewriteModel } from '../rewriters/pipeline';
import '../rewriters/rules';
import { exposeAttentionMaps } from '../runtime/maps-model';
import type { FlopBound, RewritePreview, RuleStep } from '../protocol';
import { checkStep } from '../shared/rule-steps';
import type { CoreReply, CoreRequest } from './core-protocol';

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

function preview(file: string, steps: RuleStep[], seqLen = 1024): RewritePreview {
  const requests = requestsOf(steps);
  const before = analyzeModel(file, { seqLen });
  const { model, report } = rewriteInMemory(file, requests, { seqLen });
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
}

function bounds(file: string, variant: string, steps: RuleStep[], seqs: number[]): FlopBound[] {
  const requests = requestsOf(steps);
  return seqs.map((seq) => {
    const { report } = rewriteInMemory(file, requests, { seqLen: seq });
    return { variant, seq, flopsBefore: report.flopsBefore, flopsAfter: report.flopsAfter };
  });
}

function handle(req: CoreRequest): unknown {
  switch (req.type) {
    case 'analyze':
      return analyzeModel(req.file, { seqLen: req.seqLen });
    case 'rules':
      return allRules().map((r) => ({ name: r.name, family: r.family, summary: r.summary }));
    case 'preview':
      return preview(req.file, req.steps, req.seqLen);
    case 'write':
      return rewriteModel(req.file, requestsOf(req.steps), req.output, { seqLen: req.seqLen, save: { externalData: req.externalData ?? 'auto' } });
    case 'bounds':
      return bounds(req.file, req.variant, req.steps, req.seqs);
    case 'exposeMaps': {
      const report = analyzeModel(req.file);
      const sites = report.sites.filter((s) => req.sites.includes(s.id));
      if (sites.length !== req.sites.length) throw new UsageError(`site ${req.sites.join(', ')} is not in the model (it has ${report.sites.length})`);
      const exposed = exposeAttentionMaps(req.file, sites);
      return { model: exposed.model, dir: dirname(exposed.model), sites: exposed.sites };
    }
  }
}

function isUserError(e: unknown): boolean {
  return e instanceof ModelError || e instanceof UsageError || (e instanceof Error && (e as { userError?: boolean }).userError === true);
}

const port = parentPort;
if (!port) throw new Error('core-thread.js must run in a worker thread');
port.on('message', (msg: { id: number; request: CoreRequest }) => {
  let reply: CoreReply;
  try {
    reply = { id: msg.id, ok: true, result: handle(msg.request) };
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    reply = { id: msg.id, ok: false, message: err.message, userError: isUserError(e), stack: err.stack };
  }
  port.postMessage(reply);
});
