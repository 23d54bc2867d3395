// The "Attention Lens" output channel and the one way failures reach a person: a short message with a button that
// opens the channel, where the details are.
import * as vscode from 'vscode';
import { explain } from './errors';

export class Log implements vscode.Disposable {
  readonly channel = vscode.window.createOutputChannel('Attention Lens', { log: true });

  info(message: string): void {
    this.channel.info(message);
  }
  warn(message: string): void {
    this.channel.warn(message);
  }

  /**
   * Logs the failure with its details and shows it (unless `notify` is false: a dashboard shows it). Returns the one-line message (also sent to dashboards), or null
   * when the work was cancelled, which is no failure.
   */
  failure(what: string, e: unknown, notify = true): string | null {
    const x = explain(e);
    if (x.cancelled) {
      this.channel.info(`${what}: cancelled`);
      return null;
    }
    this.channel.error(`${what} failed: ${x.message}\n${x.detail}`);
    if (notify) void vscode.window.showErrorMessage(`Attention Lens: ${what} failed: ${x.message}`, 'Show Details').then((pick) => {
      if (pick) this.channel.show(true);
    });
    return x.message;
  }

  dispose(): void {
    this.channel.dispose();
  }
}
