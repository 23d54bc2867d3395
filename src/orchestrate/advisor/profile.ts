// Profiling for the advisor (issue 10): on calibration data, per site and per head, the attention recall of every
// candidate (runtime/measure/pattern-recall.ts, on the dense maps the runtime returns), the head's map statistics, and
// its importance (the output change when it is zeroed, exactly as `importance` measures it). Inference only.
import { analyzeWithSites } from '../../analysis/analyze';
import { loadModel } from '../../analysis/ir/load';
import type { AnalysisReport, SiteInfo } from '../../analysis/report/types';
import { type HeadChoice, describeHeadChoice } from '../../rewriters/plan/choices';
import { validatePlan } from '../../rewriters/plan/validate';
import { RuleError } from '../../rewriters/rule';
import type { RuntimeClient } from '../../runtime/client';
import { type ExposedMaps, exposeAttentionMaps } from '../../runtime/maps-model';
import type { MapStats } from '../../runtime/measure/attention-stats';
import { type RecallPattern, patternRecall } from '../../runtime/measure/pattern-recall';
import type { ScoreLayout } from '../../runtime/measure/score-layout';
import type { InputSource, ProgressEvent, SessionSettings } from '../../runtime/protocol';
import type { HostTensor } from '../../runtime/tensor';
import { headImportance } from '../importance';
import { type CandidateOptions, candidateSet, choiceKeys, denseKeys, recallPatternOf } from './candidates';
import { type TokenSplit, windowBatch } from './calibration';

export type CalibrationSource = { kind: 'tokens'; split: TokenSplit } | { kind: 'inputs'; file: string };

export interface ProfileOptions {
  source: CalibrationSource;
  candidates?: CandidateOptions;
  /**
   * Choices measured besides the candidate set at the map's length and causality (the advisor at several lengths
   * measures each length's block-topk and strided candidates at the other lengths too: joint.ts).
   */
  extraChoices?: (seq: number, causal: boolean) => HeadChoice[];
  /**
   * Token windows the importance runs use (default 2), spread over the calibration windows: scoring zeroes each head
   * in turn, one run per head, so this is what profiling time grows with; the maps use every calibration window.
   */
  importanceWindows?: number;
  settings?: SessionSettings;
  onProgress?: (p: ProgressEvent) => void;
  signal?: AbortSignal;
}

export interface HeadProfile {
  head: number;
  /** Output change when the head is zeroed (KL in nats for logits, else mean |Δ|), as `importance` measures it. */
  importance: number;
  /** Recall of each choice of the site's `choices`, in order (dense 1, pruned 0). */
  recall: number[];
  /** Mean keys per query of each choice. */
  keys: number[];
  entropy: number;
  firstTokenMass: number;
  meanDistance: number;
}

export interface SiteProfile {
  site: number;
  causal: boolean;
  heads: number;
  kvHeads: number | null;
  /** Dense keys per query at the profiled length. */
  denseKeys: number;
  choices: HeadChoice[];
  perHead: HeadProfile[];
}

export interface AdvisorProfile {
  model: string;
  /** The length profiled: the token windows', or the one the inputs file gives. */
  seq: number;
  /** Where the calibration data came from and how it was kept apart from the evaluation data. */
  calibration: string;
  /** Calibration maps measured (token windows, or the inputs file's batch item 0). */
  maps: number;
  /** Token windows the importance runs used (or 1 for an inputs file, whatever its batch). */
  importanceWindows: number;
  /** The output importance compares, and how. */
  output: string;
  metric: 'kl' | 'mean-abs';
  sites: SiteProfile[];
  /** Sites left dense, with the reason. */
  skipped: { site: number; reason: string }[];
  timings: { mapsMs: number; importanceMs: number };
  warnings: string[];
}

