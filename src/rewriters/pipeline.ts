// Applying rules to a model: load a fresh working copy (the input file is only read), analyse it, raise its ONNX opset
// when a requested rule writes nodes of a newer one (Rule.minOpset; once, before the first rule), apply each requested
// rule to its sites, check invariants after every rule, save atomically to the output path.
//
// Writing to a file, the rewrite streams: the weights it computes go to a weight store in the output's folder as they
// are made (one tensor in memory at a time), the save turns that store into the output's data file and references the
// input's data file for everything unchanged (when the output sits in the same folder). Progress is reported per site
// and per saved chunk; cancelling (a checkpoint that throws) removes whatever was half written.
import * as path from 'node:path';
import { analyzeWithSites } from '../analysis/analyze';
import { GraphBuilder, SubgraphReadError } from '../analysis/ir/builder';
import { graphProblems } from '../analysis/ir/invariants';
import { loadModel, type Model } from '../analysis/ir/load';
import { checkTarget, saveModel, type SaveOptions, type SaveResult } from '../analysis/ir/save';
import { WeightStore } from '../analysis/onnx/weight-store';
import type { WorkControl } from '../analysis/onnx/progress';
import type { AnalysisReport } from '../analysis/report/types';
import { type SequenceUnit, sequenceUnit } from '../analysis/report/units';
import { APPLIES_TO_NONE } from './applies-to-none';
import { normalizeLayouts, partlyPacked } from './layout/normalize';
import { checkNoNewConflicts, conflictsOf } from './shape-check';
import { nonStandardLayout } from './layout/standard';
import { OpsetUpgradeError, upgradeOpset, type OpsetUpgrade } from './opset/upgrade';
import { splitReason } from './plan/split-guard';
import { SITE_OPS_OPSET } from './sparse/ops';
import { getRule } from './registry';
import { shareSelections } from './prune/edit/shared-selections';
import { RuleError, type Rule, type RuleContext, type RuleResult, type SiteChange } from './rule';
import './rules';
import { convertToFloat16, type PrecisionReport } from './precision/fp16';

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
  /** What `seqLen` counts: tokens, or an image model's patches. */
  seqUnit: SequenceUnit;
  applied: AppliedRule[];
  /** Totals over all sites, before and after every rule. */
  flopsBefore: number;
  flopsAfter: number;
  bytesBefore: number;
  bytesAfter: number;
  /** Set when the model's ONNX opset was raised for the rules (also said in `warnings`). */
  opsetUpgrade?: OpsetUpgrade;
  /** Set by `precision: 'fp16'`: what the conversion changed (precision/fp16.ts). */
  precision?: PrecisionReport;
  warnings: string[];
}

export interface RewriteOptions extends WorkControl {
  seqLen?: number;
  /** How to save (rewriteModel); the weight store and progress are the pipeline's own. */
  save?: Omit<SaveOptions, 'store' | 'onProgress' | 'checkpoint'>;
  /**
   * Where computed weights are written as they are made (rewriteModel makes one next to the output). Without one
   * they stay in memory, which is what previews of small models want.
   */
  store?: WeightStore;
  /** `fp16`: after the rules, float16 weights and computation with a float32 interface (precision/fp16.ts). */
  precision?: 'fp32' | 'fp16';
}

/** Rewrites in memory and returns the edited model with its report (no file written). */
export function rewriteInMemory(input: string, requests: RuleRequest[], options: RewriteOptions = {}): { model: Model; report: RewriteReport } {
  options.onProgress?.({ phase: 'load', done: 0, total: 0, message: `loading ${path.basename(input)}` });
  return rewriteLoaded(loadModel(input), requests, options);
}

