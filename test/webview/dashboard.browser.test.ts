// The dashboard bundle in real headless Chromium, fed by a fake host with a real session (see harness.ts): the
// DOM must show the report's sites, the benchmark's numbers and charts, the maps, keep its state across a reload, obey
// keyboard navigation, and raise no CSP violation. Screenshots go to test-artifacts/webview/.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReport, reportHtml } from '../../src/extension/report-file';
import { CoreClient } from '../../src/cli/core-client';
import { type HostMessage, type RuleStep, type SessionSnapshot, type WebviewMessage, parseWebviewMessage } from '../../src/protocol';
import type { RewriteReport } from '../../src/rewriters/pipeline';
import { FIXTURES } from '../helpers/fixtures';
import { ms } from '../../webview/logic/format';
import { latencyCell } from '../../webview/logic/speed';
import { ARTIFACTS, DIST, cliReport, realSession, requireChromium, serveDashboard } from './harness';

const MODEL = path.join(FIXTURES, 'llama-eager-ts-op17', 'model.onnx');
const BART = path.join(FIXTURES, 'bart-eager-ts-op17', 'model.onnx');

let browser: Browser;
let page: Page;
let session: SessionSnapshot;
let server: { url: string; close: () => Promise<void> };
let rewrite: RewriteReport;
let disposeSession: () => Promise<void>;
const consoleErrors: string[] = [];

async function send(message: HostMessage): Promise<void> {
  await page.evaluate((m) => window.postMessage(m, '*'), message);
}

