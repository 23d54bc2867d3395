// One model's session: its analysis, the rewrite variants a person made, and the results of the runs, shared by every
// dashboard showing that model (a panel and a custom editor may both be open). Heavy work goes elsewhere: analysis and
// rewriting to the core thread, runs to the runtime worker; this class only orders it and keeps the snapshot.
import * as path from 'node:path';
import type * as vscode from 'vscode';
import type { AnalysisReport } from '../analysis/report/types';
import type {
  AccuracyResults,
  AttentionMaps,
  DecodeResults,
  EvalResults,
  GenerationResults,
  ImportanceResults,
  AdvisorResults,
  AdviseRequest,
  HostMessage,
  RewritePreview,
  RuleStep,
  SessionSettings,
  SessionSnapshot,
  SpeedResults,
  TabId,
  Variant,
  WebviewMessage,
} from '../protocol';
import type { ExecutionProvider } from '../runtime/protocol';
import { stepsLabel } from '../shared/rule-steps';
import { markReported, userError } from './errors';
import { type ReportProgress, type RunContext, VariantFiles, runBenchmark, runComparison, runMaps } from './runs';
import { Tasks } from './tasks';
import { CalibrationFiles, calibrationInfo } from './calibration';
import { runDecodeBenchmark, runGeneration } from './decode';
import { runEvaluation } from './evaluation';
import { runImportance } from './importance';
import { runAdvisor } from './advisor';
import type { Services } from './session-services';
import { nextVariantId, startingSnapshot } from './session-state';

export type { Services };

type ResultKey = 'evaluation' | 'decode' | 'generation' | 'importance' | 'advisor';

type RequestHandlers = { [T in WebviewMessage['type']]?: (message: Extract<WebviewMessage, { type: T }>) => Promise<unknown> };

export class ModelSession {
  private state: SessionSnapshot;
  private readonly views = new Set<vscode.Webview>();
  private readonly tasks: Tasks;
  private analysis: Promise<AnalysisReport> | null = null;
  private readonly files: VariantFiles;
  private readonly calibrations: CalibrationFiles;
  /** The calibration file chosen in the dashboard; undefined: the attentionLens.calibrationInputs setting's. */
  private calibrationChoice: string | null | undefined;

