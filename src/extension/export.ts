// Export: the user picks where the rewritten model goes (never over the original or its data), the core thread
// writes it, the runtime loads it back as a check, and the report is written beside it as JSON and as HTML.
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Variant } from '../protocol';
import type { RuntimeClient } from '../runtime/client';
import type { CoreClient } from './core-client';
import { userError } from './errors';
import type { Log } from './log';
import { buildReport, exportFileName, reportHtml, reportPaths } from './report-file';
import type { ModelSession } from './session';

export interface ExportServices {
  core: CoreClient;
  runtime: RuntimeClient;
  log: Log;
  /** dist/ of the installed extension, where the dashboard bundle is. */
  distFolder: string;
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
  const hasExternal = (session.snapshot.report?.model.externalDataFiles.length ?? 0) > 0;
  const record = await session.runTask(`Exporting ${path.basename(output)}`, async (signal, progress) => {
    progress(0.1, 'writing the rewritten model');
    const rewrite = await services.core.request(
      { type: 'write', file: original, steps: variant.steps, output, externalData: hasExternal ? 'external' : 'auto' },
      signal,
    );
    progress(0.6, 'loading the exported model in onnxruntime');
    const inspected = await services.runtime.inspect({ model: output, settings: { ep: settings.executionProviders } }, { signal });
    const check = `loads in onnxruntime (${inspected.provider.used}): ${inspected.inputs.length} input(s), ${inspected.outputs.length} output(s)`;
    progress(0.8, 'writing the report');
    const report = buildReport(session.snapshot, variant, rewrite, check);
    const paths = reportPaths(output);
    writeFileSync(paths.json, JSON.stringify(report, null, 1));
    const bundle = {
      script: readFileSync(path.join(services.distFolder, 'webview.js'), 'utf8'),
      style: readFileSync(path.join(services.distFolder, 'webview.css'), 'utf8'),
    };
    writeFileSync(paths.html, reportHtml(report, bundle));
    return { variant: variant.id, model: output, json: paths.json, html: paths.html, check };
  });
  session.recordExport(record);
  services.log.info(`exported ${variant.label} to ${record.model} (${record.check}); report ${record.json}, ${record.html}`);
  // Not awaited: the export is done; the message stays until the person dismisses it.
  void vscode.window
    .showInformationMessage(`Attention Lens: exported ${path.basename(record.model)}; it ${record.check}.`, 'Open HTML Report', 'Reveal in Explorer')
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
