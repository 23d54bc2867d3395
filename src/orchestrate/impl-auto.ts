// `--impl auto` (issue 9): which realisation of a sparse rule is fastest depends on the execution provider and the
// length, so it is measured, not assumed. For each step whose `impl` is `auto`, every candidate realisation that is
// exactly equivalent to the rule's mask form (methods.md: same outputs within 1e-4, which the sparse tests check for
// every form) is written to a temporary model, the candidates are timed together on the target provider at the
// requested length (one runtime worker, interleaved run by run), and the fastest median wins. What was measured (median
// and 95% interval per candidate, speedup over the mask form with its interval) and what could not be measured (with
// the reason) is returned for the report.
//
// It needs a rewrite and runs, so it lives here, above the rewriters and the runtime (like head importance).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeModel } from '../analysis/analyze';
import type { AnalysisReport } from '../analysis/report/types';
import { appliesToNone } from '../rewriters/applies-to-none';
import { rewriteModel, type RewriteReport, type RuleRequest } from '../rewriters/pipeline';
import { defaultBlockRows } from '../rewriters/sparse/blocked-window';
import type { RuntimeClient } from '../runtime/client';
import { speedup, type Interval, type Speedup } from '../runtime/measure/stats';
import type { ExecutionProvider, ProgressEvent } from '../runtime/protocol';
import { IMPL_AUTO } from '../rewriters/sparse/impl-auto';
import { withReferenceLayout } from '../analysis/layout/inherit-axes';

/** One realisation of a rule: the parameters that select it (merged over the step's own). */
export interface ImplCandidate {
  label: string;
  params: Record<string, unknown>;
  /** Fuse the sites first (the `fuse` rule for the provider), so that the rule uses the fused operator's own form. */
  fuseFirst?: boolean;
}

export interface ImplTiming extends ImplCandidate {
  latencyMs: { p50: number; ci95: Interval; runs: number };
  /** Over the mask form, from the same interleaved run. */
  speedupVsMask: Speedup;
  warnings: string[];
}

export interface ImplChoice {
  /** Index of the step in the request list. */
  step: number;
  rule: string;
  seq: number;
  /** The provider asked for, and the one that ran. */
  ep: ExecutionProvider;
  ranOn: ExecutionProvider | null;
  /** The precision the candidates were written and timed in. */
  precision: 'fp32' | 'fp16';
  measured: ImplTiming[];
  notMeasured: { label: string; reason: string }[];
  chosen: ImplCandidate;
}

export interface ImplAutoOptions {
  seq: number;
  ep: ExecutionProvider;
  /**
   * The precision the rewritten model will have: candidates are written and timed in it (CUDA's flash and sparse
   * kernels run in float16 only, so a float32 timing would pick for a model that is not the one written).
   */
  precision?: 'fp32' | 'fp16';
  /** Timed rounds (every candidate once per round). Default 5. */
  runs?: number;
  warmup?: number;
  onProgress?: (message: string) => void;
}

type Params = Record<string, unknown>;
const paramsOf = (r: RuleRequest): Params => (typeof r.params === 'object' && r.params !== null ? (r.params as Params) : {});
const isAuto = (r: RuleRequest) => paramsOf(r).impl === IMPL_AUTO;

/** Block sizes worth trying for a window of W: from W/8 to 2W (the rule's default when none fits). */
const ROWS = [16, 32, 64, 128, 256];
function rowChoices(window: number): number[] {
  const fit = ROWS.filter((r) => r >= window / 8 && r <= 2 * window);
  return fit.length ? fit : [defaultBlockRows(window)];
}

/** The exact realisations of a rule's step, mask first (the reference every other is timed against). */
export function implCandidates(rule: string, params: Record<string, unknown>): ImplCandidate[] {
  const mask: ImplCandidate = { label: 'mask', params: { impl: 'mask' } };
  switch (rule) {
    case 'window': case 'sink': case 'strided': case 'power': {
      const window = Number(params.window);
      const blocked = rowChoices(window).map((rows) => ({ label: `blocked, ${rows}-row blocks`, params: { impl: 'blocked', rows } }));
      // After `fuse`: the window as GroupQueryAttention's own attribute (local_window_size), and the query blocks
      // folded into one MultiHeadAttention (sparse/fused-window.ts; on sites that were fused already, the blocked
      // candidates above are that form). Larger blocks only: the fused kernel gains from bigger products.
      const perBlock = rowChoices(window).filter((rows) => rows >= window / 2).map((rows) => ({
        label: `fused, MultiHeadAttention per ${rows}-row query block`, params: { impl: 'blocked', rows }, fuseFirst: true,
      }));
      const fused = rule === 'window' ? [{ label: 'fused, GroupQueryAttention local_window_size', params: { impl: 'blocked' }, fuseFirst: true }, ...perBlock] : [];
      return [mask, ...blocked, ...fused];
    }
    case 'neighborhood2d':
      return [mask, { label: 'blocked by patch rows', params: { impl: 'blocked' } }];
    case 'block-topk':
      return [mask, { label: `gather, ${String(params.block)}-key blocks`, params: { impl: 'gather' } }];
    default:
      return [];
  }
}