/** Rewrites a loaded model in place (it must be a working copy: nothing else may hold it). */
export function rewriteLoaded(model: Model, requests: RuleRequest[], options: RewriteOptions = {}): { model: Model; report: RewriteReport } {
  const checkpoint = options.checkpoint ?? (() => {});
  options.onProgress?.({ phase: 'analyse', done: 0, total: 0, message: 'finding attention sites' });
  const first = analyzeWithSites(model, options.seqLen !== undefined ? { seqLen: options.seqLen } : {});
  const original = first.report;
  // The analysis chooses the default (the model's own length where it is fixed); later analyses use the same.
  const seqLen = original.costSeqLen;
  const builder = new GraphBuilder(model);
  builder.store = options.store;
  builder.checkpoint = checkpoint;
  const applied: AppliedRule[] = [];
  const warnings: string[] = [];
  // Site ids stay the input's: a rule that removes or changes a site must not renumber the others for later rules.
  const idOf = new Map(original.sites.map((s) => [s.anchors.softmax ?? s.anchors.fused ?? '', s.id]));
  // The input's analysis serves the first rule (unless the opset upgrade changed the graph); each later rule sees the
  // graph as the rules before it left it.
  let current: ReturnType<typeof currentSites> | undefined = first;
  const rules = requests.map((req) => {
    const rule = getRule(req.rule);
    if (!rule) throw new RuleError(req.rule, 'no such rule');
    return rule;
  });
  // The standard-layout pass writes its nodes with SiteOps, so it needs that opset like the rules that use it.
  const splitPacked = rules.some((r) => r.editsProjections);
  const needsLayout = rules.some((r) => !r.anyLayout) && original.sites.some((s) => nonStandardLayout(s) !== null || (splitPacked && partlyPacked(s)));
  const passes: Raiser[] = needsLayout ? [...rules, { name: 'the standard-layout pass', minOpset: SITE_OPS_OPSET }] : rules;
  const opsetUpgrade = raiseOpset(builder, passes);
  if (opsetUpgrade) {
    current = undefined;
    warnings.push(upgradeNotice(opsetUpgrade, passes));
  }
  if (needsLayout) {
    const base = current ?? currentSites(model, seqLen, idOf);
    const layout = normalizeLayouts(builder, base.sites, base.report.sites, splitPacked);
    if (layout.sites.length || layout.unpacked.length) {
      const problems = graphProblems(model.graph);
      if (problems.length) throw new Error(`the standard-layout pass broke the graph: ${problems.slice(0, 5).join('; ')}`);
      current = undefined;
      warnings.push(...layout.sites.map((x) => `site ${x.id} rewritten into the standard layout first (${x.from}); exact`));
      warnings.push(...layout.unpacked.map((x) => `site ${x.id}: its packed ${x.roles} projection split into one per role first, the rest of the site kept as it is (${x.why}); exact`));
    }
    warnings.push(...layout.kept);
  }
  for (const [i, req] of requests.entries()) {
    const rule = rules[i];
    const { report, sites } = current ?? currentSites(model, seqLen, idOf);
    current = undefined;
    rule.validate(req.params, report);
    const wanted = req.sites ?? report.sites.map((s) => s.id);
    const chosen: number[] = [];
    const reasons: string[] = [];
    for (const id of wanted) {
      const site = report.sites.find((s) => s.id === id);
      if (!site) throw new RuleError(rule.name, `site ${id} does not exist (the model has sites ${report.sites.map((s) => s.id).join(', ') || 'none'})`);
      const reason = splitReason(site) ?? rule.skipReason(site, req.params, report);
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
      throw new RuleError(rule.name, `${APPLIES_TO_NONE} of the ${req.sites ? 'requested' : ''} sites`.replace('  ', ' ') + why);
    }
    checkpoint();
    const started = new Set<number>();
    const onSite = (id: number) => {
      checkpoint();
      if (started.has(id) || !chosen.includes(id)) return;
      started.add(id);
      options.onProgress?.({ phase: 'rewrite', done: started.size - 1, total: chosen.length, message: `${rule.name}: site ${id} (${started.size}/${chosen.length})` });
    };
    const conflicts = rule.editsProjections ? conflictsOf(model.graph) : undefined;
    const result = applyRule(rule, { builder, report, sites, seqLen, seqLenGiven: options.seqLen !== undefined, onSite }, chosen, req.params);
    options.onProgress?.({ phase: 'rewrite', done: chosen.length, total: chosen.length, message: `${rule.name}: done` });
    builder.sort();
    const problems = graphProblems(model.graph);
    if (problems.length) throw new Error(`rule '${rule.name}' broke the graph: ${problems.slice(0, 5).join('; ')}`);
    checkOutputsAndOpsets(model, rule.name);
    if (conflicts) checkNoNewConflicts(rule.name, conflicts, model.graph);
    applied.push({ rule: rule.name, params: req.params, sites: chosen, changes: result.changes, warnings: result.warnings });
    warnings.push(...result.warnings.map((w) => `${rule.name}: ${w}`));
  }
  let precision: PrecisionReport | undefined;
  if (options.precision === 'fp16') {
    checkpoint();
    options.onProgress?.({ phase: 'rewrite', done: 0, total: 1, message: 'converting to float16' });
    precision = convertToFloat16(builder);
    builder.sort();
    const problems = graphProblems(model.graph);
    if (problems.length) throw new Error(`the float16 conversion broke the graph: ${problems.slice(0, 5).join('; ')}`);
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
    report: {
      input: model.file, seqLen, seqUnit: sequenceUnit(original.model.inputs), applied, flopsBefore: before.flops, flopsAfter, bytesBefore: before.bytes, bytesAfter,
      ...(opsetUpgrade ? { opsetUpgrade } : {}), ...(precision ? { precision } : {}), warnings,
    },
  };
}