/** Sites a plan can give per-head patterns: self-attention with a readable head count. */
function plannable(site: SiteInfo): string | null {
  if (site.kind !== 'self') return 'cross-attention: positions of queries and keys cannot be compared';
  if (!site.heads) return 'the analysis could not read its number of heads';
  return null;
}

export async function profileModel(client: RuntimeClient, modelPath: string, options: ProfileOptions): Promise<AdvisorProfile> {
  const { report } = analyzeWithSites(loadModel(modelPath));
  const warnings: string[] = [];
  const skipped: AdvisorProfile['skipped'] = [];
  const chosen = report.sites.filter((s) => {
    const why = plannable(s);
    if (why) skipped.push({ site: s.id, reason: why });
    return !why;
  });
  if (chosen.length === 0) throw new Error(`${modelPath}: no attention site a plan can change${skipped.length ? ` (${skipped.map((s) => `site ${s.site}: ${s.reason}`).join('; ')})` : ''}`);

  const sets = calibrationInputs(options.source, report);
  const t0 = performance.now();
  const recall = await measureRecall(client, modelPath, chosen, sets, options, skipped, warnings);
  const t1 = performance.now();
  const profiled = chosen.filter((s) => recall.has(s.id));
  if (profiled.length === 0) throw new Error(`${modelPath}: the attention maps of no site could be read (${skipped.map((s) => `site ${s.site}: ${s.reason}`).join('; ')})`);
  const importance = await headImportance(client, modelPath, {
    ...(options.source.kind === 'tokens' ? { sets: [{ [tokenInputName(report)]: importanceBatch(options.source.split, options.importanceWindows ?? 2) }] } : { inputs: options.source.file }),
    sites: profiled.map((s) => s.id),
    settings: options.settings,
    maps: false,
    signal: options.signal,
    onProgress: (done, total) => options.onProgress?.({ phase: 'importance', done, total, message: 'zeroing heads one by one' }),
  });
  const t2 = performance.now();
  warnings.push(...importance.warnings);
  const sites = profiled.map((info): SiteProfile => {
    const r = recall.get(info.id)!;
    const heads = info.heads!;
    const scores = importance.sites.find((s) => s.site === info.id)!.heads;
    return {
      site: info.id,
      causal: info.causal,
      heads,
      kvHeads: info.kvHeads,
      denseKeys: denseKeys(info.causal, r.seq),
      choices: r.choices,
      perHead: Array.from({ length: heads }, (_, h) => ({
        head: h,
        importance: scores[h].outputChange,
        recall: r.recall[h],
        keys: r.choices.map((c) => choiceKeys(c, info.causal, r.seq, h, heads)),
        ...r.stats[h],
      })),
    };
  });
  return {
    model: modelPath,
    seq: recall.get(profiled[0].id)!.seq,
    calibration: options.source.kind === 'tokens' ? options.source.split.how : `the inputs of ${options.source.file} (batch item 0 for the maps)`,
    maps: sets.length,
    importanceWindows: options.source.kind === 'tokens' ? Math.min(options.importanceWindows ?? 2, options.source.split.calibrationStarts.length) : 1,
    output: importance.output,
    metric: importance.metric,
    sites,
    skipped,
    timings: { mapsMs: t1 - t0, importanceMs: t2 - t1 },
    warnings,
  };
}

/** `count` of the calibration windows, evenly spread, as one [count, L] batch. */
function importanceBatch(split: TokenSplit, count: number): HostTensor {
  const all = split.calibrationStarts;
  if (!(Number.isInteger(count) && count >= 1)) throw new RangeError(`importance windows must be a whole number >= 1, got ${count}`);
  const n = Math.min(count, all.length);
  return windowBatch(split, Array.from({ length: n }, (_, i) => all[Math.floor(((i + 0.5) * all.length) / n)])).ids;
}

function tokenInputName(report: { model: { inputs: { name: string; role?: string }[] } }): string {
  const ids = report.model.inputs.find((i) => i.role === 'input_ids');
  if (!ids) throw new Error('the model has no token-id input; give --inputs instead of --tokens');
  return ids.name;
}

