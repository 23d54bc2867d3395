// One model's session: its analysis, the rewrite variants a person made, and the results of the runs, shared by every
// dashboard showing that model (a panel and a custom editor may both be open). Heavy work goes elsewhere: analysis and
// rewriting to the core thread, runs to the runtime worker; this class only orders it and keeps the snapshot.
import { mkdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import type * as vscode from 'vscode';
import type { AnalysisReport } from '../analysis/report/types';
import {
  type AttentionMaps,
  type HostMessage,
  ORIGINAL,
  type RewritePreview,
  type SessionSettings,
  type SessionSnapshot,
  type SpeedResults,
  type TabId,
  type Variant,
  type WebviewMessage,
} from '../protocol';
import type { RuntimeClient } from '../runtime/client';
import type { BenchModel, InputSource, SessionSettings as RuntimeSettings } from '../runtime/protocol';
import { profileSites } from '../runtime/sites';
import type { CoreClient } from './core-client';
import { markReported, userError } from './errors';
import type { Log } from './log';
import { BenchProgress, describeProgress } from './progress';
import { attentionMaps, describeFed, speedPoints, variantAccuracy } from './results';
import { type ReportProgress, Tasks } from './tasks';

export interface Services {
  core: CoreClient;
  runtime: RuntimeClient;
  log: Log;
  settings: () => SessionSettings;
  /** A folder of this extension host's own, for variant models; removed on deactivation. */
  scratch: string;
  /** Export is a dialog-driven flow; the session only supplies the model and the variant. */
  exportVariant: (session: ModelSession, variant: Variant) => Promise<void>;
}

/** Profiled runs per model and point: enough for attention's share of the time, few enough to keep sweeps short. */
const PROFILE_RUNS = 1;

export class ModelSession {
  private state: SessionSnapshot;
  private readonly views = new Set<vscode.Webview>();
  private readonly tasks: Tasks;
  private analysis: Promise<AnalysisReport> | null = null;
  private readonly variantFiles = new Map<string, Promise<string>>();
  private readonly folder: string;

  constructor(readonly modelPath: string, private readonly services: Services, restored?: SessionSnapshot) {
    this.folder = path.join(services.scratch, `s${Math.abs(hash(modelPath)).toString(36)}`);
    this.tasks = new Tasks((tasks) => this.post({ type: 'didChangeTasks', tasks }));
    this.state = restored && restored.modelPath === modelPath
      ? { ...restored, settings: services.settings() }
      : {
          modelPath,
          modelName: path.basename(modelPath),
          report: null,
          analysisError: null,
          rules: [],
          draft: null,
          variants: [],
          speed: null,
          accuracy: null,
          maps: null,
          exports: [],
          settings: services.settings(),
        };
    // A restored snapshot's report is re-made from the file: it may have changed while VS Code was closed.
    if (restored) this.state.report = null;
  }

  get snapshot(): SessionSnapshot {
    return this.state;
  }

  get variants(): Variant[] {
    return this.state.variants;
  }

  attach(webview: vscode.Webview): { dispose(): void } {
    this.views.add(webview);
    return { dispose: () => this.views.delete(webview) };
  }

  get viewCount(): number {
    return this.views.size;
  }

  showTab(tab: TabId): void {
    this.post({ type: 'didRequestTab', tab });
  }

  refreshSettings(): void {
    this.state = { ...this.state, settings: this.services.settings() };
    this.broadcast();
  }

  /** The analysis, made once (and again on `reanalyze`); every action that needs the sites waits for it. */
  ensureAnalyzed(): Promise<AnalysisReport> {
    if (!this.analysis) {
      this.analysis = this.analyze();
      // A failed analysis may be retried by the next action.
      this.analysis.catch(() => (this.analysis = null));
    }
    return this.analysis;
  }

  reanalyze(): Promise<AnalysisReport> {
    this.analysis = null;
    return this.ensureAnalyzed();
  }

  private async analyze(): Promise<AnalysisReport> {
    const name = this.state.modelName;
    try {
      const [report, rules] = await this.tasks.run(`Analyzing ${name}`, async (signal, progress) => {
        progress(null, 'loading the model and finding attention blocks');
        return Promise.all([
          this.services.core.request({ type: 'analyze', file: this.modelPath }, signal),
          this.services.core.request({ type: 'rules' }, signal),
        ]);
      });
      this.state = { ...this.state, report, rules, analysisError: null };
      this.services.log.info(`${this.modelPath}: ${report.sites.length} attention site(s), ${report.unmatched.length} unmatched softmax(es)`);
      for (const w of report.warnings) this.services.log.warn(`${name}: ${w}`);
      this.broadcast();
      return report;
    } catch (e) {
      const message = this.fail(`Analyzing ${name}`, e);
      this.state = { ...this.state, analysisError: message ?? 'cancelled' };
      this.broadcast();
      throw e;
    }
  }

  async handle(message: WebviewMessage): Promise<void> {
    switch (message.type) {
      case 'ready':
        this.broadcast();
        this.post({ type: 'didChangeTasks', tasks: this.tasks.list() });
        if (!this.state.report) await this.ensureAnalyzed().catch(() => undefined);
        return;
      case 'previewRewrite':
        await this.preview(message.steps).catch(() => undefined);
        return;
      case 'addVariant':
        await this.addVariant(message.steps, message.label).catch(() => undefined);
        return;
      case 'removeVariant':
        this.removeVariant(message.id);
        return;
      case 'benchmark':
        await this.benchmark().catch(() => undefined);
        return;
      case 'compareAccuracy':
        await this.compareAccuracy().catch(() => undefined);
        return;
      case 'showAttentionMaps':
        await this.showMaps(message.site, message.pattern).catch(() => undefined);
        return;
      case 'export': {
        const v = this.state.variants.find((x) => x.id === message.variant);
        if (v) await this.services.exportVariant(this, v).catch((e) => this.fail('Export', e));
        return;
      }
      case 'cancelTask':
        this.tasks.cancel(message.id);
        return;
      case 'showLog':
        this.services.log.channel.show(true);
        return;
    }
  }

  /** What the steps would change, shown in the studio before anything is written or run. */
  async preview(steps: string[][]): Promise<RewritePreview> {
    await this.ensureAnalyzed();
    try {
      const preview = await this.tasks.run('Previewing the rewrite', (signal) =>
        this.services.core.request({ type: 'preview', file: this.modelPath, steps }, signal),
      );
      this.state = { ...this.state, draft: preview };
      this.broadcast();
      return preview;
    } catch (e) {
      this.fail('Preview', e);
      throw e;
    }
  }

  async addVariant(steps: string[][], label: string): Promise<Variant> {
    const same = (a: string[][], b: string[][]) => JSON.stringify(a) === JSON.stringify(b);
    const preview = this.state.draft && same(this.state.draft.steps, steps) ? this.state.draft : await this.preview(steps);
    const id = nextVariantId(this.state.variants);
    const variant: Variant = { id, label: label.trim() || steps.map((s) => s.join(' ')).join(' then '), steps, preview };
    this.state = { ...this.state, variants: [...this.state.variants, variant], draft: null };
    this.services.log.info(`${this.state.modelName}: variant ${id} "${variant.label}" (${steps.map((s) => s.join(' ')).join(' ; ')})`);
    this.broadcast();
    return variant;
  }

  removeVariant(id: string): void {
    this.state = { ...this.state, variants: this.state.variants.filter((v) => v.id !== id) };
    const file = this.variantFiles.get(id);
    this.variantFiles.delete(id);
    void file?.then((f) => rmSync(path.dirname(f), { recursive: true, force: true })).catch(() => undefined);
    this.broadcast();
  }

  /** The variant written to this session's scratch folder (once), for the runtime to load. */
  private variantFile(v: Variant, signal: AbortSignal): Promise<string> {
    let file = this.variantFiles.get(v.id);
    if (!file) {
      const dir = path.join(this.folder, v.id);
      mkdirSync(dir, { recursive: true });
      const output = path.join(dir, `${path.basename(this.modelPath, '.onnx')}.${v.id}.onnx`);
      file = this.services.core.request({ type: 'write', file: this.modelPath, steps: v.steps, output }, signal).then(() => output);
      file.catch(() => this.variantFiles.delete(v.id));
      this.variantFiles.set(v.id, file);
    }
    return file;
  }

  private runtimeSettings(): RuntimeSettings {
    return { ep: this.state.settings.executionProviders };
  }

  private inputSource(report: AnalysisReport, seq: number): InputSource {
    const file = this.state.settings.calibrationInputs;
    return file ? { file, infos: report.model.inputs } : { synthesis: { seq }, infos: report.model.inputs };
  }

  async benchmark(): Promise<SpeedResults> {
    const report = await this.ensureAnalyzed();
    const settings = (this.state = { ...this.state, settings: this.services.settings() }).settings;
    const variants = this.state.variants;
    try {
      const speed = await this.tasks.run(`Benchmarking ${this.state.modelName}`, async (signal, progress) => {
        progress(0, 'writing the variants');
        const files = await Promise.all(variants.map((v) => this.variantFile(v, signal)));
        const keyOfPath = new Map<string, string>([[this.modelPath, ORIGINAL], ...variants.map((v, i) => [files[i], v.id] as [string, string])]);
        const models: BenchModel[] = [{ path: this.modelPath, sites: profileSites(report.sites), infos: report.model.inputs }];
        for (const f of files) {
          const r = await this.services.core.request({ type: 'analyze', file: f }, signal);
          models.push({ path: f, sites: profileSites(r.sites), infos: r.model.inputs });
        }
        const tracker = new BenchProgress(models.length);
        const result = await this.services.runtime.bench(
          {
            models,
            settings: this.runtimeSettings(),
            points: settings.sequenceLengths.map((seq) => ({ seq, past: 0 })),
            warmup: settings.warmup,
            iters: settings.iterations,
            profileRuns: PROFILE_RUNS,
          },
          { signal, onProgress: (p) => progress(tracker.fraction(p), describeProgress(p)) },
        );
        progress(1, 'computing the FLOP bounds');
        const bounds = (
          await Promise.all(variants.map((v) => this.services.core.request({ type: 'bounds', file: this.modelPath, variant: v.id, steps: v.steps, seqs: settings.sequenceLengths }, signal)))
        ).flat();
        const warnings = [...new Set(result.results.flatMap((e) => [...e.provider.warnings, ...e.inputWarnings]))];
        const out: SpeedResults = {
          ep: result.results[0]?.ep ?? 'cpu',
          iterations: settings.iterations,
          warmup: settings.warmup,
          seqs: settings.sequenceLengths,
          variants: variants.map((v) => ({ id: v.id, label: v.label })),
          points: speedPoints(result.results, keyOfPath),
          bounds,
          warnings,
          finishedAt: new Date().toISOString(),
        };
        return out;
      });
      for (const w of speed.warnings) this.services.log.warn(w);
      this.state = { ...this.state, speed };
      this.broadcast();
      this.showTab('speed');
      return speed;
    } catch (e) {
      this.fail('Benchmark', e);
      throw e;
    }
  }

  async compareAccuracy(): Promise<void> {
    const report = await this.ensureAnalyzed();
    const variants = this.state.variants;
    if (variants.length === 0) throw this.failNow('Compare accuracy', userError('there are no variants to compare yet: make one with "Rewrite Attention…" or in the Rewrite studio'));
    const settings = (this.state = { ...this.state, settings: this.services.settings() }).settings;
    const seq = settings.sequenceLengths[settings.sequenceLengths.length - 1];
    try {
      const accuracy = await this.tasks.run(`Comparing ${variants.length} variant(s) with ${this.state.modelName}`, async (signal, progress) => {
        const out = [];
        const warnings = new Set<string>();
        let inputs = '';
        let ep: SpeedResults['ep'] = 'cpu';
        for (const [i, v] of variants.entries()) {
          progress(i / variants.length, `${v.label}: writing`);
          const file = await this.variantFile(v, signal);
          progress((i + 0.5) / variants.length, `${v.label}: running both models`);
          const r = await this.services.runtime.compare(
            { a: this.modelPath, b: file, settings: this.runtimeSettings(), inputs: this.inputSource(report, seq) },
            { signal },
          );
          for (const w of [...r.providerA.warnings, ...r.providerB.warnings, ...r.fed.warnings]) warnings.add(w);
          inputs = settings.calibrationInputs ? `${settings.calibrationInputs}: ${describeFed(r.fed)}` : describeFed(r.fed);
          ep = r.providerA.used;
          out.push(variantAccuracy(v, r));
        }
        return { ep, inputs, variants: out, warnings: [...warnings], finishedAt: new Date().toISOString() };
      });
      this.state = { ...this.state, accuracy };
      this.broadcast();
      this.showTab('accuracy');
    } catch (e) {
      this.fail('Compare accuracy', e);
      throw e;
    }
  }

  async showMaps(site: number, pattern: string | null): Promise<AttentionMaps> {
    const report = await this.ensureAnalyzed();
    const info = report.sites.find((s) => s.id === site);
    if (!info) throw this.failNow('Attention maps', userError(`the model has no site ${site}`));
    const settings = (this.state = { ...this.state, settings: this.services.settings() }).settings;
    try {
      const maps = await this.tasks.run(`Attention maps of site ${site}`, async (signal, progress) => {
        progress(0.1, 'adding the probabilities to the outputs');
        const exposed = await this.services.core.request({ type: 'exposeMaps', file: this.modelPath, sites: [site] }, signal);
        try {
          progress(0.4, 'running the model');
          const r = await this.services.runtime.maps(
            {
              model: exposed.model,
              sites: exposed.sites,
              settings: this.runtimeSettings(),
              inputs: this.inputSource(report, settings.mapsSequenceLength),
              ...(pattern ? { pattern } : {}),
              includeProbabilities: true,
            },
            { signal },
          );
          return attentionMaps(r, site, info.causal, new Date().toISOString());
        } finally {
          rmSync(exposed.dir, { recursive: true, force: true });
        }
      });
      this.state = { ...this.state, maps };
      this.broadcast();
      this.showTab('maps');
      return maps;
    } catch (e) {
      this.fail('Attention maps', e);
      throw e;
    }
  }

  recordExport(record: SessionSnapshot['exports'][number]): void {
    this.state = { ...this.state, exports: [...this.state.exports.filter((x) => x.model !== record.model), record] };
    this.broadcast();
  }

  /** Runs `work` as a task of this session (a notification and the dashboards' progress bar). */
  runTask<T>(title: string, work: (signal: AbortSignal, report: ReportProgress) => Promise<T>): Promise<T> {
    return this.tasks.run(title, work);
  }

  dispose(): void {
    this.tasks.dispose();
    rmSync(this.folder, { recursive: true, force: true });
  }

  private fail(what: string, e: unknown): string | null {
    markReported(e);
    const message = this.services.log.failure(what, e);
    if (message) this.post({ type: 'didFail', title: what, message });
    return message;
  }

  private failNow(what: string, e: Error): Error {
    this.fail(what, e);
    return e;
  }

  private broadcast(): void {
    this.post({ type: 'didChangeSession', session: this.state });
  }

  private post(message: HostMessage): void {
    for (const v of this.views) void v.postMessage(message);
  }
}

function nextVariantId(variants: Variant[]): string {
  const used = new Set(variants.map((v) => v.id));
  for (let i = 1; ; i++) if (!used.has(`v${i}`)) return `v${i}`;
}

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}
