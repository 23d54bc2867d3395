// Entry point of the VS Code extension: the only place (with the rest of src/extension) that imports `vscode`.
// Wires the output channel, the core thread (analysis, rewriting), the runtime worker (onnxruntime), the dashboards
// and the commands. Nothing here runs a model or parses one on the extension host's thread.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Variant } from '../protocol';
import { RuntimeClient } from '../runtime/client';
import { COMMANDS, registerCommands } from './commands';
import { CoreClient } from '../cli/core-client';
import { Dashboards } from './dashboard';
import { exportVariant } from './export';
import { Log } from './log';
import { ProviderStatus } from './provider-status';
import type { ModelSession } from './session';
import { readSettings } from './settings';

let cleanup: (() => Promise<void>) | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const log = new Log();
  const dist = path.join(context.extensionPath, 'dist');
  const core = new CoreClient(path.join(dist, 'core-thread.js'));
  const runtime = new RuntimeClient({ workerPath: path.join(dist, 'worker.js') });
  const scratch = mkdtempSync(path.join(tmpdir(), 'attention-lens-'));
  const exportServices = { core, runtime, log, distFolder: dist };
  const doExport = (session: ModelSession, variant: Variant) => exportVariant(exportServices, session, variant);
  const providerStatus = new ProviderStatus(COMMANDS.provider);
  const dashboards = new Dashboards(
    context.extensionUri,
    {
      core,
      runtime,
      log,
      scratch,
      settings: () => readSettings((m) => log.warn(m)),
      exportVariant: doExport,
      ranOn: (used) => providerStatus.ran(used),
      pickCalibration: async (modelPath) => {
        const uris = await vscode.window.showOpenDialog({
          title: 'Attention Lens: calibration data (text, token ids or model inputs)',
          canSelectMany: false,
          defaultUri: vscode.Uri.file(path.dirname(modelPath)),
          openLabel: 'Use as calibration data',
        });
        return uris?.[0]?.fsPath;
      },
    },
    log,
  );
  context.subscriptions.push(
    log,
    providerStatus,
    dashboards,
    ...registerCommands({ dashboards, log, exportVariant: doExport }),
  );
  log.info(`Attention Lens ${context.extension.packageJSON.version as string} on ${process.platform}-${process.arch}, Node ${process.version}`);
  cleanup = async () => {
    core.dispose();
    await runtime.dispose();
    rmSync(scratch, { recursive: true, force: true });
  };
}

export async function deactivate(): Promise<void> {
  await cleanup?.();
  cleanup = undefined;
}