/** One input source per calibration map: each token window alone (the maps are read for batch item 0), or the file. */
function calibrationInputs(source: CalibrationSource, report: Parameters<typeof tokenInputName>[0]): InputSource[] {
  if (source.kind === 'inputs') return [{ file: source.file }];
  const ids = tokenInputName(report);
  return source.split.calibrationStarts.map((s) => ({ tensors: { [ids]: windowBatch(source.split, [s]).ids } }));
}

interface SiteRecall {
  seq: number;
  choices: HeadChoice[];
  /** [head][choice] */
  recall: number[][];
  stats: { entropy: number; firstTokenMass: number; meanDistance: number }[];
}

/** One site's recall sums over the calibration maps, per head and choice. */
class SiteSums {
  private readonly mass: number[][];
  private rows = 0;
  private maps = 0;
  private readonly stats: SiteRecall['stats'];
  private readonly patterns: (RecallPattern | null)[];

  constructor(readonly seq: number, readonly heads: number, private readonly causal: boolean, readonly choices: HeadChoice[]) {
    this.mass = choices.map(() => new Array<number>(heads).fill(0));
    this.stats = Array.from({ length: heads }, () => ({ entropy: 0, firstTokenMass: 0, meanDistance: 0 }));
    this.patterns = choices.map(recallPatternOf);
  }

  /** Adds one map (batch item 0: [heads, S, S]) and its statistics. */
  add(probs: Float32Array, layout: ScoreLayout, stats: MapStats): void {
    const measured = patternRecall(probs, layout, this.causal, this.patterns.filter((p) => p !== null));
    let next = 0;
    this.patterns.forEach((p, c) => {
      // Dense keeps every row's mass (1 per row), pruned none.
      const row = p !== null ? measured.mass[next++] : null;
      for (let h = 0; h < this.heads; h++) this.mass[c][h] += row ? row[h] : this.choices[c].kind === 'dense' ? measured.rows : 0;
    });
    this.rows += measured.rows;
    this.maps++;
    stats.heads.forEach((s, h) => {
      this.stats[h].entropy += s.entropy;
      this.stats[h].firstTokenMass += s.firstTokenMass;
      this.stats[h].meanDistance += s.meanDistance;
    });
  }

  result(): SiteRecall | null {
    if (this.rows === 0) return null;
    return {
      seq: this.seq,
      choices: this.choices,
      recall: Array.from({ length: this.heads }, (_, h) => this.choices.map((_c, c) => this.mass[c][h] / this.rows)),
      stats: this.stats.map((s) => ({ entropy: s.entropy / this.maps, firstTokenMass: s.firstTokenMass / this.maps, meanDistance: s.meanDistance / this.maps })),
    };
  }
}

