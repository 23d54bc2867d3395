// The commands of the "Attention Lens" category. Each works from the command palette (acting on the focused dashboard's
// model, or asking for one) and from the Explorer's context menu on a .onnx file (acting on that file).
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Variant } from '../protocol';
import { declOf } from '../shared/rule-decls';
import { fieldError, interactiveChoices } from '../shared/rule-fields';
import { initialTexts, patternOfSteps, stepFlags, stepFromTexts, stepLabel } from '../shared/rule-steps';
import type { ExecutionProvider } from '../runtime/protocol';
import type { Dashboards } from './dashboard';
import { userError, wasReported } from './errors';
import type { Log } from './log';
import type { ModelSession } from './session';
import { writeExecutionProviders } from './settings';

export interface CommandContext {
  dashboards: Dashboards;
  log: Log;
  exportVariant: (session: ModelSession, variant: Variant) => Promise<void>;
}

export const COMMANDS = {
  analyze: 'attentionLens.analyzeModel',
  dashboard: 'attentionLens.openDashboard',
  rewrite: 'attentionLens.rewriteAttention',
  benchmark: 'attentionLens.benchmarkVariants',
  compare: 'attentionLens.compareAccuracy',
  maps: 'attentionLens.showAttentionMaps',
  export: 'attentionLens.exportRewrittenModel',
  provider: 'attentionLens.selectExecutionProvider',
} as const;

/** The .onnx files a command could mean: open dashboards first, then the workspace's models. */
async function chooseModel(ctx: CommandContext, arg: unknown, preferActive: boolean): Promise<string | undefined> {
  if (arg instanceof vscode.Uri) return arg.fsPath;
  const tab = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  if (tab instanceof vscode.TabInputCustom && /\.onnx$/i.test(tab.uri.fsPath)) return tab.uri.fsPath;
  if (preferActive && ctx.dashboards.activeModel) return ctx.dashboards.activeModel;
  const known = ctx.dashboards.knownModels();
  const found = (await vscode.workspace.findFiles('**/*.onnx', '**/node_modules/**', 200)).map((u) => u.fsPath);
  const files = [...new Set([...known, ...found])];
  const browse = '$(folder-opened) Browse…';
  const items: vscode.QuickPickItem[] = [
    ...files.map((f) => ({ label: path.basename(f), description: vscode.workspace.asRelativePath(f), detail: known.includes(f) ? 'dashboard open' : undefined })),
    { label: browse },
  ];
  const pick = await vscode.window.showQuickPick(items, { title: 'Attention Lens: choose an ONNX model', placeHolder: 'model file', matchOnDescription: true, ignoreFocusOut: true });
  if (!pick) return undefined;
  if (pick.label === browse) {
    const uris = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'ONNX model': ['onnx'] }, openLabel: 'Analyze' });
    return uris?.[0]?.fsPath;
  }
  return files[items.indexOf(pick)];
}

async function chooseVariant(session: ModelSession, purpose: string): Promise<Variant | undefined> {
  const variants = session.variants;
  if (variants.length === 0) throw userError(`${session.snapshot.modelName} has no rewrite variants yet: make one with "Attention Lens: Rewrite Attention…" first`);
  if (variants.length === 1) return variants[0];
  const pick = await vscode.window.showQuickPick(
    variants.map((v) => ({ label: v.label, description: v.id, detail: v.steps.map((s) => stepFlags(s).join(' ')).join(' --then '), variant: v })),
    { title: `Attention Lens: variant to ${purpose}`, ignoreFocusOut: true },
  );
  return pick?.variant;
}

/** The prompts of "Rewrite Attention…": rule, its parameters, its sites; the result becomes a variant. */
async function promptRewrite(session: ModelSession): Promise<Variant | undefined> {
  const report = await session.ensureAnalyzed();
  if (report.sites.length === 0) throw userError(`${session.snapshot.modelName} has no attention sites to rewrite`);
  const rules = session.snapshot.rules.filter((r) => declOf(r.name));
  if (rules.length === 0) throw userError('this build has no rewrite rules registered');
  const rulePick = await vscode.window.showQuickPick(
    rules.map((r) => ({ label: r.name, description: declOf(r.name)?.title, detail: r.summary, rule: r.name })),
    { title: 'Attention Lens: rewrite rule', placeHolder: 'which rewrite to apply', matchOnDetail: true, ignoreFocusOut: true },
  );
  if (!rulePick) return undefined;
  const form = declOf(rulePick.rule)!;
  const values = initialTexts(form);
  for (const field of form.fields) {
    let value: string | undefined;
    if (field.type === 'choice') {
      value = (await vscode.window.showQuickPick(interactiveChoices(field), { title: `${form.title}: ${field.label}`, placeHolder: field.help, ignoreFocusOut: true }))?.toString();
    } else {
      value = await vscode.window.showInputBox({
        title: `${form.title}: ${field.label}`,
        prompt: field.help,
        value: values[field.key],
        validateInput: (v) => fieldError(field, v),
        ignoreFocusOut: true,
      });
    }
    if (value === undefined) return undefined;
    values[field.key] = value;
  }
  let sites: number[] | null = null;
  if (form.perSite && report.sites.length > 1) {
    const picks = await vscode.window.showQuickPick(
      report.sites.map((s) => ({ label: `site ${s.id}`, description: `${s.kind}${s.causal ? ', causal' : ''}, ${s.heads ?? '?'} heads, ${s.form}`, picked: true, id: s.id })),
      { title: `${form.title}: sites`, canPickMany: true, placeHolder: 'all sites are selected; deselect the ones to leave alone', ignoreFocusOut: true },
    );
    if (!picks) return undefined;
    if (picks.length === 0) throw userError('no site selected');
    sites = picks.length === report.sites.length ? null : picks.map((p) => p.id);
  }
  let step;
  try {
    step = stepFromTexts(form, values, sites);
  } catch (e) {
    throw userError((e as Error).message);
  }
  return session.addVariant([step], stepLabel(step));
}

