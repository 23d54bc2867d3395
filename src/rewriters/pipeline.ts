// Applying rules to a model: load a fresh working copy (the input file is only read), analyse it, apply each requested
// rule to its sites, check invariants after every rule, save atomically to the output path.
import { analyzeWithSites } from '../analysis/analyze';
import { GraphBuilder } from '../analysis/ir/builder';
import { graphProblems } from '../analysis/ir/invariants';
import { loadModel, type Model } from '../analysis/ir/load';
import { saveModel, type SaveOptions, type SaveResult } from '../analysis/ir/save';
import type { AnalysisReport } from '../analysis/report/types';
import { getRule } from './registry';
import { RuleError, type SiteChange } from './rule';
import './rules';

export interface RuleRequest {
  rule: string;
  params: unknown;
  /** Site ids (as the input's analysis numbers them); default: every site the rule applies to. */
  sites?: number[];
}

export interface AppliedRule {
  rule: string;
  params: unknown;
  sites: number[];
  changes: SiteChange[];
  warnings: string[];
}

export interface RewriteReport {
  input: string;
  output?: SaveResult;
  seqLen: number;
  applied: AppliedRule[];
  /** Totals over all sites, before and after every rule. */
  flopsBefore: number;
  flopsAfter: number;
  bytesBefore: number;
  bytesAfter: number;
  warnings: string[];
}

export interface RewriteOptions {
  seqLen?: number;
  save?: SaveOptions;
}

/** Rewrites in memory and returns the edited model with its report (no file written). */
export function rewriteInMemory(input: string, requests: RuleRequest[], options: RewriteOptions = {}): { model: Model; report: RewriteReport } {
  const seqLen = options.seqLen ?? 1024;
  const model = loadModel(input);
  const first = analyzeWithSites(model, { seqLen });
  const original = first.report;
  const builder = new GraphBuilder(model);
  const applied: AppliedRule[] = [];
  const warnings: string[] = [];
  // Site ids stay the input's: a rule that removes or changes a site must not renumber the others for later rules.
  const idOf = new Map(original.sites.map((s) => [s.anchors.softmax ?? s.anchors.fused ?? '', s.id]));
  // The input's analysis serves the first rule; each later rule sees the graph as the rules before it left it.
  let current: ReturnType<typeof currentSites> | undefined = first;
  for (const req of requests) {
    const rule = getRule(req.rule);
    if (!rule) throw new RuleError(req.rule, 'no such rule');
    const { report, sites } = current ?? currentSites(model, seqLen, idOf);
    current = undefined;
    rule.validate(req.params, report);
    const wanted = req.sites ?? report.sites.map((s) => s.id);
    const chosen: number[] = [];
    const reasons: string[] = [];
    for (const id of wanted) {
      const site = report.sites.find((s) => s.id === id);
      if (!site) throw new RuleError(rule.name, `site ${id} does not exist (the model has sites ${report.sites.map((s) => s.id).join(', ') || 'none'})`);
      const reason = rule.skipReason(site, req.params, report);
      if (reason) {
        const msg = `site ${id} skipped: ${reason}`;
        reasons.push(msg);
        if (req.sites) warnings.push(`${rule.name}: ${msg}`);
        continue;
      }
      chosen.push(id);
    }
    if (chosen.length === 0) {
      const why = reasons.length ? ` (${reasons.slice(0, 3).join('; ')}${reasons.length > 3 ? '; ...' : ''})` : '';
      throw new RuleError(rule.name, `applies to none of the ${req.sites ? 'requested' : ''} sites`.replace('  ', ' ') + why);
    }
    const result = rule.apply({ builder, report, sites, seqLen }, chosen, req.params);
    builder.sort();
    const problems = graphProblems(model.graph);
    if (problems.length) throw new Error(`rule '${rule.name}' broke the graph: ${problems.slice(0, 5).join('; ')}`);
    checkOutputsAndOpsets(model, rule.name);
    applied.push({ rule: rule.name, params: req.params, sites: chosen, changes: result.changes, warnings: result.warnings });
    warnings.push(...result.warnings.map((w) => `${rule.name}: ${w}`));
  }
  const totals = (r: AnalysisReport) => ({
    flops: r.sites.reduce((a, s) => a + (s.flops ?? 0), 0),
    bytes: r.sites.reduce((a, s) => a + (s.attnMatrixBytes ?? 0), 0),
  });
  const before = totals(original);
  // After: the original totals with each changed site's figures replaced by the last rule's `after` that touched it.
  const lastChange = new Map<number, SiteChange>();
  for (const a of applied) for (const c of a.changes) lastChange.set(c.site, c);
  let flopsAfter = 0;
  let bytesAfter = 0;
  for (const s of original.sites) {
    const c = lastChange.get(s.id);
    flopsAfter += c ? c.flopsAfter ?? 0 : s.flops ?? 0;
    bytesAfter += c ? c.bytesAfter ?? 0 : s.attnMatrixBytes ?? 0;
  }
  return {
    model,
    report: { input: model.file, seqLen, applied, flopsBefore: before.flops, flopsAfter, bytesBefore: before.bytes, bytesAfter, warnings },
  };
}

export function rewriteModel(input: string, requests: RuleRequest[], output: string, options: RewriteOptions = {}): RewriteReport {
  const { model, report } = rewriteInMemory(input, requests, options);
  report.output = saveModel(model, output, options.save);
  return report;
}

/** Analysis of the working graph with site ids mapped back to the input's numbering through their anchor nodes. */
function currentSites(model: Model, seqLen: number, idOf: Map<string, number>) {
  const { report, sites } = analyzeWithSites(model, { seqLen });
  const mapped = report.sites.map((s) => ({ ...s, id: idOf.get(s.anchors.softmax ?? s.anchors.fused ?? '') ?? s.id }));
  return { report: { ...report, sites: mapped }, sites };
}

function checkOutputsAndOpsets(model: Model, rule: string): void {
  for (const v of model.graph.outputs) {
    if (!v.producer && !v.initializer && !v.isGraphInput) throw new Error(`rule '${rule}' left graph output '${v.name}' without a producer`);
  }
  for (const n of model.graph.nodes) {
    if (!model.opsets.has(n.domain)) throw new Error(`rule '${rule}' added ${n.qualifiedOp} but did not declare an opset for domain '${n.domain}'`);
  }
}