/** Runs the model with every chosen site's probabilities exposed, once per calibration map, and sums the recalls. */
async function measureRecall(
  client: RuntimeClient,
  modelPath: string,
  sites: SiteInfo[],
  sets: InputSource[],
  options: ProfileOptions,
  skipped: AdvisorProfile['skipped'],
  warnings: string[],
): Promise<Map<number, SiteRecall>> {
  const { report } = analyzeWithSites(loadModel(modelPath));
  const { exposed, exposable } = exposeReadable(modelPath, sites, skipped);
  const out = new Map<number, SiteRecall>();
  if (!exposed) return out;
  const sums = new Map<number, SiteSums>();
  try {
    for (const [n, set] of sets.entries()) {
      options.onProgress?.({ phase: 'maps', done: n, total: sets.length, message: 'reading attention maps' });
      const r = await client.maps({ model: exposed.model, sites: exposed.sites, settings: options.settings, inputs: { ...set, infos: report.model.inputs } }, { signal: options.signal });
      for (const m of r.sites) {
        if ('unknown' in m) {
          if (!skipped.some((s) => s.site === m.site)) skipped.push({ site: m.site, reason: `its attention maps cannot be read (${m.unknown})` });
          continue;
        }
        const layout = itemLayout(m.probabilities!);
        const info = exposable.find((s) => s.id === m.site)!;
        let acc = sums.get(m.site);
        if (!acc) {
          const choices = allowedChoices(report, info, withExtras(candidateSet(layout.keys, info.causal, options.candidates).choices, options.extraChoices?.(layout.keys, info.causal) ?? []), warnings);
          acc = new SiteSums(layout.keys, layout.heads, info.causal, choices);
          sums.set(m.site, acc);
        }
        if (layout.keys !== acc.seq || layout.queries !== layout.keys || layout.heads !== acc.heads) {
          warnings.push(`site ${m.site}: calibration map ${n} is [${m.probabilities!.dims.join(', ')}], expected ${acc.heads} heads of ${acc.seq}×${acc.seq}; left out`);
          continue;
        }
        acc.add(m.probabilities!.data as Float32Array, layout, m.stats);
      }
    }
    options.onProgress?.({ phase: 'maps', done: sets.length, total: sets.length, message: 'reading attention maps' });
  } finally {
    exposed.cleanup();
  }
  for (const [site, acc] of sums) {
    const r = acc.result();
    if (r) out.set(site, r);
  }
  return out;
}

/** The candidates with the extra choices not among them, before pruned (which stays last). */
function withExtras(choices: HeadChoice[], extras: HeadChoice[]): HeadChoice[] {
  const have = new Set(choices.map(describeHeadChoice));
  const added = extras.filter((c) => {
    const d = describeHeadChoice(c);
    if (have.has(d)) return false;
    have.add(d);
    return true;
  });
  const pruned = choices.findIndex((c) => c.kind === 'pruned');
  return pruned < 0 ? [...choices, ...added] : [...choices.slice(0, pruned), ...added, ...choices.slice(pruned)];
}

/** The candidates the `plan` rule accepts for this site (its own checks decide); the others are named in a warning. */
function allowedChoices(report: AnalysisReport, site: SiteInfo, choices: HeadChoice[], warnings: string[]): HeadChoice[] {
  return choices.filter((c) => {
    try {
      validatePlan({ plan: { version: 1, sites: { [site.id]: new Array<HeadChoice>(site.heads ?? 0).fill(c) } } }, report);
      return true;
    } catch (e) {
      if (!(e instanceof RuleError)) throw e;
      warnings.push(`site ${site.id}: ${describeHeadChoice(c)} left out of the candidates (${e.message})`);
      return false;
    }
  });
}

/** The model with the maps of every site that can expose them (all at once when possible, else site by site). */
function exposeReadable(modelPath: string, sites: SiteInfo[], skipped: AdvisorProfile['skipped']): { exposed: ExposedMaps | null; exposable: SiteInfo[] } {
  try {
    return { exposed: exposeAttentionMaps(modelPath, sites), exposable: sites };
  } catch {
    const exposable = sites.filter((s) => {
      try {
        exposeAttentionMaps(modelPath, [s]).cleanup();
        return true;
      } catch (e) {
        skipped.push({ site: s.id, reason: `its attention maps cannot be read (${(e as Error).message.split('\n')[0]})` });
        return false;
      }
    });
    return { exposed: exposable.length ? exposeAttentionMaps(modelPath, exposable) : null, exposable };
  }
}

/** The layout of batch item 0 as the maps request returns it: [heads, queries, keys] or [windows, heads, queries, keys]. */
function itemLayout(t: HostTensor): ScoreLayout {
  const d = t.dims;
  const windows = d.length === 4 ? d[0] : 1;
  return { batch: 1, windows, heads: d[d.length - 3], queries: d[d.length - 2], keys: d[d.length - 1], form: '[heads, queries, keys]' };
}
