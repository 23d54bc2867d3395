// Where the dashboard runs: in a VS Code webview (messages to the extension, state kept by VS Code) or in an exported
// HTML report (a session embedded in the page, nothing to talk to, every action hidden).
import type { ExportedReport } from '../src/shared/report';
import { EMBEDDED_REPORT_ID, type WebviewMessage } from '../src/protocol';

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

export interface Host {
  /** False in an exported report: buttons that would ask the extension for work are not shown. */
  readonly interactive: boolean;
  post(message: WebviewMessage): void;
  getState(): unknown;
  setState(state: unknown): void;
}

export function connect(): { host: Host; report: ExportedReport | null } {
  const embedded = document.getElementById(EMBEDDED_REPORT_ID);
  if (embedded?.textContent) {
    const report = JSON.parse(embedded.textContent) as ExportedReport;
    let state: unknown;
    return {
      report,
      host: { interactive: false, post: () => undefined, getState: () => state, setState: (s) => (state = s) },
    };
  }
  const api = acquireVsCodeApi();
  return {
    report: null,
    host: { interactive: true, post: (m) => api.postMessage(m), getState: () => api.getState(), setState: (s) => api.setState(s) },
  };
}
