// A fake extension host for the dashboard: a real session made the way the extension makes it (the CLI's analyze for
// the report, the core thread for previews and rewrites, the runtime worker for runs), and a page that loads the
// built webview bundle under the extension's CSP, with `acquireVsCodeApi` recording what the dashboard posts.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { AnalysisReport } from '../../src/analysis/report/types';
import { CoreClient } from '../../src/cli/core-client';
import { dashboardPage, makeNonce } from '../../src/extension/html';
import { calibrationInfo } from '../../src/extension/calibration';
import { runDecodeBenchmark, runGeneration } from '../../src/extension/decode';
import { runEvaluation } from '../../src/extension/evaluation';
import { runImportance } from '../../src/extension/importance';
import { type RunContext, VariantFiles, runBenchmark, runComparison, runMaps } from '../../src/extension/runs';
import type { RuleStep, SessionSettings, SessionSnapshot, Variant } from '../../src/protocol';
import type { RewriteReport } from '../../src/rewriters/pipeline';
import { RuntimeClient } from '../../src/runtime/client';

export const ROOT = path.resolve(__dirname, '..', '..');
export const DIST = path.join(ROOT, 'dist');
export const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'webview');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** The test needs a browser; CI installs Debian's chromium, so a missing one is a failure, never a skip. */
export function requireChromium(): string {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not at ${CHROMIUM}: install it with 'apt-get update && apt-get install -y chromium' (or set CHROMIUM_PATH)`);
  }
  for (const f of ['webview.js', 'webview.css', 'cli.js', 'core-thread.js', 'worker.js']) {
    if (!existsSync(path.join(DIST, f))) throw new Error(`dist/${f} is missing: run 'npm run build' first`);
  }
  return CHROMIUM;
}

/** The analysis exactly as `attention-lens analyze --json` prints it. */
export function cliReport(model: string): AnalysisReport {
  return JSON.parse(execFileSync(process.execPath, [path.join(DIST, 'cli.js'), 'analyze', model, '--json'], { encoding: 'utf8' })) as AnalysisReport;
}

export const TEST_SETTINGS: SessionSettings = {
  executionProviders: ['cpu'],
  sequenceLengths: [16, 64],
  iterations: 3,
  minTimeMs: 0,
  warmup: 1,
  mapsSequenceLength: 32,
  calibrationInputs: null,
  outputFolder: null,
};

/** The window rewrite every dashboard test uses: 8 keys, compute-reducing where the rule offers it. */
export const WINDOW_STEPS: RuleStep[] = [{ rule: 'window', params: { window: 8, impl: 'blocked' } }];

/** What the extension host runs on: the core thread, the runtime worker and a scratch folder, with one way to end them. */
export function hostServices(): { core: CoreClient; runtime: RuntimeClient; scratch: string; dispose: () => Promise<void> } {
  const core = new CoreClient(path.join(DIST, 'core-thread.js'));
  const runtime = new RuntimeClient({ workerPath: path.join(DIST, 'worker.js') });
  const scratch = mkdtempSync(path.join(tmpdir(), 'attention-lens-webview-test-'));
  const dispose = async () => {
    core.dispose();
    await runtime.dispose();
    rmSync(scratch, { recursive: true, force: true });
  };
  return { core, runtime, scratch, dispose };
}

/** Python source as calibration text: a byte-level fixture reads it as bytes, so the map's axes carry its characters. */
export const CALIBRATION_TEXT = `def mean(values):\n    total = 0\n    for v in values:\n        total += v\n    return total / len(values)\n\n`.repeat(40);

/**
 * A session with real results: the report, a window variant (previewed by the core thread), a benchmark, an accuracy
 * comparison and the maps of site 0 with the window's recall, all on calibration text; the text's task score and the
 * head importance. With `decode`, a model with a KV cache: decode steps and a generated continuation too.
 */
export async function realSession(model: string, options: { decode?: boolean } = {}): Promise<{ session: SessionSnapshot; rewrite: RewriteReport; dispose: () => Promise<void> }> {
  const { core, runtime, scratch, dispose } = hostServices();
  try {
    const report = cliReport(model);
    const rules = await core.request({ type: 'rules' });
    const preview = await core.request({ type: 'preview', file: model, steps: WINDOW_STEPS });
    const variants: Variant[] = [{ id: 'v1', label: 'window 8', steps: WINDOW_STEPS, preview }];
    const text = path.join(scratch, 'calibration.py');
    writeFileSync(text, CALIBRATION_TEXT);
    const calibration = await core.request({ type: 'calibration', file: text, model, infos: report.model.inputs });
    const ctx: RunContext = {
      core, runtime, modelPath: model, report, settings: TEST_SETTINGS,
      files: new VariantFiles(core, model, scratch), signal: new AbortController().signal, progress: () => undefined, calibration,
    };
    const speed = await runBenchmark(ctx, variants);
    const accuracy = await runComparison(ctx, variants);
    const maps = await runMaps(ctx, report.sites[0], 'window 8');
    const evaluation = await runEvaluation(ctx, variants, 64, 4);
    const importance = options.decode ? null : await runImportance(ctx);
    const decode = options.decode ? await runDecodeBenchmark(ctx, variants, [16, 48]) : null;
    const generation = options.decode ? await runGeneration(ctx, variants, 8) : null;
    // What an export writes: the same rewrite, saved where the user chose.
    const rewrite = await core.request({ type: 'write', file: model, steps: WINDOW_STEPS, output: path.join(scratch, 'exported.onnx') });
    const session: SessionSnapshot = {
      modelPath: model, modelName: path.basename(model), report, analysisError: null, rules, draft: null, variants,
      speed, accuracy, maps, calibration: calibrationInfo(calibration, false), evaluation, decode, generation, importance, exports: [], settings: TEST_SETTINGS,
    };
    return { session, rewrite, dispose };
  } catch (e) {
    await dispose();
    throw e;
  }
}

/** Colours of VS Code's Dark Modern theme, as VS Code sets them on a webview's <html>. */
const THEME: Record<string, string> = {
  '--vscode-foreground': '#cccccc', '--vscode-editor-background': '#1f1f1f', '--vscode-descriptionForeground': '#9d9d9d',
  '--vscode-font-family': 'system-ui, sans-serif', '--vscode-font-size': '13px', '--vscode-editor-font-family': 'monospace',
  '--vscode-panel-border': '#2b2b2b', '--vscode-focusBorder': '#0078d4', '--vscode-errorForeground': '#f85149',
  '--vscode-editorWarning-foreground': '#cca700', '--vscode-textCodeBlock-background': '#2b2b2b',
  '--vscode-list-hoverBackground': '#2a2d2e', '--vscode-button-background': '#0078d4', '--vscode-button-foreground': '#ffffff',
  '--vscode-button-secondaryBackground': '#313131', '--vscode-button-secondaryForeground': '#cccccc',
  '--vscode-dropdown-background': '#313131', '--vscode-dropdown-border': '#3c3c3c', '--vscode-input-background': '#313131',
  '--vscode-input-foreground': '#cccccc', '--vscode-panelTitle-activeForeground': '#e7e7e7', '--vscode-panelTitle-activeBorder': '#0078d4',
  '--vscode-panelTitle-inactiveForeground': '#9d9d9d', '--vscode-checkbox-background': '#313131', '--vscode-checkbox-border': '#3c3c3c',
  '--vscode-charts-foreground': '#cccccc', '--vscode-charts-lines': 'rgba(204,204,204,0.3)', '--vscode-charts-blue': '#3794ff',
  '--vscode-charts-orange': '#d18616', '--vscode-charts-green': '#89d185', '--vscode-charts-purple': '#b180d7',
  '--vscode-charts-red': '#f14c4c', '--vscode-charts-yellow': '#cca700',
};

/** Serves dist/ and a dashboard page whose `acquireVsCodeApi` records posted messages and keeps state in sessionStorage. */
export async function serveDashboard(): Promise<{ url: string; close: () => Promise<void> }> {
  let origin = '';
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/') {
      const nonce = makeNonce();
      const page = dashboardPage({
        title: 'fake host',
        nonce,
        cspSource: origin,
        script: { uri: `${origin}/dist/webview.js` },
        style: { uri: `${origin}/dist/webview.css` },
      });
      const fake = `<script nonce="${nonce}">
for (const [k, v] of Object.entries(${JSON.stringify(THEME)})) document.documentElement.style.setProperty(k, v);
window.__posted = [];
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber + ':' + e.columnNumber + ' ' + e.sample));
window.acquireVsCodeApi = () => ({
  postMessage: (m) => window.__posted.push(m),
  getState: () => JSON.parse(sessionStorage.getItem('al-state') || 'null'),
  setState: (s) => sessionStorage.setItem('al-state', JSON.stringify(s)),
});
</script>`;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page.replace(`<script nonce="${nonce}" src=`, `${fake}\n<script nonce="${nonce}" src=`));
      return;
    }
    const file = path.join(DIST, path.basename(url.pathname));
    if (url.pathname.startsWith('/dist/') && existsSync(file)) {
      res.writeHead(200, { 'content-type': file.endsWith('.css') ? 'text/css' : 'text/javascript' });
      res.end(readFileSync(file));
      return;
    }
    // The browser asks for a favicon on its own; a webview has none either.
    res.writeHead(url.pathname === '/favicon.ico' ? 204 : 404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url: `${origin}/`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
