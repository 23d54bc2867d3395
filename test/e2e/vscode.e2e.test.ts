// End to end in a real VS Code (code-server) with the packaged .vsix, driven as a person would through the command
// palette and the dashboard: analyze a model and see its sites, rewrite it with a sliding window and benchmark it on
// the CPU, see the chart, export it and check that the exported file loads and runs. Screenshots of every step go to
// test-artifacts/e2e/.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { type BrowserContext, type FrameLocator, type Page, chromium } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RuntimeClient } from '../../src/runtime/client';
import { FIXTURES } from '../helpers/fixtures';
import { type RunningCodeServer, findTools, findVsix, startCodeServer } from './code-server';

const ROOT = path.resolve(__dirname, '..', '..');
const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'e2e');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// The trained byte-level Llama: its attention was learned from text, so maps and accuracy show real structure.
const FIXTURE = path.join(FIXTURES, 'bytelm-llama-trained', 'model.onnx');
const PAST_FIXTURE = path.join(FIXTURES, 'llama-past-eager-ts-op17', 'model.onnx');
const ADVISOR_TEXT_BYTES = 3000;

let server: RunningCodeServer;
let context: BrowserContext;
let page: Page;
let workspace: string;
let profile: string;

async function shot(name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  // A finished task's progress notification lingers a moment; the picture is clearer without it (not a check).
  await page.locator('.notifications-toasts .monaco-progress-container.active').waitFor({ state: 'detached', timeout: 5_000 }).catch(() => undefined);
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

/** The dashboard's page inside VS Code: a webview is two nested iframes. */
function dashboard(): FrameLocator {
  return page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
}

async function quickInputTitle(text: string): Promise<void> {
  await page.locator('.quick-input-widget .quick-input-title', { hasText: text }).waitFor({ timeout: 60_000 });
}

/**
 * F1, the command's title, Enter: what a person does in the command palette. Right after start-up the palette may not
 * list an extension's commands yet (the extension host is still scanning), so an empty list is tried again.
 */
async function runCommand(title: string): Promise<void> {
  const input = page.locator('.quick-input-widget input.input');
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  const deadline = Date.now() + 90_000;
  for (;;) {
    await page.keyboard.press('F1');
    await input.waitFor();
    await input.fill(`>${title}`);
    try {
      await row.waitFor({ timeout: 5_000 });
      break;
    } catch (e) {
      if (Date.now() > deadline) {
        await shot(`failed-command-${title.replace(/[^a-z]+/gi, '-')}`);
        throw e;
      }
      await page.keyboard.press('Escape');
    }
  }
  await page.keyboard.press('Enter');
}

/** The shown tab's **Choose…**, then the workspace's `name` in VS Code's own open dialog (in code-server a path box). */
async function chooseCalibration(name: string): Promise<void> {
  await dashboard().locator('#choose-calibration').click();
  const input = page.locator('.quick-input-widget input.input');
  await input.waitFor({ timeout: 60_000 });
  // The dialog fills in its starting folder after it appears; a path typed before that is overwritten.
  await expect.poll(() => input.inputValue(), { timeout: 60_000 }).toMatch(/[\\/]$/);
  const file = path.join(workspace, name);
  // It may still rewrite its value once more (its folder put before what was typed): type again until it holds the path.
  // Success needs a look that finds the path already there, half a second after it was typed.
  await input.fill(file);
  await expect.poll(async () => {
    await page.waitForTimeout(500);
    const value = await input.inputValue();
    if (value !== file) await input.fill(file);
    return value;
  }, { timeout: 20_000, interval: 100 }).toBe(file);
  // It then finds the typed file in its list and focuses it; Enter before that accepts nothing. Now and then it does
  // not (its list refreshed under the typing): typing the path again brings it back.
  const focused = page.locator('.quick-input-list .monaco-list-row.focused', { hasText: name });
  for (let attempt = 1; ; attempt++) {
    try {
      await focused.waitFor({ timeout: 10_000 });
      break;
    } catch (e) {
      if (attempt === 3) throw e;
      await input.fill('');
      await input.fill(file);
    }
  }
  await page.keyboard.press('Enter');
}

/**
 * Accepts a multi-select pick with its OK button, as a person clicks it, until the pick closes: an Enter pressed while
 * the widget was redrawn for this pick was lost now and then (the pick stayed open with every site checked, and no
 * variant appeared).
 */
async function acceptMultiPick(): Promise<void> {
  const widget = page.locator('.quick-input-widget');
  const ok = widget.locator('.quick-input-action .monaco-button', { hasText: 'OK' });
  for (let attempt = 1; ; attempt++) {
    await ok.click({ timeout: 30_000 });
    try {
      await widget.waitFor({ state: 'hidden', timeout: 10_000 });
      return;
    } catch (e) {
      if (attempt === 3) throw e;
    }
  }
}

async function typeAndEnter(text: string): Promise<void> {
  const input = page.locator('.quick-input-widget input.input');
  await input.fill(text);
  await page.keyboard.press('Enter');
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not at ${CHROMIUM}: run test/e2e/setup.sh`);
  const tools = findTools();
  const vsix = findVsix(ROOT);
  workspace = mkdtempSync(path.join(tmpdir(), 'attention-lens-e2e-ws-'));
  // A copy: the export writes next to the model, and the shared fixtures are read-only.
  copyFileSync(FIXTURE, path.join(workspace, 'bytelm.onnx'));
  // A model cut off mid-file, as an interrupted download leaves it.
  writeFileSync(path.join(workspace, 'cut.onnx'), readFileSync(FIXTURE).subarray(0, 300_000));
  // Text the byte model never saw (Python sources, as it was trained on), under a text file's name: it is read as bytes.
  copyFileSync(path.join(path.dirname(FIXTURE), 'eval.bytes'), path.join(workspace, 'sample.py'));
  // Its first 3,000 bytes: the Advisor tab's windows shrink to 64 tokens to fit, so that its run takes seconds.
  writeFileSync(path.join(workspace, 'short.py'), readFileSync(path.join(path.dirname(FIXTURE), 'eval.bytes')).subarray(0, ADVISOR_TEXT_BYTES));
  // A decoder exported with its KV cache, for decode steps.
  mkdirSync(path.join(workspace, 'past'));
  copyFileSync(PAST_FIXTURE, path.join(workspace, 'past', 'model.onnx'));
  server = await startCodeServer(tools, vsix, workspace, {
    'attentionLens.sweep.sequenceLengths': [32, 128],
    'attentionLens.benchmark.iterations': 3,
    'attentionLens.benchmark.warmup': 1,
  });
  profile = mkdtempSync(path.join(tmpdir(), 'attention-lens-e2e-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    // Chromium writes under ~/.config and ~/.cache otherwise.
    env: { ...process.env, HOME: server.home } as Record<string, string>,
    viewport: { width: 1400, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${server.url}/?folder=${encodeURIComponent(workspace)}`);
  await page.locator('.monaco-workbench').waitFor({ timeout: 120_000 });
  // The Explorer lists the model once the workspace is open.
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'bytelm.onnx' }).waitFor({ timeout: 60_000 });
}, 300_000);

