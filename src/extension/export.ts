// Export: the user picks where the rewritten model goes (never over the original or its data), the core thread
// writes it (streaming its weights, with progress and cancel), it is loaded back as a check, and the report
// is written beside it as JSON and as HTML. A model with external data exported into its own folder may reference the
// original's data file for the weights the rewrite did not change (fast, no copy of a 13 GB file) or copy them into a
// self-contained data file; elsewhere they are always copied (ONNX external data may not leave the model's folder).
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Variant } from '../protocol';
import type { RewriteReport } from '../rewriters/pipeline';
import type { ExecutionProvider } from '../runtime/protocol';
import type { RuntimeClient } from '../runtime/client';
import type { CoreClient } from '../cli/core-client';
import { userError } from './errors';
import type { Log } from './log';
import { writeFraction } from './progress';
import { buildReport, exportFileName, reportHtml, reportPaths } from './report-file';
import type { ModelSession } from './session';

export interface ExportServices {
  core: CoreClient;
  runtime: RuntimeClient;
  log: Log;
  /** dist/ of the installed extension, where the dashboard bundle is. */
  distFolder: string;
}

/** Above this many bytes of weights, the check reads the export's references instead of loading it in onnxruntime. */
const ORT_CHECK_LIMIT = 4 * 2 ** 30;

/**
 * The export, loaded back: in onnxruntime while its weights fit comfortably in memory; beyond that (a 7B model in
 * float32 is 27 GB) the core thread loads it, which checks every external reference (file, folder, byte range) and
 * analyses the graph, without reading weights.
 */
async function checkExport(services: ExportServices, output: string, rewrite: RewriteReport, eps: ExecutionProvider[], signal: AbortSignal): Promise<string> {
  const w = rewrite.output?.weights;
  const bytes = w ? w.embedded.bytes + w.written.bytes + w.copied.bytes + w.referenced.reduce((a, r) => a + r.bytes, 0) : 0;
  if (bytes > ORT_CHECK_LIMIT) {
    const report = await services.core.request({ type: 'analyze', file: output }, signal);
    return `loads with every weight reference valid (${report.sites.length} attention sites; not run in onnxruntime: ${(bytes / 2 ** 30).toFixed(1)} GiB of weights)`;
  }
  const inspected = await services.runtime.inspect({ model: output, settings: { ep: eps } }, { signal });
  return `loads in onnxruntime (${inspected.provider.used}): ${inspected.inputs.length} input(s), ${inspected.outputs.length} output(s)`;
}

function isWithin(dir: string, file: string): boolean {
  const rel = path.relative(real(dir), real(file));
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/** Where the export's weights are, for the log: written, copied, or read from the original's data file. */
function weightsLine(rewrite: RewriteReport): string {
  const w = rewrite.output?.weights;
  if (!w) return 'unknown';
  const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  const parts = [`${mb(w.embedded.bytes)} embedded`, `${mb(w.written.bytes)} written`, `${mb(w.copied.bytes)} copied`];
  if (w.referenced.length) parts.push(`unchanged ones read from ${w.referenced.map((r) => r.location).join(', ')}`);
  return parts.join(', ');
}

function real(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

export async function exportVariant(services: ExportServices, session: ModelSession, variant: Variant): Promise<void> {
  const original = session.modelPath;
  const settings = session.snapshot.settings;
  const folder = settings.outputFolder ?? path.dirname(original);
  const target = await vscode.window.showSaveDialog({
    title: `Export "${variant.label}" of ${path.basename(original)}`,
    defaultUri: vscode.Uri.file(path.join(folder, exportFileName(original, variant))),
    filters: { 'ONNX model': ['onnx'] },
    saveLabel: 'Export',
  });
  if (!target) return;
  let output = target.fsPath;
  if (!/\.onnx$/i.test(output)) output += '.onnx';
  const protectedFiles = [original, ...(session.snapshot.report?.model.externalDataFiles ?? []).map((f) => path.join(path.dirname(original), f))];
  if (protectedFiles.some((f) => real(f) === real(output))) {
    throw userError(`${path.basename(output)} is the original model or its data; choose another name`);
  }
  const dataFiles = (session.snapshot.report?.model.externalDataFiles ?? []).map((f) => path.join(path.dirname(original), f));
  let copyExternal = false;
  if (dataFiles.length > 0 && dataFiles.every((f) => isWithin(path.dirname(output), f))) {
    const reference = 'Reference the original weights';
    const pick = await vscode.window.showQuickPick(
      [
        { label: reference, detail: `Unchanged weights stay in ${dataFiles.map((f) => path.basename(f)).join(', ')}; only changed ones are written. Keep those files next to the export.` },
        { label: 'Copy all weights', detail: 'A self-contained export: every weight is copied into its own data file (slow and large for big models).' },
      ],
      { title: `Export of ${path.basename(original)}: its weights are in external data`, ignoreFocusOut: true },
    );
    if (!pick) return;
    copyExternal = pick.label !== reference;
  }
  let readsOriginal = false;
  const record = await session.runTask(`Exporting ${path.basename(output)}`, async (signal, progress) => {
    progress(0, 'writing the rewritten model');
    const rewrite = await services.core.request(
      { type: 'write', file: original, steps: variant.steps, output, externalData: 'auto', copyExternal },
      signal,
      (p) => progress(writeFraction(p, 0, 0.8), p.message),
    );
    readsOriginal = (rewrite.output?.weights.referenced.length ?? 0) > 0;
    progress(0.8, 'checking the exported model');
    const check = await checkExport(services, output, rewrite, settings.executionProviders, signal);
    progress(0.95, 'writing the report');
    const report = buildReport(session.snapshot, variant, rewrite, check);
    const paths = reportPaths(output);
    writeFileSync(paths.json, JSON.stringify(report, null, 1));
    const bundle = {
      script: readFileSync(path.join(services.distFolder, 'webview.js'), 'utf8'),
      style: readFileSync(path.join(services.distFolder, 'webview.css'), 'utf8'),
    };
    writeFileSync(paths.html, reportHtml(report, bundle));
    return { variant: variant.id, model: output, json: paths.json, html: paths.html, check, weights: weightsLine(rewrite) };
  });
  session.recordExport(record);
  services.log.info(`exported ${variant.label} to ${record.model} (${record.check}; weights: ${record.weights}); report ${record.json}, ${record.html}`);
  // Not awaited: the export is done; the message stays until the person dismisses it.
  void vscode.window
    .showInformationMessage(
      `Attention Lens: exported ${path.basename(record.model)}; it ${record.check}.${!readsOriginal ? '' : ' Unchanged weights are read from the original\'s data file: keep it next to the export.'}`,
      'Open HTML Report', 'Reveal in Explorer',
    )
    .then(async (pick) => {
      if (pick === 'Open HTML Report') openReport(record.html);
      else if (pick === 'Reveal in Explorer') await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(record.model));
    });
}

/**
 * The exported page inside VS Code, in a webview: opening a local file "externally" does nothing in a remote or web
 * editor (code-server, Codespaces), where the file is on another machine than the browser. The page is standalone
 * (bundle inlined, its own nonce CSP), so the webview shows it as a browser would.
 */
function openReport(file: string): void {
  const panel = vscode.window.createWebviewPanel('attentionLens.report', `Report: ${path.basename(file)}`, vscode.ViewColumn.Active, {
    enableScripts: true,
    enableFindWidget: true,
    localResourceRoots: [],
  });
  panel.webview.html = readFileSync(file, 'utf8');
}
