// Long work, shown twice: as a VS Code notification with a Cancel button, and in the dashboards of the model it
// belongs to (with their own cancel button). Both cancel the same AbortController, which the core thread and the
// runtime worker honour.
import * as vscode from 'vscode';
import type { TaskState } from '../protocol';
import type { ReportProgress } from './runs';

/** Dashboards are told of progress at most this often; the notification gets every step. */
const DASHBOARD_INTERVAL_MS = 150;
/**
 * While runs are timed, the notification and the dashboards hear of progress at most this often (and at once when
 * timing starts or stops): every update is a redraw on the machine being measured.
 */
const TIMING_INTERVAL_MS = 5000;

export class Tasks {
  private readonly running = new Map<string, { state: TaskState; controller: AbortController }>();
  private nextId = 1;
  private lastSent = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly onChange: (tasks: TaskState[]) => void) {}

  list(): TaskState[] {
    return [...this.running.values()].map((t) => ({ ...t.state }));
  }

  cancel(id: string): void {
    this.running.get(id)?.controller.abort();
  }

  cancelAll(): void {
    for (const t of this.running.values()) t.controller.abort();
  }

  run<T>(title: string, work: (signal: AbortSignal, report: ReportProgress) => Promise<T>): Promise<T> {
    const id = `t${this.nextId++}`;
    const controller = new AbortController();
    const state: TaskState = { id, title, fraction: null, message: '', timing: false };
    this.running.set(id, { state, controller });
    this.changed(true);
    return Promise.resolve(
      vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Attention Lens: ${title}`, cancellable: true },
        async (progress, token) => {
          token.onCancellationRequested(() => controller.abort());
          let shown = 0;
          let quietSince = 0;
          const report: ReportProgress = (fraction, message, timing = false) => {
            const changed = timing !== state.timing;
            state.timing = timing;
            if (timing && !changed && Date.now() - quietSince < TIMING_INTERVAL_MS) return;
            quietSince = Date.now();
            state.message = message;
            if (fraction !== null) {
              const f = Math.min(1, Math.max(0, fraction));
              // The notification takes increments; a fraction that goes back (a new phase) only updates the text.
              const increment = Math.max(0, f - shown) * 100;
              shown = Math.max(shown, f);
              state.fraction = f;
              progress.report({ increment, message });
            } else {
              progress.report({ message });
            }
            this.changed(changed);
          };
          try {
            return await work(controller.signal, report);
          } finally {
            this.running.delete(id);
            this.changed(true);
          }
        },
      ),
    );
  }

  dispose(): void {
    this.cancelAll();
    if (this.timer) clearTimeout(this.timer);
  }

  private changed(now: boolean): void {
    const since = Date.now() - this.lastSent;
    if (now || since >= DASHBOARD_INTERVAL_MS) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.lastSent = Date.now();
      this.onChange(this.list());
    } else if (!this.timer) {
      this.timer = setTimeout(() => this.changed(true), DASHBOARD_INTERVAL_MS - since);
    }
  }
}