export function registerCommands(ctx: CommandContext): vscode.Disposable[] {
  const run = (id: string, title: string, fn: (arg: unknown) => Promise<unknown>) =>
    vscode.commands.registerCommand(id, async (arg: unknown) => {
      try {
        await fn(arg);
      } catch (e) {
        // Sessions report their own failures; anything else was raised by the command itself.
        if (!wasReported(e)) ctx.log.failure(title, e);
      }
    });
  const sessionFor = async (arg: unknown, preferActive: boolean, tab?: Parameters<Dashboards['open']>[1]) => {
    const model = await chooseModel(ctx, arg, preferActive);
    return model ? ctx.dashboards.open(model, tab) : undefined;
  };

  return [
    run(COMMANDS.analyze, 'Analyze Model', async (arg) => {
      const s = await sessionFor(arg, false, 'overview');
      // Analyzing again re-reads the file (it may have changed); a first analysis may already be under way.
      if (s) await (s.snapshot.report ? s.reanalyze() : s.ensureAnalyzed());
    }),
    run(COMMANDS.dashboard, 'Open Dashboard', async (arg) => {
      await sessionFor(arg, true);
    }),
    run(COMMANDS.rewrite, 'Rewrite Attention', async (arg) => {
      const s = await sessionFor(arg, true, 'studio');
      if (!s) return;
      const v = await promptRewrite(s);
      if (v) s.showTab('studio');
    }),
    run(COMMANDS.benchmark, 'Benchmark Variants', async (arg) => {
      const s = await sessionFor(arg, true, 'speed');
      if (s) await s.benchmark();
    }),
    run(COMMANDS.compare, 'Compare Accuracy', async (arg) => {
      const s = await sessionFor(arg, true, 'accuracy');
      if (s) await s.compareAccuracy();
    }),
    run(COMMANDS.maps, 'Show Attention Maps', async (arg) => {
      const s = await sessionFor(arg, true, 'maps');
      if (!s) return;
      const report = await s.ensureAnalyzed();
      if (report.sites.length === 0) throw userError(`${s.snapshot.modelName} has no attention sites`);
      const site = report.sites.length === 1
        ? report.sites[0]
        : (await vscode.window.showQuickPick(
            report.sites.map((x) => ({ label: `site ${x.id}`, description: `${x.kind}${x.causal ? ', causal' : ''}, ${x.heads ?? '?'} heads`, site: x })),
            { title: 'Attention Lens: site to map', ignoreFocusOut: true },
          ))?.site;
      if (!site) return;
      const patterns = [...new Set(s.variants.map((v) => patternOfSteps(v.steps)).filter((p): p is string => p !== null))];
      const none = 'No pattern';
      const pattern = patterns.length === 0
        ? none
        : (await vscode.window.showQuickPick([none, ...patterns], { title: 'Attention Lens: sparse pattern to draw over the map (its recall is measured)', ignoreFocusOut: true }));
      if (pattern === undefined) return;
      await s.showMaps(site.id, pattern === none ? null : pattern);
    }),
    run(COMMANDS.export, 'Export Rewritten Model', async (arg) => {
      const s = await sessionFor(arg, true);
      if (!s) return;
      await s.ensureAnalyzed();
      const v = await chooseVariant(s, 'export');
      if (v) await ctx.exportVariant(s, v);
    }),
    run(COMMANDS.provider, 'Select Execution Provider', async () => {
      const orders: { label: string; detail: string; eps: ExecutionProvider[] }[] = [
        { label: 'cpu', detail: 'onnxruntime’s CPU provider (always available)', eps: ['cpu'] },
        { label: 'cuda, cpu', detail: 'NVIDIA GPUs; needs the CUDA build of onnxruntime-node and its libraries', eps: ['cuda', 'cpu'] },
        { label: 'webgpu, cpu', detail: 'WebGPU (Dawn) where onnxruntime-node ships it', eps: ['webgpu', 'cpu'] },
        { label: 'dml, cpu', detail: 'DirectML on Windows', eps: ['dml', 'cpu'] },
        { label: 'coreml, cpu', detail: 'Core ML on macOS', eps: ['coreml', 'cpu'] },
      ];
      const current = vscode.workspace.getConfiguration('attentionLens').get<string[]>('executionProviders')?.join(', ');
      const pick = await vscode.window.showQuickPick(
        orders.map((o) => ({ ...o, description: o.label === current ? 'current' : undefined })),
        { title: 'Attention Lens: execution providers, in order of preference (a provider that fails to load is reported, then the next one runs)', ignoreFocusOut: true },
      );
      if (!pick) return;
      const target = await writeExecutionProviders(pick.eps);
      if (target) ctx.log.info(`execution providers: ${pick.eps.join(', ')} (saved in ${target} settings)`);
    }),
  ];
}