  constructor(readonly modelPath: string, private readonly services: Services, restored?: SessionSnapshot) {
    this.files = new VariantFiles(services.core, modelPath, path.join(services.scratch, `s${Math.abs(hash(modelPath)).toString(36)}`));
    this.calibrations = new CalibrationFiles(services.core, modelPath);
    this.tasks = new Tasks((tasks) => this.post({ type: 'didChangeTasks', tasks }));
    this.state = startingSnapshot(modelPath, services.settings(), restored);
    // A file chosen in the dashboard stays chosen; one that came from the setting follows the setting.
    if (restored?.calibration && !restored.calibration.fromSetting) this.calibrationChoice = restored.calibration.file;
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
      const analysis = this.analyze();
      this.analysis = analysis;
      // A failed analysis may be retried by the next action (unless a newer one was started meanwhile).
      analysis.catch(() => {
        if (this.analysis === analysis) this.analysis = null;
      });
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
      // Said once: the dashboard's Overview shows the failure (a banner and a notification would repeat it), and a
      // notification only when no dashboard shows this model.
      const message = this.fail(`Analyzing ${name}`, e, { banner: false, notify: this.views.size === 0 });
      this.state = { ...this.state, analysisError: message ?? 'cancelled' };
      this.broadcast();
      throw e;
    }
  }

  /** Requests that start work: their failures are shown where they happen (a banner, the log), not thrown again. */
  private readonly requests: RequestHandlers = {
    previewRewrite: (m) => this.preview(m.steps),
    addVariant: (m) => this.addVariant(m.steps, m.label),
    benchmark: () => this.benchmark(),
    compareAccuracy: () => this.compareAccuracy(),
    showAttentionMaps: (m) => this.showMaps(m.site, m.pattern),
    chooseCalibration: () => this.chooseCalibration(),
    evaluate: (m) => this.evaluate(m.seq, m.windows),
    benchmarkDecode: (m) => this.benchmarkDecode(m.pasts),
    compareGeneration: (m) => this.compareGeneration(m.steps),
    computeImportance: () => this.computeImportance(),
    advise: (m) => this.advise(m.budgets, m.benchSeq),
  };

  async handle(message: WebviewMessage): Promise<void> {
    const request = this.requests[message.type] as ((m: WebviewMessage) => Promise<unknown>) | undefined;
    if (request) {
      await request(message).catch(() => undefined);
      return;
    }
    switch (message.type) {
      case 'ready':
        this.broadcast();
        this.post({ type: 'didChangeTasks', tasks: this.tasks.list() });
        // A page shown again (a custom editor is re-created each time its tab is shown) does not repeat a failed
        // analysis and its message; "Analyze Model" tries again.
        if (!this.state.report && !this.state.analysisError) await this.ensureAnalyzed().catch(() => undefined);
        return;
      case 'removeVariant':
        this.removeVariant(message.id);
        return;
      case 'export': {
        const v = this.state.variants.find((x) => x.id === message.variant);
        if (v) await this.services.exportVariant(this, v).catch((e) => this.fail('Export', e));
        return;
      }
      case 'clearCalibration':
        this.calibrationChoice = null;
        this.state = { ...this.state, calibration: null };
        this.broadcast();
        return;
      case 'cancelTask':
        this.tasks.cancel(message.id);
        return;
      case 'showLog':
        this.services.log.channel.show(true);
        return;
    }
  }

  /** What the steps would change, shown in the studio before anything is written or run. */
  async preview(steps: RuleStep[]): Promise<RewritePreview> {
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

  async addVariant(steps: RuleStep[], label: string): Promise<Variant> {
    const same = (a: RuleStep[], b: RuleStep[]) => JSON.stringify(a) === JSON.stringify(b);
    const preview = this.state.draft && same(this.state.draft.steps, steps) ? this.state.draft : await this.preview(steps);
    const id = nextVariantId(this.state.variants);
    const variant: Variant = { id, label: label.trim() || stepsLabel(steps), steps, preview };
    this.state = { ...this.state, variants: [...this.state.variants, variant], draft: null };
    this.services.log.info(`${this.state.modelName}: variant ${id} "${variant.label}" (${JSON.stringify(steps)})`);
    this.broadcast();
    return variant;
  }

  removeVariant(id: string): void {
    this.state = { ...this.state, variants: this.state.variants.filter((v) => v.id !== id) };
    this.files.remove(id);
    this.broadcast();
  }

  /** The calibration file in force: the dashboard's choice, else the setting's; null: synthesized inputs. */
  private calibrationFile(settings: SessionSettings): { file: string | null; fromSetting: boolean } {
    if (this.calibrationChoice !== undefined) return { file: this.calibrationChoice, fromSetting: false };
    return { file: settings.calibrationInputs, fromSetting: true };
  }

  private async runContext(report: AnalysisReport, signal: AbortSignal, progress: ReportProgress): Promise<RunContext> {
    const settings = this.services.settings();
    const { file, fromSetting } = this.calibrationFile(settings);
    let calibration = null;
    if (file) {
      progress(null, `reading ${path.basename(file)}`);
      calibration = await this.calibrations.read(file, report, signal);
    }
    this.state = { ...this.state, settings, calibration: calibration && calibrationInfo(calibration, fromSetting) };
    const { core, runtime } = this.services;
    return { core, runtime, modelPath: this.modelPath, report, settings, files: this.files, signal, progress, calibration };
  }

  /** A dashboard task that needs the analysis and a run context; its result goes into the snapshot under `key`. */
  private async runWith<K extends ResultKey>(
    key: K,
    title: string,
    what: string,
    work: (ctx: RunContext) => Promise<NonNullable<SessionSnapshot[K]>>,
    tab?: TabId,
  ): Promise<NonNullable<SessionSnapshot[K]>> {
    const report = await this.ensureAnalyzed();
    try {
      const result = await this.tasks.run(title, async (signal, progress) => work(await this.runContext(report, signal, progress)));
      // Results of a run name the provider that ran it (the status bar shows it).
      const ep = (result as { ep?: ExecutionProvider }).ep;
      if (ep) this.services.ranOn?.(ep);
      this.state = { ...this.state, [key]: result };
      this.broadcast();
      if (tab) this.showTab(tab);
      return result;
    } catch (e) {
      this.fail(what, e);
      throw e;
    }
  }

  async chooseCalibration(): Promise<void> {
    const file = await this.services.pickCalibration(this.modelPath);
    if (!file) return;
    const report = await this.ensureAnalyzed();
    try {
      const calibration = await this.tasks.run(`Reading ${path.basename(file)}`, (signal) => this.calibrations.read(file, report, signal));
      this.calibrationChoice = file;
      this.state = { ...this.state, calibration: calibrationInfo(calibration, false) };
      this.services.log.info(`${this.state.modelName}: calibration data ${file} (${calibration.kind}, ${calibration.how})`);
      this.broadcast();
    } catch (e) {
      this.fail('Calibration data', e);
    }
  }

  evaluate(seq: number, windows: number): Promise<EvalResults> {
    const variants = this.state.variants;
    return this.runWith('evaluation', `Evaluating ${this.state.modelName} on text`, 'Evaluate', (ctx) => runEvaluation(ctx, variants, seq, windows), 'accuracy');
  }

  benchmarkDecode(pasts: number[]): Promise<DecodeResults> {
    const variants = this.state.variants;
    return this.runWith('decode', `Benchmarking decode steps of ${this.state.modelName}`, 'Decode benchmark', (ctx) => runDecodeBenchmark(ctx, variants, pasts), 'speed');
  }

  compareGeneration(steps: number): Promise<GenerationResults> {
    const variants = this.state.variants;
    return this.runWith('generation', `Generating ${steps} tokens with each variant`, 'Generation', (ctx) => runGeneration(ctx, variants, steps), 'accuracy');
  }

  computeImportance(): Promise<ImportanceResults> {
    return this.runWith('importance', `Head importance of ${this.state.modelName}`, 'Head importance', (ctx) => runImportance(ctx), 'heads');
  }

  advise(budgets: AdviseRequest['budgets'], benchSeq?: number): Promise<AdvisorResults> {
    return this.runWith('advisor', `Advisor: per-head plans for ${this.state.modelName}`, 'Advisor', (ctx) => runAdvisor(ctx, budgets, benchSeq), 'advisor');
  }

  async benchmark(): Promise<SpeedResults> {
    const report = await this.ensureAnalyzed();
    const variants = this.state.variants;
    try {
      const speed = await this.tasks.run(`Benchmarking ${this.state.modelName}`, async (signal, progress) => runBenchmark(await this.runContext(report, signal, progress), variants));
      for (const w of speed.warnings) this.services.log.warn(w);
      this.services.ranOn?.(speed.ep);
      this.state = { ...this.state, speed };
      this.broadcast();
      this.showTab('speed');
      return speed;
    } catch (e) {
      this.fail('Benchmark', e);
      throw e;
    }
  }

  async compareAccuracy(): Promise<AccuracyResults> {
    const report = await this.ensureAnalyzed();
    const variants = this.state.variants;
    if (variants.length === 0) throw this.failNow('Compare accuracy', userError('there are no variants to compare yet: make one with "Rewrite Attention…" or in the Rewrite studio'));
    try {
      const accuracy = await this.tasks.run(`Comparing ${variants.length} variant(s) with ${this.state.modelName}`, async (signal, progress) =>
        runComparison(await this.runContext(report, signal, progress), variants),
      );
      for (const w of accuracy.warnings) this.services.log.warn(w);
      this.services.ranOn?.(accuracy.ep);
      this.state = { ...this.state, accuracy };
      this.broadcast();
      this.showTab('accuracy');
      return accuracy;
    } catch (e) {
      this.fail('Compare accuracy', e);
      throw e;
    }
  }

  async showMaps(site: number, pattern: string | null): Promise<AttentionMaps> {
    const report = await this.ensureAnalyzed();
    const info = report.sites.find((s) => s.id === site);
    if (!info) throw this.failNow('Attention maps', userError(`the model has no site ${site}`));
    try {
      const maps = await this.tasks.run(`Attention maps of site ${site}`, async (signal, progress) => runMaps(await this.runContext(report, signal, progress), info, pattern));
      this.services.ranOn?.(maps.ep);
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
    this.files.dispose();
  }

  private fail(what: string, e: unknown, show: { banner: boolean; notify: boolean } = { banner: true, notify: true }): string | null {
    markReported(e);
    const message = this.services.log.failure(what, e, show.notify);
    if (message && show.banner) this.post({ type: 'didFail', title: what, message });
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

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}