/**
 * Realisations that exist but cannot be timed here, with the reason. onnxruntime 1.29's SparseAttention (read from its
 * kernels): always causal, no attention bias, a layout of whole key blocks per head; the CPU kernel computes every
 * score and then masks, and it refuses to run unless past and present K/V are one buffer, which its kernel
 * registration never lets the graph's memory planner arrange; the CUDA kernels take head size 128 with 64-key blocks
 * in float16/bfloat16 only.
 */
function unmeasurable(rule: string, ep: ExecutionProvider): { label: string; reason: string }[] {
  if (rule === 'neighborhood2d') return [];
  const sparse = 'com.microsoft.SparseAttention';
  const exactFor = rule === 'block-topk'
    ? 'exact for block-topk only on causal sites whose mask is causal and nothing else (it takes no attention bias, so padding cannot be carried)'
    : `a layout of whole key blocks, which a ${rule === 'window' ? 'sliding window' : `${rule} pattern`} is not: never exact`;
  return [{
    label: sparse,
    reason: ep === 'cuda'
      ? `${sparse}: ${exactFor}; its CUDA kernels take head size 128, 64-key blocks and float16/bfloat16 only; not written by this tool yet (untested without a GPU)`
      : `${sparse}: ${exactFor}; onnxruntime's CPU kernel computes every score and then masks (no saving), and runs only with past and present keys bound to one buffer, which a graph cannot arrange`,
  }];
}

/**
 * Resolves every `impl: auto` step: returns the requests with the fastest realisation in its place, and what was
 * measured. Steps are resolved in order; while one is timed, later auto steps use their mask form.
 */
export function hasAutoImpl(requests: RuleRequest[]): boolean {
  return requests.some(isAuto);
}

