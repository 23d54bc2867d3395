// Head importance (methods.md), to choose heads to prune: per head, how much the model's output changes when that
// head's output is zeroed, averaged over calibration inputs: the KL divergence of the output distribution for logits
// (mean over positions, nats), otherwise the mean absolute difference. Next to it the cheap scores read from the
// attention maps on the same inputs: entropy, mass on the first token, mass on the diagonal.
//
// Zeroing is a model edit (rewriters/prune/head-mask.ts): one temporary copy with a mask input per site, run once with
// all ones and once per head with that head's entry zero, all through the runtime worker. Scoring needs both a rewrite
// and runs, so it lives here, above the rewriters and the runtime, and neither of them imports the other for it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeWithSites } from '../analysis/analyze';
import { GraphBuilder } from '../analysis/ir/builder';
import { loadModel } from '../analysis/ir/load';
import { saveModel } from '../analysis/ir/save';
import type { AnalysisReport } from '../analysis/report/types';
import type { RuntimeClient } from '../runtime/client';
import type { SynthesisOptions } from '../runtime/inputs/synthesize';
import { exposeAttentionMaps } from '../runtime/maps-model';
import { compareTensors, looksLikeLogits } from '../runtime/measure/compare-outputs';
import type { InputSource, SessionSettings } from '../runtime/protocol';
import type { HostTensor } from '../runtime/tensor';
import { addHeadMasks, type HeadMaskInput } from '../rewriters/prune/head-mask';

export interface HeadScore {
  head: number;
  /** Mean change of the output when this head is zeroed (KL in nats for logits, else mean |Δ|). */
  outputChange: number;
  /** Mean over queries of the attention entropy (nats); null where the site's maps cannot be read. */
  entropy: number | null;
  firstTokenMass: number | null;
  diagonalMass: number | null;
}

export interface SiteImportance {
  site: number;
  heads: HeadScore[];
}

export interface ImportanceResult {
  model: string;
  /** The output compared, and how. */
  output: string;
  metric: 'kl' | 'mean-abs';
  /** Calibration input sets the scores average over. */
  samples: number;
  sites: SiteImportance[];
  warnings: string[];
}

export interface ImportanceOptions {
  /** An input file (see runtime/inputs/load.ts); one calibration set. Without it, `samples` synthesized sets. */
  inputs?: string;
  /** One calibration set as a runtime input source (calibration data made into inputs, runtime/inputs/calibration.ts). */
  source?: InputSource;
  /** Synthesized calibration sets, seeds seed, seed+1, ... Default 4. */
  samples?: number;
  synthesis?: SynthesisOptions;
  /** Sites to score; default all. */
  sites?: number[];
  settings?: SessionSettings;
  /** Also read entropy / first-token / diagonal mass from the maps. Default true. */
  maps?: boolean;
  onProgress?: (done: number, total: number) => void;
  /** Cancels the runs (the runtime worker stops at its next check). */
  signal?: AbortSignal;
}

