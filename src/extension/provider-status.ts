// The status bar item that shows which onnxruntime execution provider runs the models (the one that ran last, with
// a fallback marked) and opens "Select Execution Provider" when clicked.
import * as vscode from 'vscode';
import type { ExecutionProvider } from '../runtime/protocol';
import { providerStatusText } from './provider-text';
import { SECTION, readSettings } from './settings';

export const PROVIDER_STATUS_ID = 'attentionLens.executionProvider';

export class ProviderStatus implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem(PROVIDER_STATUS_ID, vscode.StatusBarAlignment.Right, 100);
  private lastUsed: ExecutionProvider | null = null;
  private readonly watch: vscode.Disposable;

  constructor(command: string) {
    this.item.name = 'Attention Lens: execution provider';
    this.item.command = command;
    this.watch = vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration(`${SECTION}.executionProviders`)) return;
      // A new preference is what the next run tries first; the last run's provider no longer describes it.
      this.lastUsed = null;
      this.update();
    });
    this.update();
    this.item.show();
  }

  /** A run finished on `used`. */
  ran(used: ExecutionProvider): void {
    this.lastUsed = used;
    this.update();
  }

  private update(): void {
    const t = providerStatusText(readSettings(() => undefined).executionProviders, this.lastUsed);
    this.item.text = t.text;
    this.item.tooltip = t.tooltip;
    this.item.backgroundColor = t.fellBack ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
  }

  dispose(): void {
    this.watch.dispose();
    this.item.dispose();
  }
}