/**
 * Rewrites `input` into `output`. The output path is checked before the rewrite starts (a refusal must not come
 * after an hour of pruning); computed weights stream to a store that becomes the output's data file.
 */
export function rewriteModel(input: string, requests: RuleRequest[], output: string, options: RewriteOptions = {}): RewriteReport {
  const out = path.resolve(output);
  options.onProgress?.({ phase: 'load', done: 0, total: 0, message: `loading ${path.basename(input)}` });
  const model = loadModel(input);
  const save = options.save ?? {};
  const mode = save.externalData ?? 'auto';
  const target = checkTarget(model, out, save.dataFile, mode === 'external' || (mode === 'auto' && model.externalFiles.length > 0));
  // Embedded output must fit in memory as one protobuf anyway; every other output streams through the store.
  const store = options.store ?? (mode === 'embed' ? undefined : new WeightStore(target.outDir, target.dataName));
  try {
    const { report } = rewriteLoaded(model, requests, { ...options, store });
    report.output = saveModel(model, out, { ...save, store, onProgress: options.onProgress, checkpoint: options.checkpoint });
    return report;
  } finally {
    if (store && store !== options.store) store.dispose();
  }
}

/**
 * Raises the model's opset to the highest `minOpset` of the rules when it is older (undefined when nothing was done).
 * Once for the whole rewrite, before the first rule: every rule then sees, and writes, one opset.
 */
/** What raises the opset: a rule, or a pass the pipeline runs before the rules. */
type Raiser = Pick<Rule<unknown>, 'name' | 'minOpset'>;

/** A rule's edits; a value the model reads inside a subgraph, which no rewrite can redirect, is the rule's refusal. */
function applyRule(rule: Rule<unknown>, ctx: RuleContext, siteIds: number[], params: unknown): RuleResult {
  try {
    const result = rule.apply(ctx, siteIds, params);
    shareSelections(ctx.builder);
    return result;
  } catch (e) {
    if (e instanceof SubgraphReadError) throw new RuleError(rule.name, `cannot rewrite this model: ${e.message}`);
    throw e;
  }
}

function raiseOpset(builder: GraphBuilder, rules: Raiser[]): OpsetUpgrade | undefined {
  const need = Math.max(0, ...rules.map((r) => r.minOpset ?? 0));
  const have = builder.model.opsets.get('') ?? 0;
  if (need <= have) return undefined;
  try {
    return upgradeOpset(builder, need);
  } catch (e) {
    if (!(e instanceof OpsetUpgradeError)) throw e;
    const rule = rules.find((r) => (r.minOpset ?? 0) > have)!;
    throw new RuleError(rule.name, `writes ONNX opset-${need} nodes and the model declares opset ${have}; ${e.message}`);
  }
}

function upgradeNotice({ from, to, converted, irVersion }: OpsetUpgrade, rules: Raiser[]): string {
  const by = [...new Set(rules.filter((r) => (r.minOpset ?? 0) > from).map((r) => r.name))].join(', ');
  const nodes = Object.entries(converted).map(([op, n]) => `${n} ${op}`).join(', ') || 'none';
  const ir = irVersion.to !== irVersion.from ? `; IR version ${irVersion.from} -> ${irVersion.to}` : '';
  return `the model's ONNX opset was raised from ${from} to ${to} for ${by}, whose nodes need it (nodes converted: ${nodes}${ir})`;
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