export async function headImportance(client: RuntimeClient, modelPath: string, options: ImportanceOptions = {}): Promise<ImportanceResult> {
  const warnings: string[] = [];
  const model = loadModel(modelPath);
  const { report, sites } = analyzeWithSites(model);
  const ids = options.sites ?? report.sites.map((s) => s.id);
  for (const id of ids) if (!report.sites.some((s) => s.id === id)) throw new Error(`site ${id} does not exist (the model has ${report.sites.length} sites)`);
  if (ids.length === 0) throw new Error(`${modelPath}: the analysis found no attention sites`);
  const chosen = ids.map((id) => ({ info: report.sites[id], raw: sites[id] }));
  const builder = new GraphBuilder(model);
  const masks = addHeadMasks(builder, chosen);
  const dir = mkdtempSync(join(tmpdir(), 'attention-lens-importance-'));
  try {
    const masked = join(dir, 'masked.onnx');
    saveModel(builder.finish(), masked);
    const sets = calibrationSets(options);
    const total = sets.length * (1 + masks.reduce((a, m) => a + m.heads, 0));
    let done = 0;
    const sums = new Map<string, number>();
    let output = '';
    let metric: ImportanceResult['metric'] = 'mean-abs';
    const givenInputs: Record<string, HostTensor>[] = [];
    for (const set of sets) {
      // The inputs come from a run of the unmodified model: input synthesis must not see the mask inputs (it would
      // read a batch size off them).
      const run = { signal: options.signal };
      const original = await client.run({ model: modelPath, settings: options.settings, inputs: { ...set, infos: report.model.inputs }, returnInputs: true }, run);
      warnings.push(...original.provider.warnings.filter((w) => !warnings.includes(w)));
      const inputs = original.inputs ?? {};
      givenInputs.push(inputs);
      const base = await client.run({ model: masked, settings: options.settings, inputs: { tensors: { ...inputs, ...maskTensors(masks) } } }, run);
      output ||= pickOutput(base.outputs);
      const reference = base.outputs[output];
      metric = looksLikeLogits(output, reference) ? 'kl' : 'mean-abs';
      options.onProgress?.(++done, total);
      for (const m of masks) {
        for (let h = 0; h < m.heads; h++) {
          const tensors = maskTensors(masks, m, h);
          const r = await client.run({ model: masked, settings: options.settings, inputs: { tensors: { ...inputs, ...tensors } }, outputNames: [output] }, run);
          const c = compareTensors(output, reference, r.outputs[output]);
          if (!('maxAbsDiff' in c)) throw new Error(`output ${output} changed shape when a head was masked: ${c.reason}`);
          const change = metric === 'kl' ? c.logits!.klDivergence : c.meanAbsDiff;
          const key = `${m.site}:${h}`;
          sums.set(key, (sums.get(key) ?? 0) + change);
          options.onProgress?.(++done, total);
        }
      }
    }
    const maps = options.maps === false ? undefined : await mapScores(client, modelPath, report, ids, givenInputs, options.settings, warnings, options.signal);
    return {
      model: modelPath,
      output,
      metric,
      samples: sets.length,
      sites: masks.map((m) => ({
        site: m.site,
        heads: Array.from({ length: m.heads }, (_, h) => {
          const stats = maps?.get(m.site)?.[h];
          return {
            head: h,
            outputChange: (sums.get(`${m.site}:${h}`) ?? 0) / sets.length,
            entropy: stats?.entropy ?? null,
            firstTokenMass: stats?.firstTokenMass ?? null,
            diagonalMass: stats?.diagonalMass ?? null,
          };
        }),
      })),
      warnings,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The input sources of the calibration sets: the given file once, or synthesized sets with successive seeds. */
function calibrationSets(options: ImportanceOptions): InputSource[] {
  if (options.source) return [options.source];
  if (options.inputs) return [{ file: options.inputs, synthesis: options.synthesis }];
  const n = options.samples ?? 4;
  if (!Number.isInteger(n) || n < 1) throw new Error(`samples must be a positive integer, got ${n}`);
  const seed = options.synthesis?.seed ?? 0;
  return Array.from({ length: n }, (_, k) => ({ synthesis: { ...options.synthesis, seed: seed + k } }));
}

/** All-ones masks, except head `h` of `zero` (when given). */
function maskTensors(masks: HeadMaskInput[], zero?: HeadMaskInput, h?: number): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const m of masks) {
    const data = new Float32Array(m.heads).fill(1);
    if (m === zero && h !== undefined) data[h] = 0;
    out[m.input] = { dtype: 'float32', dims: [m.heads], data };
  }
  return out;
}

/** `logits` when the model has it, else its first float output. */
function pickOutput(outputs: Record<string, HostTensor>): string {
  const names = Object.keys(outputs);
  return names.find((n) => looksLikeLogits(n, outputs[n])) ?? names.find((n) => outputs[n].dtype.startsWith('float')) ?? names[0];
}

/** Per-site, per-head map statistics averaged over the calibration sets; sites whose maps cannot be read are left out. */
async function mapScores(
  client: RuntimeClient,
  modelPath: string,
  report: AnalysisReport,
  ids: number[],
  sets: Record<string, HostTensor>[],
  settings: SessionSettings | undefined,
  warnings: string[],
  signal?: AbortSignal,
): Promise<Map<number, { entropy: number; firstTokenMass: number; diagonalMass: number }[]>> {
  const out = new Map<number, { entropy: number; firstTokenMass: number; diagonalMass: number }[]>();
  for (const id of ids) {
    let exposed;
    try {
      exposed = exposeAttentionMaps(modelPath, [report.sites[id]]);
    } catch (e) {
      warnings.push(`site ${id}: no attention-map scores (${(e as Error).message.split('\n')[0]})`);
      continue;
    }
    try {
      const acc: { entropy: number; firstTokenMass: number; diagonalMass: number }[] = [];
      let unknown: string | undefined;
      for (const tensors of sets) {
        const r = await client.maps({ model: exposed.model, sites: exposed.sites, settings, inputs: { tensors }, includeProbabilities: false }, { signal });
        const m = r.sites[0];
        if ('unknown' in m) {
          unknown = m.unknown;
          break;
        }
        m.stats.heads.forEach((s, h) => {
          acc[h] ??= { entropy: 0, firstTokenMass: 0, diagonalMass: 0 };
          acc[h].entropy += s.entropy / sets.length;
          acc[h].firstTokenMass += s.firstTokenMass / sets.length;
          acc[h].diagonalMass += s.diagonalMass / sets.length;
        });
      }
      if (unknown !== undefined) warnings.push(`site ${id}: no attention-map scores (${unknown})`);
      else out.set(id, acc);
    } finally {
      exposed.cleanup();
    }
  }
  return out;
}