export async function resolveAutoImpl(client: RuntimeClient, input: string, requests: RuleRequest[], o: ImplAutoOptions): Promise<{ requests: RuleRequest[]; choices: ImplChoice[] }> {
  const resolved: RuleRequest[] = requests.map((r) => ({ ...r, params: { ...paramsOf(r) } }));
  const resolvedOf = new Map(requests.map((r, i) => [r, resolved[i]]));
  const choices: ImplChoice[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'attention-lens-impl-auto-'));
  try {
    for (const [i, r] of requests.entries()) {
      if (!isAuto(r)) continue;
      const cands = implCandidates(r.rule, paramsOf(r));
      if (cands.length === 0) throw new Error(`${r.rule}: --impl ${IMPL_AUTO} applies to the sparse rules (window, sink, strided, power, neighborhood2d, block-topk)`);
      const at = resolved.findIndex((x) => x === resolvedOf.get(r));
      const choice = await timeStep(client, input, resolved, at, cands, dir, o);
      resolved[at].params = { ...paramsOf(r), ...choice.chosen.params };
      if (choice.chosen.fuseFirst) resolved.splice(at, 0, fuseStep(resolved[at], o.ep));
      choices.push({ ...choice, step: i });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { requests: resolved, choices };
}

/** What a rewrite did to each site, as text: equal for two candidates that wrote the same model. */
function whatChanged(r: RewriteReport): string {
  return JSON.stringify(r.applied.map((a) => [a.rule, a.changes.map((c) => [c.site, c.after])]));
}

/** The `fuse` step placed before a rule's step, on the same sites. */
function fuseStep(r: RuleRequest, ep: ExecutionProvider): RuleRequest {
  return { rule: 'fuse', params: { target: ep === 'cuda' ? 'cuda' : 'cpu' }, ...(r.sites ? { sites: r.sites } : {}) };
}

/**
 * Writes a candidate; one that puts `fuse` first (at `fuseAt`) on sites that are fused already is written without it
 * (the rule then acts on the operators the model has).
 */
function rewriteWithFuse(input: string, variant: RuleRequest[], fuseAt: number, path: string, o: ImplAutoOptions): RewriteReport {
  const options = { seqLen: o.seq, ...(o.precision === 'fp16' ? { precision: o.precision } : {}) };
  try {
    return rewriteModel(input, variant, path, options);
  } catch (e) {
    if (fuseAt < 0 || !appliesToNone(e, 'fuse')) throw e;
    return rewriteModel(input, variant.filter((_, j) => j !== fuseAt), path, options);
  }
}

async function timeStep(
  client: RuntimeClient, input: string, requests: RuleRequest[], step: number, cands: ImplCandidate[], dir: string, o: ImplAutoOptions,
): Promise<ImplChoice> {
  const rule = requests[step].rule;
  const notMeasured = unmeasurable(rule, o.ep);
  const models: { cand: ImplCandidate; path: string; what: string; report: AnalysisReport }[] = [];
  for (const [c, cand] of cands.entries()) {
    const variant = requests.map((r, j) => ({
      ...r,
      params: j === step ? { ...paramsOf(r), ...cand.params } : isAuto(r) ? { ...paramsOf(r), impl: 'mask' } : r.params,
    }));
    if (cand.fuseFirst) variant.splice(step, 0, fuseStep(requests[step], o.ep));
    const path = join(dir, `step${step}-candidate${c}.onnx`);
    o.onProgress?.(`${rule}: writing the ${cand.label} form`);
    let rewritten: RewriteReport;
    try {
      rewritten = rewriteWithFuse(input, variant, cand.fuseFirst ? step : -1, path, o);
    } catch (e) {
      notMeasured.push({ label: cand.label, reason: (e as Error).message });
      continue;
    }
    const warnings = rewritten.warnings;
    // Candidates that write the same sites the same way (block sizes on a fused operator's own window) are one model.
    const sameAs = models.find((m) => m.what === whatChanged(rewritten));
    if (sameAs) {
      notMeasured.push({ label: cand.label, reason: `the same rewrite as ${sameAs.cand.label}` });
      continue;
    }
    // A fast form that fell back to the mask form on every site is the mask form again: nothing new to time.
    const fellBack = warnings.filter((w) => /used the mask form/.test(w));
    if (cand.params.impl !== 'mask' && fellBack.length > 0) {
      notMeasured.push({ label: cand.label, reason: fellBack.join('; ') });
      continue;
    }
    models.push({ cand, path, what: whatChanged(rewritten), report: analyzeModel(path, { seqLen: o.seq }) });
  }
  if (models.length === 0 || models[0].cand.params.impl !== 'mask') throw new Error(`${rule}: the mask form could not be written (${notMeasured.map((n) => n.reason).join('; ')})`);
  o.onProgress?.(`${rule}: timing ${models.length} forms on ${o.ep} at ${o.seq} tokens`);
  const reference = analyzeModel(input, { seqLen: o.seq }).model.inputs;
  const r = await client.bench(
    {
      // Fed as the input model is: a fast form's own analysis may not establish a sequence-first input layout.
      models: models.map((m) => ({ path: m.path, infos: withReferenceLayout(reference, m.report.model.inputs) })),
      settings: { ep: [o.ep] },
      points: [{ seq: o.seq, past: 0 }],
      warmup: o.warmup ?? 1,
      iters: o.runs ?? 5,
      profileRuns: 0,
    },
    { onProgress: (p: ProgressEvent) => o.onProgress?.(`${rule}: ${p.phase} ${Math.round(p.done)}/${Math.round(p.total)}`) },
  );
  const mask = r.results[0];
  const measured: ImplTiming[] = r.results.map((e, k) => ({
    ...models[k].cand,
    latencyMs: { p50: e.latencyMs.p50, ci95: e.latencyMs.ci95, runs: e.latencyMs.n },
    speedupVsMask: speedup(mask.samplesMs, e.samplesMs),
    warnings: e.timingWarnings,
  }));
  const fastest = measured.reduce((a, b) => (b.latencyMs.p50 < a.latencyMs.p50 ? b : a));
  return { step, rule, seq: o.seq, ep: o.ep, ranOn: mask.ep ?? null, precision: o.precision ?? 'fp32', measured, notMeasured, chosen: { label: fastest.label, params: fastest.params } };
}
