// Dashboards: webview panels opened by commands (restored after a reload by a serializer) and the read-only custom
// editor for .onnx files. Both host the same page and talk to the model's session through the typed protocol.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { type SavedDashboardState, type SessionSnapshot, type TabId, parseWebviewMessage } from '../protocol';
import { dashboardPage, makeNonce } from './html';
import type { Log } from './log';
import { ModelSession, type Services } from './session';

export const PANEL_VIEW_TYPE = 'attentionLens.dashboard';
export const EDITOR_VIEW_TYPE = 'attentionLens.modelEditor';


export class Dashboards implements vscode.Disposable {
  private readonly sessions = new Map<string, ModelSession>();
  private readonly panels = new Map<string, vscode.WebviewPanel>();
  /** The model of the dashboard that was focused last: what palette commands act on. */
  private active: string | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(private readonly extensionUri: vscode.Uri, private readonly services: Services, private readonly log: Log) {
    this.subscriptions.push(
      vscode.window.registerWebviewPanelSerializer(PANEL_VIEW_TYPE, {
        // VS Code hands back what the webview last gave setState.
        deserializeWebviewPanel: async (panel, state: SavedDashboardState | undefined) => {
          const modelPath = state?.session?.modelPath;
          if (!modelPath) {
            panel.dispose();
            return;
          }
          this.adoptPanel(panel, this.session(modelPath, state?.session ?? undefined));
        },
      }),
      vscode.window.registerCustomEditorProvider(
        EDITOR_VIEW_TYPE,
        {
          openCustomDocument: (uri) => ({ uri, dispose: () => undefined }),
          resolveCustomEditor: async (document, panel) => {
            const session = this.session(document.uri.fsPath);
            this.hostWebview(panel, session);
          },
        },
        // Custom editors are re-created when hidden unless kept; the webview's own state makes that cheap.
        { supportsMultipleEditorsPerDocument: true, webviewOptions: { enableFindWidget: true } },
      ),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('attentionLens')) for (const s of this.sessions.values()) s.refreshSettings();
      }),
    );
  }

  /** The model palette commands act on when not given one: the last focused dashboard's. */
  get activeModel(): string | undefined {
    return this.active;
  }

  knownModels(): string[] {
    return [...this.sessions.keys()];
  }

  session(modelPath: string, restored?: SessionSnapshot): ModelSession {
    const key = path.resolve(modelPath);
    let s = this.sessions.get(key);
    if (!s) {
      s = new ModelSession(key, this.services, restored);
      this.sessions.set(key, s);
    }
    return s;
  }

  /**
   * Opens (or reveals) the panel of a model, on a tab. The panel does not take the keyboard focus: commands go on to
   * ask questions in VS Code's own inputs.
   */
  open(modelPath: string, tab?: TabId): ModelSession {
    const session = this.session(modelPath);
    let panel = this.panels.get(session.modelPath);
    if (panel) {
      panel.reveal(undefined, true);
    } else {
      panel = vscode.window.createWebviewPanel(PANEL_VIEW_TYPE, `Attention Lens: ${path.basename(modelPath)}`, { viewColumn: vscode.ViewColumn.Active, preserveFocus: true }, {
        enableScripts: true,
        enableFindWidget: true,
        localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist')],
      });
      this.adoptPanel(panel, session);
    }
    this.active = session.modelPath;
    if (tab) session.showTab(tab);
    // The analysis starts when the page says it is ready, or when a command needs the sites; not twice.
    return session;
  }

  private adoptPanel(panel: vscode.WebviewPanel, session: ModelSession): void {
    this.panels.set(session.modelPath, panel);
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'icon.svg');
    this.hostWebview(panel, session);
    panel.onDidDispose(() => {
      if (this.panels.get(session.modelPath) === panel) this.panels.delete(session.modelPath);
    });
  }

  /** Puts the dashboard page in a webview and connects it to the session. */
  private hostWebview(panel: vscode.WebviewPanel, session: ModelSession): void {
    const webview = panel.webview;
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist');
    webview.options = { enableScripts: true, localResourceRoots: [dist] };
    webview.html = dashboardPage({
      title: `Attention Lens: ${path.basename(session.modelPath)}`,
      nonce: makeNonce(),
      cspSource: webview.cspSource,
      script: { uri: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'webview.js')).toString() },
      style: { uri: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'webview.css')).toString() },
    });
    const attached = session.attach(webview);
    const received = webview.onDidReceiveMessage((raw) => {
      const message = parseWebviewMessage(raw);
      if (!message) {
        this.log.warn(`ignored a malformed message from the dashboard: ${JSON.stringify(raw).slice(0, 200)}`);
        return;
      }
      void session.handle(message);
    });
    const focused = panel.onDidChangeViewState((e) => {
      if (e.webviewPanel.active) this.active = session.modelPath;
    });
    if (panel.active) this.active = session.modelPath;
    panel.onDidDispose(() => {
      attached.dispose();
      received.dispose();
      focused.dispose();
    });
  }

  dispose(): void {
    for (const d of this.subscriptions) d.dispose();
    for (const p of this.panels.values()) p.dispose();
    for (const s of this.sessions.values()) s.dispose();
    this.sessions.clear();
  }
}