// What the screen showed when a step failed is the first thing to look at.
afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && page) await shot(`failed-${ctx.task.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}`);
});

afterAll(async () => {
  await context?.close();
  if (server) {
    if (process.env.CI) process.stdout.write(`code-server output (tail):\n${server.log().slice(-3000)}\n`);
    await server.stop();
  }
  if (workspace) rmSync(workspace, { recursive: true, force: true });
  if (profile) rmSync(profile, { recursive: true, force: true });
});

describe('Attention Lens in VS Code (code-server)', () => {
  it('Analyze Model shows the sites table', async () => {
    await runCommand('Attention Lens: Analyze Model');
    await quickInputTitle('choose an ONNX model');
    await typeAndEnter('bytelm.onnx');
    const rows = dashboard().locator('#sites-table tbody tr');
    await expect.poll(() => rows.count(), { timeout: 120_000 }).toBe(4);
    expect(await rows.nth(0).locator('td').nth(2).innerText()).toBe('8'); // heads
    expect(await rows.nth(0).locator('td').nth(3).innerText()).toBe('4'); // KV heads
    await shot('1-overview');
  });

  it('Rewrite Attention… with a window, then Benchmark Variants on the CPU shows the speed chart', async () => {
    await runCommand('Attention Lens: Rewrite Attention…');
    await quickInputTitle('rewrite rule');
    await typeAndEnter('window');
    await quickInputTitle('Window W');
    await typeAndEnter('8');
    await quickInputTitle('Implementation');
    await typeAndEnter('blocked');
    await quickInputTitle('sites');
    // All sites, as preselected: once the list shows them checked (an Enter before that accepted an empty pick now and
    // then, and no variant appeared).
    await expect.poll(() => page.locator('.quick-input-list .monaco-list-row[aria-checked="true"]').count(), { timeout: 30_000 }).toBeGreaterThan(0);
    await acceptMultiPick();
    const variants = dashboard().locator('#variants-table tbody tr');
    await expect.poll(() => variants.count(), { timeout: 120_000 }).toBe(1);
    expect(await variants.nth(0).locator('td').nth(0).innerText()).toBe('window 8 (blocked)');
    await shot('2-studio');

    await runCommand('Attention Lens: Benchmark Variants');
    const speedRows = dashboard().locator('#speed-table tbody tr');
    // The variant, the original, and the fused model added as the dense baseline (the window is not exact).
    await expect.poll(() => speedRows.count(), { timeout: 300_000 }).toBe(3);
    expect(await speedRows.nth(2).locator('td, th').nth(0).innerText()).toMatch(/^fused \(dense baseline, added\)( ★)?$/);
    await expect.poll(() => dashboard().locator('#latency-chart canvas').count()).toBe(1);
    await expect.poll(() => dashboard().locator('#sweep-chart canvas').count()).toBe(1);
    const p50 = await speedRows.nth(1).locator('td').nth(0).innerText();
    expect(p50).toMatch(/^\d+(\.\d+)? ms \[[\d.]+–[\d.]+\]$/);
    await shot('3-speed');
  });

  it('Compare Accuracy and Show Attention Maps fill their dashboards', async () => {
    await runCommand('Attention Lens: Compare Accuracy');
    const accuracy = dashboard().locator('#accuracy-table tbody tr');
    await expect.poll(() => accuracy.count(), { timeout: 120_000 }).toBe(1);
    expect(await accuracy.nth(0).locator('td').nth(0).innerText()).toBe('logits');
    await shot('4-accuracy');

    await runCommand('Attention Lens: Show Attention Maps');
    await quickInputTitle('site to map');
    await typeAndEnter('site 1');
    await quickInputTitle('sparse pattern');
    await typeAndEnter('window 8');
    const heads = dashboard().locator('#heads-table tbody tr');
    await expect.poll(() => heads.count(), { timeout: 120_000 }).toBe(8);
    expect(await dashboard().locator('#heads-table thead th').allInnerTexts()).toContain('recall (window 8)');
    await shot('5-maps');

    await dashboard().locator('#tab-studio').click();
    await dashboard().locator('#variants-table').waitFor();
    await shot('6-studio');
    await dashboard().locator('#tab-overview').click();
    await dashboard().locator('#sites-table').waitFor();
  });

  it('evaluates the byte model on a text file chosen in the dashboard: the bits per byte the CLI computes', async () => {
    await dashboard().locator('#tab-accuracy').click();
    await chooseCalibration('sample.py');
    await expect.poll(() => dashboard().locator('#calibration-file').innerText(), { timeout: 60_000 }).toContain('sample.py (text, 262,144 tokens, bytes (a byte-level model))');
    await dashboard().locator('#eval-windows input').fill('8');
    await dashboard().locator('#run-evaluate').click();
    const rows = dashboard().locator('#evaluation-table tbody tr');
    await expect.poll(() => rows.count(), { timeout: 300_000 }).toBe(2);
    const shown = await rows.nth(0).locator('td').nth(0).innerText();
    const cli = JSON.parse(execFileSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'eval', path.join(workspace, 'bytelm.onnx'), '--tokens', path.join(workspace, 'sample.py'), '--seq', '512', '--windows', '8', '--json'], { encoding: 'utf8' })) as { bitsPerToken: number };
    expect(shown).toBe(cli.bitsPerToken.toFixed(4));
    expect(await dashboard().locator('#evaluation-table thead th').nth(1).innerText()).toBe('bits per byte');
    await dashboard().locator('#evaluation-table').scrollIntoViewIfNeeded();
    await shot('7a-evaluate');
  });

  it('Export Rewritten Model writes the model and its reports; the exported model loads and runs', async () => {
    await runCommand('Attention Lens: Export Rewritten Model');
    // VS Code's own save dialog proposes <model>.<variant>.onnx next to the model; accept it.
    const input = page.locator('.quick-input-widget input.input');
    await input.waitFor();
    await expect.poll(() => input.inputValue()).toContain('bytelm.window-8-blocked.onnx');
    await shot('7-export-dialog');
    await page.keyboard.press('Enter');
    const exported = path.join(workspace, 'bytelm.window-8-blocked.onnx');
    await expect.poll(() => existsSync(path.join(workspace, 'bytelm.window-8-blocked.report.html')), { timeout: 120_000 }).toBe(true);
    expect(existsSync(exported)).toBe(true);
    const report = JSON.parse(readFileSync(path.join(workspace, 'bytelm.window-8-blocked.report.json'), 'utf8'));
    expect(report.exported.label).toBe('window 8 (blocked)');
    expect(report.session.speed.points.length).toBe(6); // 3 models at 2 lengths
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'exported bytelm.window-8-blocked.onnx' });
    await toast.waitFor({ timeout: 60_000 });
    await shot('8-exported');

    // The report opens inside VS Code, in a webview (a local file opened "externally" does nothing in a remote editor).
    await toast.locator('.monaco-button', { hasText: 'Open HTML Report' }).click();
    await page.locator('.tabs-container .tab', { hasText: 'Report: bytelm.window-8-blocked.report.html' }).waitFor({ timeout: 60_000 });
    await expect.poll(() => dashboard().locator('#sites-table tbody tr').count(), { timeout: 60_000 }).toBe(4);
    await dashboard().locator('#tab-speed').click();
    await expect.poll(() => dashboard().locator('#speed-table tbody tr').count()).toBe(3);
    // A report asks no host for work: no buttons that would.
    expect(await dashboard().locator('#run-benchmark').count()).toBe(0);
    await shot('8b-report-in-vscode');
    // Closed by its tab's close button ("View: Close Editor" in the palette also matches "Close Editor Group").
    await page.locator('.tabs-container .tab', { hasText: 'Report: bytelm.window-8-blocked.report.html' }).locator('.tab-actions .action-label').click();
    await expect.poll(() => page.locator('.tabs-container .tab').count()).toBe(1);

    const runtime = new RuntimeClient({ workerPath: path.join(ROOT, 'dist', 'worker.js') });
    try {
      const r = await runtime.run({ model: exported, inputs: { synthesis: { seq: 32 } } });
      expect(r.outputs.logits.dims).toEqual([1, 32, 256]);
    } finally {
      await runtime.dispose();
    }
  });

  it('after a reload the dashboard comes back with its results (panel serializer and webview state)', async () => {
    await page.reload();
    await page.locator('.monaco-workbench').waitFor({ timeout: 120_000 });
    // The restored page shows the tab its saved state names; both dashboards hold their results.
    await dashboard().locator('#tab-overview').click({ timeout: 120_000 });
    await expect.poll(() => dashboard().locator('#sites-table tbody tr').count(), { timeout: 60_000 }).toBe(4);
    await dashboard().locator('#tab-speed').click();
    await expect.poll(() => dashboard().locator('#speed-table tbody tr').count()).toBe(3);
  });

  it('the Explorer’s context menu on a .onnx offers the commands, and Open With… offers the dashboard editor', async () => {
    await runCommand('View: Close All Editors');
    await expect.poll(() => page.locator('iframe.webview').count()).toBe(0);
    const file = page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'bytelm.onnx' }).first();
    await file.click({ button: 'right' });
    const menu = page.locator('.context-view .monaco-menu').first();
    await menu.waitFor();
    await menu.locator('.action-label', { hasText: 'Attention Lens' }).hover();
    const submenu = page.locator('.context-view .monaco-menu').nth(1);
    await submenu.waitFor();
    const items = await submenu.locator('.action-label').allInnerTexts();
    expect(items.map((i) => i.trim())).toEqual(['Analyze Model', 'Open Dashboard', 'Rewrite Attention…', 'Benchmark Variants', 'Compare Accuracy', 'Show Attention Maps', 'Export Rewritten Model']);
    await shot('9-context-menu');
    await menu.locator('.action-label', { hasText: 'Open With...' }).click();
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Attention Lens Dashboard' }).click({ timeout: 60_000 });
    await expect.poll(() => dashboard().locator('#sites-table tbody tr').count(), { timeout: 120_000 }).toBe(4);
    await shot('10-custom-editor');
  });

  it('a .onnx opens in the dashboard by default, its tab named folder/file, and a model gets one dashboard', async () => {
    await runCommand('View: Close All Editors');
    await expect.poll(() => page.locator('iframe.webview').count()).toBe(0);
    // A plain click in the Explorer, as on any file: the dashboard, not the text editor's "file is very large" page.
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'bytelm.onnx' }).first().click();
    await expect.poll(() => dashboard().locator('#sites-table tbody tr').count(), { timeout: 120_000 }).toBe(4);
    const tabs = page.locator('.tabs-container .tab');
    expect(await tabs.count()).toBe(1);
    expect(await tabs.first().innerText()).toContain(`${path.basename(workspace)}/bytelm.onnx`);
    // Commands on the same model (the focused editor's) reveal this dashboard instead of opening a second one.
    await runCommand('Attention Lens: Open Dashboard');
    await runCommand('Attention Lens: Analyze Model');
    await expect.poll(() => dashboard().locator('#sites-table tbody tr').count(), { timeout: 120_000 }).toBe(4);
    expect(await tabs.count()).toBe(1);
    await shot('11-default-editor');
  });

  it('a truncated model says what is wrong once, in one line, in its dashboard', async () => {
    await runCommand('View: Close All Editors');
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'cut.onnx' }).first().click();
    const failure = dashboard().locator('#analysis-failure');
    await failure.waitFor({ timeout: 120_000 });
    const said = 'the file ends in the middle of the model after 300000 bytes: it is truncated (an interrupted download or copy?) or not an ONNX model';
    expect(await failure.innerText()).toContain(said);
    const once = async () => (await dashboard().locator('body').innerText()).split('the file ends in the middle').length - 1;
    expect(await once()).toBe(1);
    expect(await dashboard().locator('body').innerText()).not.toMatch(/index out of range|protobuf|\bat \w+ \(/);
    // The dashboard shows it; no error notification repeats it (the analysis's progress notification is no error).
    const notified = page.locator('.notifications-toasts .notification-toast', { hasText: 'Analyzing cut.onnx failed' });
    await page.waitForTimeout(1_000);
    expect(await notified.count()).toBe(0);
    await shot('12-truncated');
    // Shown again (another model in its place, then it again: a new page), it is still said once, and no
    // notification comes of it: the broken file is not re-read on every showing.
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'bytelm.onnx' }).first().click();
    await expect.poll(() => dashboard().locator('#sites-table tbody tr').count(), { timeout: 120_000 }).toBe(4);
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'cut.onnx' }).first().click();
    await failure.waitFor({ timeout: 60_000 });
    expect(await once()).toBe(1);
    expect(await notified.count()).toBe(0);
  });

  it('the status bar shows the execution provider; choosing one asks where to save it and shows a fallback', async () => {
    const item = page.locator('.statusbar-item', { hasText: 'ORT cpu' });
    await item.waitFor({ timeout: 60_000 });
    // Clicking it is "Select Execution Provider".
    await item.locator('a, .statusbar-item-label').first().click();
    await quickInputTitle('execution providers');
    await typeAndEnter('cuda, cpu');
    await quickInputTitle('save "cuda, cpu" in');
    const choices = await page.locator('.quick-input-list .monaco-list-row').allInnerTexts();
    expect(choices.map((c) => c.split('\n')[0])).toEqual(['User settings', 'Workspace settings']);
    await shot('13-provider-where');
    await typeAndEnter('User settings');
    await page.locator('.statusbar-item', { hasText: 'ORT cuda' }).waitFor({ timeout: 30_000 });
    // Saved for the user; no file of the project was touched.
    expect(existsSync(path.join(workspace, '.vscode', 'settings.json'))).toBe(false);
    expect(JSON.parse(readFileSync(path.join(server.home, 'user-data', 'User', 'settings.json'), 'utf8'))['attentionLens.executionProviders']).toEqual(['cuda', 'cpu']);

    // CUDA is not installed here: a run falls back to the CPU, and the status bar says so.
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'bytelm.onnx' }).first().click();
    await expect.poll(() => dashboard().locator('#sites-table tbody tr').count(), { timeout: 120_000 }).toBe(4);
    await runCommand('Attention Lens: Compare Accuracy');
    const fallback = page.locator('.statusbar-item', { hasText: 'ORT cpu' });
    await fallback.waitFor({ timeout: 180_000 });
    expect(await fallback.locator('.codicon-warning').count()).toBe(1);
    await shot('14-provider-fallback');

    // Saved in the workspace only when that is the choice.
    await fallback.locator('a, .statusbar-item-label').first().click();
    await quickInputTitle('execution providers');
    await typeAndEnter('cpu');
    await quickInputTitle('save "cpu" in');
    await typeAndEnter('Workspace settings');
    const saved = () => {
      const file = path.join(workspace, '.vscode', 'settings.json');
      return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8') || '{}') as Record<string, unknown>)['attentionLens.executionProviders'] : undefined;
    };
    await expect.poll(saved, { timeout: 30_000 }).toEqual(['cpu']);
    await expect.poll(async () => (await page.locator('.statusbar-item', { hasText: 'ORT cpu' }).locator('.codicon-warning').count()), { timeout: 30_000 }).toBe(0);
  });

  it('benchmarks a decode step of a model with a KV cache from the Speed tab', async () => {
    // One dashboard on screen, so that the page's frames are this model's.
    await runCommand('View: Close All Editors');
    await expect.poll(() => page.locator('iframe.webview').count()).toBe(0);
    await runCommand('Attention Lens: Analyze Model');
    await quickInputTitle('choose an ONNX model');
    await typeAndEnter('past/model.onnx');
    await expect.poll(() => dashboard().locator('#sites-table tbody tr').count(), { timeout: 120_000 }).toBe(2);
    await dashboard().locator('#tab-speed').click();
    await dashboard().locator('#decode-pasts input').fill('16, 64');
    await dashboard().locator('#run-decode').click();
    const rows = dashboard().locator('#decode-table tbody tr');
    await expect.poll(() => rows.count(), { timeout: 300_000 }).toBe(2);
    expect((await rows.nth(1).locator('th, td').allInnerTexts()).slice(0, 2)).toEqual(['original', '64']);
    expect(await rows.nth(1).locator('td').nth(1).innerText()).toMatch(/^\d+(\.\d+)? ms \[[\d.]+–[\d.]+\]$/);
    await shot('11-decode');
  });
  it('the Advisor tab finds per-head plans on a chosen text: progress and Cancel, the frontier, the site × head grid, a plan kept as a variant', async () => {
    // Its own dashboard of the byte model, whatever the tests before left open.
    await runCommand('View: Close All Editors');
    await expect.poll(() => page.locator('iframe.webview').count()).toBe(0);
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'bytelm.onnx' }).first().click();
    await expect.poll(() => dashboard().locator('#sites-table tbody tr').count(), { timeout: 120_000 }).toBe(4);
    await dashboard().locator('#tab-studio').click();
    const variants = dashboard().locator('#variants-table tbody tr');
    const variantsBefore = await variants.count();
    await dashboard().locator('#tab-advisor').click();

    // A run shows its progress with a Cancel that stops it (the advisor runs in the core thread, its models in the
    // runtime worker): the task goes away and no plans appear. On the whole sample (windows of 512 tokens), so that
    // the run is still going when Cancel is clicked: on the short text a fast machine finished it first.
    await chooseCalibration('sample.py');
    await expect.poll(() => dashboard().locator('#calibration-file').innerText(), { timeout: 60_000 }).toContain('sample.py (text, 262,144 tokens');
    await dashboard().locator('#advisor-budgets input').fill('0.25');
    const title = 'Advisor: per-head plans for bytelm.onnx';
    const cancel = dashboard().locator(`vscode-button[aria-label="cancel ${title}"]`);
    await dashboard().locator('#run-advisor').click();
    await cancel.waitFor({ timeout: 60_000 });
    await expect.poll(() => dashboard().locator('body').innerText(), { timeout: 60_000 }).toMatch(/profiling the heads/);
    await cancel.click();
    await expect.poll(() => cancel.count(), { timeout: 15_000 }).toBe(0);
    expect(await dashboard().locator('#advisor-table').count()).toBe(0);

    // Run to the end: one budget, windows of 64 tokens on this short text, as the tab says.
    await chooseCalibration('short.py');
    await expect.poll(() => dashboard().locator('#calibration-file').innerText(), { timeout: 60_000 }).toContain(`short.py (text, ${ADVISOR_TEXT_BYTES.toLocaleString('en-US')} tokens`);
    await dashboard().locator('#advisor-budgets input').fill('0.25');
    await dashboard().locator('#run-advisor').click();
    const rows = dashboard().locator('#advisor-table tbody tr');
    await expect.poll(() => rows.count(), { timeout: 300_000 }).toBe(1);
    expect(await dashboard().locator('#advisor-objective').innerText()).toBe(`At 64 tokens: ${path.join(workspace, 'short.py')} holds ${ADVISOR_TEXT_BYTES} tokens, too few for windows of 512. Budget: density ≤ 0.25 (the budget column is in its unit).`);
    // The frontier: a chart read out with its values, and a measured score for the plan and the original.
    const chartLabel = await dashboard().locator('#advisor-chart canvas').getAttribute('aria-label');
    expect(chartLabel).toMatch(/per-head plans and uniform rules; x axis \(density \(share of dense attention\)\): .*%/);
    const cells = await rows.nth(0).locator('th, td').allInnerTexts();
    expect(cells[0]).toBe('0.25');
    expect(cells[1]).toMatch(/^\d+(\.\d+)?%$/);
    expect(Number(cells[1].replace('%', ''))).toBeLessThanOrEqual(25);
    expect(cells[2]).toMatch(/^\d\.\d{4}$/);
    expect(await dashboard().locator('#advisor-table caption').innerText()).toMatch(/^Frontier \(bits per (token|byte); original \d\.\d{4}\)/);
    // The plan: 4 sites × 8 query heads, each cell a pattern with its choice on hover, and a legend of the patterns.
    const grid = dashboard().locator('#plan-grid tbody tr');
    await expect.poll(() => grid.count()).toBe(4);
    for (let site = 0; site < 4; site++) {
      const titles = await grid.nth(site).locator('td').evaluateAll((tds) => tds.map((td) => td.getAttribute('title')));
      expect(titles).toHaveLength(8);
      titles.forEach((t, head) => expect(t).toMatch(new RegExp(`^site ${site}, head ${head}: (dense|window \\d+|sink \\d+ \\+ window \\d+|strided .+|block-topk .+|pruned)$`)));
    }
    expect((await dashboard().locator('#plan-legend > span').allInnerTexts()).length).toBeGreaterThan(0);
    await dashboard().locator('#plan-grid').scrollIntoViewIfNeeded();
    await shot('15-advisor');

    // Keep the plan: the studio lists it as a variant.
    await dashboard().locator('#keep-plan').click();
    await dashboard().locator('#tab-studio').click();
    await expect.poll(() => variants.count(), { timeout: 120_000 }).toBe(variantsBefore + 1);
    expect(await variants.last().locator('td').nth(0).innerText()).toMatch(/^advisor plan, density ≤ 0\.25 \(\d+(\.\d+)?%\)$/);
  });
});