async function shot(name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** WCAG contrast ratio of two computed CSS colours (rgb()/rgba(), alpha ignored). */
function contrast(a: string, b: string): number {
  const lum = (c: string) => {
    const [r, g, bl] = (c.match(/[\d.]+/g) ?? []).slice(0, 3).map((v) => {
      const x = Number(v) / 255;
      return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

/** Picks a rule in the studio's dropdown, as a person does: open it, click the option. */
async function chooseRule(rule: string): Promise<void> {
  await page.locator('#rule').click();
  await page.locator('#rule vscode-option', { hasText: `${rule}:` }).first().click();
  await expect.poll(() => page.locator('#rule').evaluate((d) => (d as HTMLSelectElement).value)).toBe(rule);
}

async function openTab(tab: string): Promise<void> {
  await send({ type: 'didRequestTab', tab } as HostMessage);
  await page.locator(`#view-${tab} h2`).first().waitFor();
}

beforeAll(async () => {
  const executablePath = requireChromium();
  ({ session, rewrite, dispose: disposeSession } = await realSession(MODEL));
  server = await serveDashboard();
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));
  await page.goto(server.url);
  await page.waitForFunction(() => (window as unknown as { __posted: { type: string }[] }).__posted.some((m) => m.type === 'ready'));
  await send({ type: 'didChangeSession', session });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await disposeSession?.();
});

describe('dashboard in Chromium with a real session', () => {
  it('Overview lists every site of the CLI report with its heads, and the unmatched softmaxes', async () => {
    const report = session.report!;
    const rows = page.locator('#sites-table tbody tr');
    await expect.poll(() => rows.count()).toBe(report.sites.length);
    for (const [i, s] of report.sites.entries()) {
      const cells = await rows.nth(i).locator('th, td').allInnerTexts();
      expect(cells.slice(0, 7)).toEqual([String(s.id), s.kind, s.causal ? 'yes' : 'no', String(s.heads), String(s.kvHeads), String(s.headDim), s.form]);
    }
    await expect.poll(() => page.locator('#view-overview dl.facts').innerText()).toContain(`${report.model.nodeCount}`);
    await shot('overview');
  });

  it('Speed shows p50/p90 bars, the sweep and the share charts, and the measured numbers', async () => {
    await openTab('speed');
    const canvases = page.locator('#view-speed canvas');
    await expect.poll(() => canvases.count()).toBe(3);
    const speed = session.speed!;
    const longest = Math.max(...speed.seqs);
    const original = speed.points.find((p) => p.model === 'original' && p.seq === longest)!;
    const variant = speed.points.find((p) => p.model === 'v1' && p.seq === longest)!;
    const rows = page.locator('#speed-table tbody tr');
    await expect.poll(() => rows.count()).toBe(2);
    const first = await rows.nth(0).locator('th, td').allInnerTexts();
    const second = await rows.nth(1).locator('th, td').allInnerTexts();
    expect(first.slice(0, 3)).toEqual(['original', latencyCell(original), ms(original.latencyMs.p90)]);
    expect(second.slice(0, 3)).toEqual(['window 8', latencyCell(variant), ms(variant.latencyMs.p90)]);
    expect(first[1]).toMatch(/^[\d.]+ ms \[[\d.]+–[\d.]+\]$/);
    // The speedup column is the ratio of the two p50s shown beside it, with its interval; the original is the reference.
    expect(first[4]).toBe('1× (reference)');
    const d = (x: number) => x.toFixed(x >= 10 ? 1 : 2);
    const [lo, hi] = variant.vsOriginal.ci95.map(d);
    const text = `${d(original.latencyMs.p50 / variant.latencyMs.p50)}× [${lo}–${hi}]`;
    expect([text, `${text} ≈1`, `⚠ ${text}`]).toContain(second[4]);
    // Three timed runs (the harness's setting) are too few to trust, and the dashboard says so.
    expect(await page.locator('#speed-warnings').innerText()).toContain('only 3 timed run(s)');
    // Charts drew something: the bar chart's canvas is not blank.
    const painted = await page.evaluate(() => {
      const c = document.querySelector('#latency-chart canvas') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
      return n;
    });
    expect(painted).toBeGreaterThan(1000);
    await shot('speed');
  });

  it('Accuracy shows one row per output of the variant with its metrics', async () => {
    await openTab('accuracy');
    const acc = session.accuracy!;
    const rows = page.locator('#accuracy-table tbody tr');
    await expect.poll(() => rows.count()).toBe(acc.variants[0].outputs.length);
    const cells = await rows.nth(0).locator('th, td').allInnerTexts();
    expect(cells[0]).toBe('window 8');
    expect(cells[1]).toBe(acc.variants[0].outputs[0].name);
    await expect.poll(() => page.locator('#accuracy-chart canvas').count()).toBe(1);
    await shot('accuracy');
  });

  it('Attention maps draw the heatmap of every head, with the head statistics and the pattern recall', async () => {
    await openTab('maps');
    const maps = session.maps!;
    const canvas = page.locator('#heatmap');
    await canvas.waitFor();
    expect(await canvas.getAttribute('width')).toBe(String(maps.dims[2]));
    const rows = page.locator('#heads-table tbody tr');
    await expect.poll(() => rows.count()).toBe(maps.dims[0]);
    const header = await page.locator('#heads-table thead th').allInnerTexts();
    expect(header).toContain('recall (window 8)');
    const recall0 = (await rows.nth(0).locator('td').allInnerTexts()).at(-1);
    expect(recall0).toBe(`${(100 * maps.heads[0].recall!).toFixed(1)}%`);
    // Keyboard: arrow keys on the focused heatmap change the head.
    await canvas.focus();
    await page.keyboard.press('ArrowRight');
    await expect.poll(() => rows.nth(1).locator('th').innerText()).toContain('◀');
    await shot('maps');
  });

  it('Rewrite studio builds a step from the form and asks the host for a preview', async () => {
    await openTab('studio');
    await page.locator('#add-step').click();
    await expect.poll(() => page.locator('ol.steps li').count()).toBe(1);
    await page.locator('#preview').click();
    const posted = await page.evaluate(() => (window as unknown as { __posted: { type: string; steps?: RuleStep[] }[] }).__posted.filter((m) => m.type === 'previewRewrite'));
    expect(posted.length).toBe(1);
    const steps = posted[0].steps!;
    // The form's starting texts, each parameter stated: the window rule's example length, its declared default form.
    expect(steps).toEqual([{ rule: 'window', params: { window: 64, impl: 'mask' } }]);
    // The host answers with the core thread's preview for those steps (here: the variant's, made for the same flags).
    await send({ type: 'didChangeSession', session: { ...session, draft: { ...session.variants[0].preview, steps } } });
    await expect.poll(() => page.locator('#view-studio section.draft table.totals tbody tr').count()).toBe(4);
    const flops = await page.locator('#view-studio section.draft table.totals tbody tr').nth(2).locator('td').allInnerTexts();
    expect(flops[0]).not.toBe(flops[1]);
    await shot('studio');
  });

  it('Rewrite studio sends what was typed and chosen: non-default values, sites 0 and 2, without a removed step', async () => {
    // A model with six sites, so that "sites 0 and 2" leaves some out.
    const bart = { ...session, modelPath: BART, modelName: 'model.onnx', report: cliReport(BART), variants: [], draft: null };
    await send({ type: 'didChangeSession', session: bart });
    await openTab('studio');
    // Start from an empty draft: the previous test left a step (removing it is part of the test).
    while ((await page.locator('ol.steps li').count()) > 0) await page.locator('vscode-button[aria-label="remove step 1"]').click();

    // Step 1: window W = 16 (the form starts at 64), blocked (the default is mask), on sites 0 and 2 only.
    await chooseRule('window');
    await page.locator('#field-window input').fill('16');
    await page.locator('#field-impl').click();
    await page.locator('#field-impl vscode-option', { hasText: 'blocked' }).click();
    await page.locator('#site-all').click();
    await page.locator('#site-0').click();
    await page.locator('#site-2').click();
    await page.locator('#add-step').click();
    await expect.poll(() => page.locator('ol.steps li').count()).toBe(1);
    expect(await page.locator('#form-errors').innerText()).toBe('');
    // Step 2: gqa on every site, removed again below.
    await chooseRule('gqa');
    await page.locator('#site-all').click();
    await page.locator('#add-step').click();
    await expect.poll(() => page.locator('ol.steps li').count()).toBe(2);
    // Step 3: sink N = 2 with W = 8 (the form starts at 4 and 64) on the decoder's site 4.
    await chooseRule('sink');
    await page.locator('#field-sink input').fill('2');
    await page.locator('#field-window input').fill('8');
    await page.locator('#site-all').click();
    await page.locator('#site-4').click();
    await page.locator('#add-step').click();
    await expect.poll(() => page.locator('ol.steps li').count()).toBe(3);
    // Step 4: prune head 1 of site 0 (a rule that names its own sites).
    await chooseRule('prune-heads');
    await page.locator('#field-heads input').fill('0:1');
    await page.locator('#add-step').click();
    await expect.poll(() => page.locator('ol.steps li').count()).toBe(4);
    await page.locator('vscode-button[aria-label="remove step 2"]').click();
    await expect.poll(() => page.locator('ol.steps li').count()).toBe(3);

    const expected: RuleStep[] = [
      { rule: 'window', params: { window: 16, impl: 'blocked' }, sites: [0, 2] },
      { rule: 'sink', params: { sink: 2, window: 8, impl: 'mask' }, sites: [4] },
      { rule: 'prune-heads', params: { heads: { 0: [1] } } },
    ];
    const name = 'window 16 (blocked) @ sites 0,2 + sink 2 + window 8 (mask) @ sites 4 + prune-heads 0:1';
    // The name follows the steps: the removed gqa step is not in it.
    expect(await page.locator('#variant-label').getAttribute('placeholder')).toBe(name);
    // The terminal line is one runnable command (here run with the output in a scratch folder).
    const command = await page.locator('#terminal-command').innerText();
    expect(command).toContain(`attention-lens rewrite ${BART} --window 16 --impl blocked --sites 0,2 --then --sink 2 --window 8 --impl mask --sites 4 --then --prune-heads 0:1 -o `);
    const words = command.match(/'[^']*'|\S+/g)!.map((w) => w.replace(/^'|'$/g, ''));
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'studio-cli-')), 'out.onnx');
    const printed = execFileSync(process.execPath, [path.join(DIST, 'cli.js'), ...words.slice(1, -1), out], { encoding: 'utf8' });
    expect(printed).toMatch(/^window \{"window":16,"impl":"blocked"\} on sites 0, 2$/m);
    expect(printed).toMatch(/^sink \{"sink":2,"window":8,"impl":"mask"\} on sites 4$/m);
    expect(printed).toMatch(/^prune-heads \{"heads":\{"0":\[1\]\}\} on sites 0$/m);
    rmSync(path.dirname(out), { recursive: true, force: true });

    await page.locator('#preview').click();
    await page.locator('#keep-variant').click();
    const posted = await page.evaluate(() => (window as unknown as { __posted: WebviewMessage[] }).__posted);
    const preview = posted.filter((m) => m.type === 'previewRewrite').at(-1);
    const keep = posted.filter((m) => m.type === 'addVariant').at(-1);
    expect(preview).toEqual({ type: 'previewRewrite', steps: expected });
    expect(keep).toEqual({ type: 'addVariant', steps: expected, label: name });
    // The host's check passes the message unchanged, and the core thread applies exactly those parameters and sites.
    expect(parseWebviewMessage(JSON.parse(JSON.stringify(keep)))).toEqual(keep);
    const core = new CoreClient(path.join(DIST, 'core-thread.js'));
    try {
      const applied = (await core.request({ type: 'preview', file: BART, steps: expected })).applied;
      expect(applied.map((a) => [a.rule, a.params, a.sites])).toEqual([
        ['window', { window: 16, impl: 'blocked' }, [0, 2]], ['sink', { sink: 2, window: 8, impl: 'mask' }, [4]], ['prune-heads', { heads: { 0: [1] } }, [0]],
      ]);
    } finally {
      core.dispose();
    }
    await shot('studio-steps');
    await send({ type: 'didChangeSession', session });
  });

  it('keeps its view across a reload (setState) and can be driven from the keyboard', async () => {
    await openTab('speed');
    await page.reload();
    // No session is sent after the reload: what is shown comes from the saved state.
    await expect.poll(() => page.locator('#speed-table tbody tr').count()).toBe(2);
    await page.locator('#tab-speed').focus();
    await page.keyboard.press('ArrowRight');
    await expect.poll(() => page.locator('#accuracy-table').count()).toBe(1);
  });

  it('shows running work with a progress bar and a Cancel that reaches the host; failures with a way to the details', async () => {
    await send({ type: 'didChangeTasks', tasks: [{ id: 't7', title: 'Benchmarking model.onnx', fraction: 0.2, message: 'loading models: 1/2', timing: false }] });
    const task = page.locator('#task-t7');
    await task.waitFor();
    expect(await task.locator('vscode-progress-ring').count()).toBe(1);
    // While runs are timed the dashboard stays still: no spinner, and it says why.
    await send({ type: 'didChangeTasks', tasks: [{ id: 't7', title: 'Benchmarking model.onnx', fraction: 0.4, message: 'timed runs, seq 64 (2/2): 1/3', timing: true }] });
    await expect.poll(() => task.locator('vscode-progress-ring').count()).toBe(0);
    expect(await task.locator('progress').evaluate((p) => (p as HTMLProgressElement).value)).toBeCloseTo(0.4, 6);
    expect(await task.innerText()).toContain('timed runs, seq 64 (2/2): 1/3 (timing: the dashboard pauses until it is done)');
    await task.locator('vscode-button').click();
    const posted = () => page.evaluate(() => (window as unknown as { __posted: { type: string; id?: string }[] }).__posted);
    expect((await posted()).filter((m) => m.type === 'cancelTask')).toEqual([{ type: 'cancelTask', id: 't7' }]);
    await send({ type: 'didChangeTasks', tasks: [] });
    await expect.poll(() => page.locator('.status .task').count()).toBe(0);
    await send({ type: 'didFail', title: 'Benchmark', message: 'the runtime worker stopped unexpectedly (killed by SIGKILL)' });
    const failure = page.locator('.status .failure');
    await expect.poll(async () => (await failure.textContent())?.replace(/\s+/g, ' ')).toContain('Benchmark failed: the runtime worker stopped unexpectedly');
    await failure.locator('vscode-button', { hasText: 'Show details' }).click();
    expect((await posted()).some((m) => m.type === 'showLog')).toBe(true);
    await failure.locator('vscode-button[aria-label="dismiss"]').click();
    await expect.poll(() => failure.count()).toBe(0);
  });

  it('raised no CSP violation and no script error', async () => {
    expect(await page.evaluate(() => (window as unknown as { __violations: string[] }).__violations)).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });

  it('an exported HTML report renders the same dashboards on its own', async () => {
    const report = buildReport(session, session.variants[0], rewrite, 'loads in onnxruntime (cpu)');
    const html = reportHtml(report, { script: readFileSync(path.join(DIST, 'webview.js'), 'utf8'), style: readFileSync(path.join(DIST, 'webview.css'), 'utf8') });
    const file = path.join(ARTIFACTS, 'report.html');
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(file, html);
    const p = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    p.on('pageerror', (e) => errors.push(e.message));
    await p.goto(`file://${file}`);
    await expect.poll(() => p.locator('#sites-table tbody tr').count()).toBe(session.report!.sites.length);
    await p.locator('#tab-speed').click();
    await expect.poll(() => p.locator('#view-speed canvas').count()).toBe(3);
    // A report has no host: no buttons that would ask one for work.
    expect(await p.locator('#run-benchmark').count()).toBe(0);
    expect(errors).toEqual([]);
    await p.close();

    // Readable in a light and in a dark browser: the text, the tab titles and a button against the page.
    for (const colorScheme of ['light', 'dark'] as const) {
      const q = await browser.newPage({ viewport: { width: 1200, height: 900 }, colorScheme });
      await q.goto(`file://${file}`);
      await expect.poll(() => q.locator('#sites-table tbody tr').count()).toBe(session.report!.sites.length);
      const bg = await q.evaluate(() => getComputedStyle(document.body).backgroundColor);
      const text = await q.evaluate(() => getComputedStyle(document.body).color);
      const tab = await q.locator('#tab-overview').evaluate((e) => getComputedStyle(e).color);
      const inactive = await q.locator('#tab-speed').evaluate((e) => getComputedStyle(e).color);
      expect(contrast(text, bg), `${colorScheme}: text ${text} on ${bg}`).toBeGreaterThan(7);
      expect(contrast(tab, bg), `${colorScheme}: active tab ${tab} on ${bg}`).toBeGreaterThan(4.5);
      expect(contrast(inactive, bg), `${colorScheme}: inactive tab ${inactive} on ${bg}`).toBeGreaterThan(4.5);
      await q.screenshot({ path: path.join(ARTIFACTS, `report-${colorScheme}.png`) });
      await q.close();
    }
  });
});
