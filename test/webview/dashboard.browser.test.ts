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
import { fmtDensity, planGrid, planVariant } from '../../webview/logic/advisor';
import { unitOf } from '../../webview/logic/evaluate';
import { type RunContext, VariantFiles, runBenchmark } from '../../src/extension/runs';
import { ARTIFACTS, CALIBRATION_TEXT, DIST, cliReport, hostServices, realSession, requireChromium, serveDashboard } from './harness';

const MODEL = path.join(FIXTURES, 'llama-eager-ts-op17', 'model.onnx');
const VIT = path.join(FIXTURES, 'vit-eager-ts-op17', 'model.onnx');
// A decoder exported with its KV cache: decode steps and generated continuations.
const PAST = path.join(FIXTURES, 'llama-past-eager-ts-op17', 'model.onnx');
const BART = path.join(FIXTURES, 'bart-eager-ts-op17', 'model.onnx');

let browser: Browser;
let page: Page;
let session: SessionSnapshot;
let server: { url: string; close: () => Promise<void> };
let rewrite: RewriteReport;
let disposeSession: () => Promise<void>;
let pastSession: SessionSnapshot;
let disposePast: () => Promise<void>;
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

/**
 * A ViT's session with real results: its report, the original benchmarked at its own image size (no variants), and
 * a window variant with the core thread's preview.
 */
async function visionSession(): Promise<{ session: SessionSnapshot; dispose: () => Promise<void> }> {
  const { core, runtime, scratch, dispose } = hostServices();
  try {
    const report = cliReport(VIT);
    const steps: RuleStep[] = [{ rule: 'window', params: { window: 4, impl: 'mask' } }];
    const ctx: RunContext = {
      core, runtime, modelPath: VIT, report, settings: session.settings,
      files: new VariantFiles(core, VIT, scratch), signal: new AbortController().signal, progress: () => undefined, calibration: null,
    };
    const speed = await runBenchmark(ctx, []);
    expect(speed.seqs).toEqual([17]);
    const draft = await core.request({ type: 'preview', file: VIT, steps });
    return {
      session: {
        ...session, modelPath: VIT, modelName: 'model.onnx', report, rules: session.rules,
        variants: [{ id: 'v1', label: 'window 4', steps, preview: draft }], draft: null, speed, accuracy: null, maps: null,
        calibration: null, evaluation: null, decode: null, generation: null, importance: null,
      },
      dispose,
    };
  } catch (e) {
    await dispose();
    throw e;
  }
}

async function openTab(tab: string): Promise<void> {
  await send({ type: 'didRequestTab', tab } as HostMessage);
  await page.locator(`#view-${tab} h2`).first().waitFor();
}

beforeAll(async () => {
  const executablePath = requireChromium();
  ({ session, rewrite, dispose: disposeSession } = await realSession(MODEL));
  ({ session: pastSession, dispose: disposePast } = await realSession(PAST, { decode: true }));
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
  await disposePast?.();
});

/** What the dashboard posted to the host so far. */
function posted(): Promise<WebviewMessage[]> {
  return page.evaluate(() => (window as unknown as { __posted: WebviewMessage[] }).__posted);
}

/** Types into a toolkit text field as a person does: select what is there, type over it. */
async function typeInto(id: string, text: string): Promise<void> {
  await page.locator(`#${id} input`).fill(text);
}

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
    // The original, the window variant, and the fused model the benchmark added as the dense baseline (no variant
    // computes exactly what the original does).
    await expect.poll(() => rows.count()).toBe(3);
    expect(speed.variants.map((v) => [v.id, v.label, v.boundScope])).toEqual([['v1', 'window 8', 'core'], ['fused', 'fused (dense baseline, added)', 'none']]);
    expect((await rows.nth(2).locator('th, td').allInnerTexts())[0]).toMatch(/^fused \(dense baseline, added\)( ★)?$/);
    expect(await page.locator('#view-speed p.help').innerText()).toContain('the benchmark added the original with its attention fused');
    const first = await rows.nth(0).locator('th, td').allInnerTexts();
    const second = await rows.nth(1).locator('th, td').allInnerTexts();
    expect(first[0]).toMatch(/^original( ★)?$/);
    expect(first.slice(1, 3)).toEqual([latencyCell(original), ms(original.latencyMs.p90)]);
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
    // The sweep and share charts label their x axis with the measured lengths (chart.js's log axis labelled none of
    // 16, 64, 128, 256, 512: only values with a leading 1, 2, 3 or 5); the canvas's label reads the drawn ticks.
    for (const id of ['sweep-chart', 'share-chart']) {
      expect(await page.locator(`#${id} canvas`).getAttribute('aria-label')).toMatch(/; x axis \(sequence length \(tokens\)\): 16, 64$/);
    }
    // The header says what the button will run; the results say where they were measured.
    expect(await page.locator('#benchmark-plan').innerText()).toMatch(/^Times the original and 1 variant\(s\) at 16, 64 tokens: /);
    expect(await page.locator('#speed-meta').innerText()).toMatch(/^Measured at 16, 64 tokens on cpu/);
    await shot('speed');
  });

  it('after a cancelled benchmark the header lists no length as if it had results', async () => {
    // Cancel leaves the session without results; the settings now ask for more lengths than any result has.
    const settings = { ...session.settings, sequenceLengths: [16, 64, 256, 1024] };
    await send({ type: 'didChangeSession', session: { ...session, speed: null, settings } });
    await openTab('speed');
    await expect.poll(() => page.locator('#view-speed p.empty').innerText()).toContain('No benchmark yet');
    expect(await page.locator('#view-speed').innerText()).not.toMatch(/sequence lengths|Measured at/);
    expect(await page.locator('#benchmark-plan').innerText()).toMatch(/^Times the original and 1 variant\(s\) at 16, 64, 256, 1024 tokens: /);
    // With older results on screen, those name only the lengths they have.
    await send({ type: 'didChangeSession', session: { ...session, settings } });
    await expect.poll(() => page.locator('#speed-meta').innerText()).toMatch(/^Measured at 16, 64 tokens/);
    expect(await page.locator('#speed-seq vscode-option').allInnerTexts()).toEqual(['16', '64']);
    await send({ type: 'didChangeSession', session });
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
    await expect.poll(() => page.locator('#speed-table tbody tr').count()).toBe(3);
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
    // Progress updates the row in place: the Cancel button under the pointer stays the same element (rebuilt on every
    // tick, a click between mouse-down and mouse-up went nowhere while a run's progress moved fast).
    await task.locator('vscode-button').evaluate((b) => { (b as HTMLElement).dataset.seen = 'yes'; });
    for (let i = 2; i <= 3; i++) await send({ type: 'didChangeTasks', tasks: [{ id: 't7', title: 'Benchmarking model.onnx', fraction: 0.4 + i / 10, message: `timed runs: ${i}/3`, timing: true }] });
    await expect.poll(() => task.locator('.task-message').innerText()).toContain('timed runs: 3/3');
    expect(await task.locator('vscode-button').getAttribute('data-seen')).toBe('yes');
    expect(await page.locator('.status .task').count()).toBe(1);
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

  it('a failed analysis is said once, in one line, above every tab', async () => {
    const message = '/w/cut.onnx: the file ends in the middle of the model after 1000 bytes: it is truncated (an interrupted download or copy?) or not an ONNX model';
    await send({ type: 'didChangeSession', session: { ...session, report: null, analysisError: message, speed: null, accuracy: null, maps: null, variants: [] } });
    const show = async (tab: string) => {
      await send({ type: 'didRequestTab', tab } as HostMessage);
      await page.locator(`#view-${tab} > *`).first().waitFor();
    };
    await show('overview');
    const failure = page.locator('#analysis-failure');
    await failure.waitFor();
    expect(await page.locator('.status .failure').count()).toBe(1);
    for (const tab of ['overview', 'speed', 'maps']) {
      await show(tab);
      const text = await page.locator('body').innerText();
      expect(text.split('the file ends in the middle of the model').length - 1, `on ${tab}`).toBe(1);
    }
    await show('overview');
    expect(await page.locator('#view-overview').innerText()).toContain('No analysis to show.');
    await shot('analysis-failed');
    await send({ type: 'didChangeSession', session });
    await expect.poll(() => failure.count()).toBe(0);
  });

  it('an image model is described in patches and images: Overview, Speed and the studio preview', async () => {
    const vit = await visionSession();
    try {
      await send({ type: 'didChangeSession', session: vit.session });
      await openTab('overview');
      await expect.poll(() => page.locator('#view-overview dl.facts').innerText()).toContain('cost figures at 17 patches, batch 1');
      expect(await page.locator('#sites-table caption').innerText()).toContain('FLOPs at 17 patches');
      expect(await page.locator('#view-overview').innerText()).not.toMatch(/\btokens?\b/);
      await openTab('speed');
      await page.locator('#speed-table').waitFor();
      const view = page.locator('#view-speed');
      expect(await view.locator('h3').first().innerText()).toBe('Latency per image (17 patches)');
      expect(await page.locator('#speed-table thead th').allInnerTexts()).toContain('images/s');
      const p = vit.session.speed!.points[0];
      expect((await page.locator('#speed-table tbody tr').first().locator('td').allInnerTexts())[2]).toBe((1000 / p.latencyMs.mean).toFixed(0));
      expect(await page.locator('#benchmark-plan').innerText()).toContain('at the model’s own image size');
      expect(await page.locator('#no-sweep').innerText()).toContain('no sequence length to sweep');
      expect(await view.innerText()).not.toMatch(/\btokens?\b|tokens\/s/);
      await shot('speed-vision');
      await openTab('studio');
      // The variant's preview, as the core thread made it: its cost figures at the model's 17 patches.
      const totals = page.locator('#view-studio details table.totals tbody tr');
      await expect.poll(() => totals.count()).toBe(4);
      expect(await totals.nth(2).locator('th').textContent()).toBe('attention FLOPs at 17 patches');
      expect(await totals.nth(3).locator('th').textContent()).toBe('attention matrices at 17 patches');
    } finally {
      await vit.dispose();
      await send({ type: 'didChangeSession', session });
    }
  });

  it('Attention maps label the axes with the text’s tokens, give the value under the pointer, and draw every head with its recall', async () => {
    await send({ type: 'didChangeSession', session });
    await openTab('maps');
    const maps = session.maps!;
    expect(maps.tokens).toEqual([...CALIBRATION_TEXT.slice(0, maps.dims[2])].map((c) => (c === ' ' ? '␣' : c === '\n' ? '⏎' : c)));
    // Key labels below the map are the text's characters ("def mean(...").
    const ticks = await page.locator('#map-axis-x .tick').allInnerTexts();
    expect(ticks.slice(0, 5)).toEqual(['d', 'e', 'f', '␣', 'm']);
    expect(await page.locator('#map-axis-y .tick').first().innerText()).toBe('d');
    // Hover: the middle of the cell (query 5, key 3) of head 0 names both tokens and the value the runtime returned.
    await page.locator('#head-cell-0').click();
    await expect.poll(() => page.locator('#heads-table tbody tr').nth(0).locator('th').innerText()).toContain('◀');
    const box = (await page.locator('#heatmap').boundingBox())!;
    const [, q, k] = maps.dims;
    await page.mouse.move(box.x + ((3 + 0.5) / k) * box.width, box.y + ((5 + 0.5) / q) * box.height);
    const p = maps.probabilities[5 * k + 3];
    await expect.poll(() => page.locator('#map-hover').innerText()).toBe(`query 5 “e” → key 3 “␣”: p = ${p >= 0.001 || p === 0 ? p.toFixed(4) : p.toExponential(2)}`);
    // One small map per head, each with the pattern's recall as the runtime measured it; a click selects the head.
    const cells = page.locator('#heads-grid .head-cell');
    await expect.poll(() => cells.count()).toBe(maps.dims[0]);
    expect(await cells.nth(2).innerText()).toBe(`head 2 · recall ${(100 * maps.heads[2].recall!).toFixed(1)}%`);
    await cells.nth(2).click();
    await expect.poll(() => page.locator('#heads-table tbody tr').nth(2).locator('th').innerText()).toContain('◀');
    expect(await page.locator('#calibration-file').innerText()).toContain('calibration.py (text,');
    await shot('maps-text');
  });

  it('Accuracy evaluates on the text: the typed window length and count reach the host; the scores are shown per model', async () => {
    await openTab('accuracy');
    const e = session.evaluation!;
    const rows = page.locator('#evaluation-table tbody tr');
    await expect.poll(() => rows.count()).toBe(2);
    const original = await rows.nth(0).locator('th, td').allInnerTexts();
    expect(original.slice(0, 2)).toEqual(['original', e.rows[0].bitsPerToken.toFixed(4)]);
    expect(await page.locator('#evaluation-table thead th').nth(1).innerText()).toBe('bits per byte');
    await typeInto('eval-seq', '128');
    await typeInto('eval-windows', '8');
    await page.locator('#run-evaluate').click();
    expect((await posted()).filter((m) => m.type === 'evaluate').at(-1)).toEqual({ type: 'evaluate', seq: 128, windows: 8 });
    // A bad count is said on the page, and nothing is sent.
    await typeInto('eval-windows', 'x');
    await page.locator('#run-evaluate').click();
    expect(await page.locator('#evaluate-error').innerText()).toMatch(/whole numbers/);
    expect((await posted()).filter((m) => m.type === 'evaluate')).toHaveLength(1);
    await page.locator('#choose-calibration').click();
    await page.locator('#clear-calibration').click();
    const kinds = (await posted()).map((m) => m.type);
    expect(kinds).toContain('chooseCalibration');
    expect(kinds).toContain('clearCalibration');
    await shot('accuracy-evaluate');
  });

  it('Heads shows each site’s head importance and pre-fills prune-heads in the studio with the least important', async () => {
    await openTab('heads');
    const imp = session.importance!;
    const rows = page.locator('#importance-table tbody tr');
    await expect.poll(() => rows.count()).toBe(imp.sites[0].heads.length);
    const least = [...imp.sites[0].heads].sort((a, b) => a.outputChange - b.outputChange || a.head - b.head);
    expect(await rows.nth(0).locator('th').innerText()).toBe(String(least[0].head));
    await expect.poll(() => page.locator('#importance-chart canvas').count()).toBe(1);
    await shot('heads');
    await page.locator('#run-importance').click();
    expect((await posted()).some((m) => m.type === 'computeImportance')).toBe(true);
    // Two heads of every site, then the studio's prune-heads form holds exactly those.
    await typeInto('prune-count', '2');
    await page.locator('#prune-scope').click();
    await page.locator('#prune-scope vscode-option', { hasText: 'every site' }).click();
    await page.locator('#prune-in-studio').click();
    await page.locator('#view-studio h2').waitFor();
    const plan = imp.sites.map((s) => {
      const heads = [...s.heads].sort((a, b) => a.outputChange - b.outputChange || a.head - b.head).slice(0, 2).map((h) => h.head).sort((a, b) => a - b);
      return `${s.site}:${heads.join(',')}`;
    }).join(';');
    expect(await page.locator('#rule').evaluate((d) => (d as HTMLSelectElement).value)).toBe('prune-heads');
    expect(await page.locator('#field-heads input').inputValue()).toBe(plan);
    await page.locator('#add-step').click();
    await page.locator('#preview').click();
    const preview = (await posted()).filter((m) => m.type === 'previewRewrite').at(-1) as { steps: RuleStep[] };
    const expected: Record<number, number[]> = {};
    for (const part of plan.split(';')) expected[Number(part.split(':')[0])] = part.split(':')[1].split(',').map(Number);
    expect(preview.steps.at(-1)).toEqual({ rule: 'prune-heads', params: { heads: expected } });
    while ((await page.locator('ol.steps li').count()) > 0) await page.locator('vscode-button[aria-label="remove step 1"]').click();
  });

  it('Advisor draws the frontier and the plan as a site × head grid, asks for plans, and keeps a plan as a variant', async () => {
    await openTab('advisor');
    const r = session.advisor!;
    expect(r.frontier.map((f) => f.budget)).toEqual([0.25, 0.125, 0.5]);
    // The frontier: one chart (its x axis read out with its values) and one table row per budget.
    await expect.poll(() => page.locator('#advisor-chart canvas').count()).toBe(1);
    const label = await page.locator('#advisor-chart canvas').getAttribute('aria-label');
    expect(label).toMatch(/per-head plans and uniform rules; x axis \(density \(share of dense attention\)\): .*%/);
    const rows = page.locator('#advisor-table tbody tr');
    await expect.poll(() => rows.count()).toBe(3);
    const first = await rows.nth(0).locator('th, td').allInnerTexts();
    const low = r.frontier.find((f) => f.budget === 0.125)!;
    expect(first.slice(0, 3)).toEqual(['0.125', fmtDensity(low.density), low.evaluation.value.toFixed(4)]);
    // The score in the unit the Accuracy tab gives the same text: bits per byte for this byte-level model.
    const unit = unitOf(session.evaluation!);
    expect(unit).toBe('bits per byte');
    expect(await page.locator('#advisor-table caption').innerText()).toMatch(new RegExp(`^Frontier \\(${unit}; original \\d\\.\\d{4}\\)`));
    expect(await page.locator('#advisor-chart canvas').getAttribute('aria-label')).toMatch(new RegExp(`^${unit} against density`));
    // The grid of the plan asked for (the first budget): a row per site, a cell per head with its choice on hover.
    const grid = planGrid(r, r.frontier[0]);
    await expect.poll(() => page.locator('#plan-grid tbody tr').count()).toBe(grid.rows.length);
    const site = grid.rows.find((x) => x.note === null)!;
    const cells = page.locator('#plan-grid tbody tr').nth(grid.rows.indexOf(site)).locator('td');
    expect(await cells.count()).toBe(grid.heads);
    for (const [head, c] of site.cells.entries()) {
      expect(await cells.nth(head).getAttribute('title')).toBe(`site ${site.site}, head ${head}: ${c!.choice}`);
      expect(await cells.nth(head).getAttribute('class')).toBe(`cell pattern-${c!.pattern}`);
    }
    expect(await page.locator('#plan-legend > span').allInnerTexts()).toEqual(grid.patterns);
    // Each legend colour is the colour of its cells.
    const swatch = await page.locator(`#plan-legend .pattern-${site.cells[0]!.pattern}`).evaluate((e) => getComputedStyle(e).backgroundColor);
    expect(await cells.nth(0).evaluate((e) => getComputedStyle(e).backgroundColor)).toBe(swatch);
    await shot('advisor');

    // Budgets typed are sent as densities; a bad one is said on the page and nothing is sent.
    await typeInto('advisor-budgets', '0.25, 12.5%');
    await page.locator('#run-advisor').click();
    expect((await posted()).filter((m) => m.type === 'advise').at(-1)).toEqual({ type: 'advise', budgets: [0.25, 0.125] });
    await typeInto('advisor-budgets', '2');
    await page.locator('#run-advisor').click();
    expect(await page.locator('#advisor-error').innerText()).toMatch(/density=2: a share must be in \(0, 1\]/);
    expect((await posted()).filter((m) => m.type === 'advise')).toHaveLength(1);
    // The other kinds, read by the CLI's parser, go as budget records the host accepts.
    await typeInto('advisor-budgets', 'flops=0.3, 1.5G');
    await page.locator('#run-advisor').click();
    expect(await page.locator('#advisor-error').innerText()).toMatch(/"1.5G" is attention FLOPs \(a count\)/);
    await typeInto('advisor-budgets', 'latency=12ms, 20ms');
    await page.locator('#run-advisor').click();
    const latency = (await posted()).filter((m) => m.type === 'advise').at(-1)!;
    expect(latency).toEqual({ type: 'advise', budgets: [{ kind: 'latency', unit: 'ms', value: 12 }, { kind: 'latency', unit: 'ms', value: 20 }] });
    expect(parseWebviewMessage(latency)).toEqual(latency);
    // Timing the blocked plans is off by default; ticked, the length typed goes with the budgets (a bad one is said).
    await typeInto('advisor-budgets', '0.25');
    await page.locator('#advisor-bench').click();
    await typeInto('advisor-bench-seq', '12');
    await page.locator('#run-advisor').click();
    expect(await page.locator('#advisor-error').innerText()).toMatch(/not a length to time at/);
    await typeInto('advisor-bench-seq', '4096');
    await page.locator('#run-advisor').click();
    expect((await posted()).filter((m) => m.type === 'advise').at(-1)).toEqual({ type: 'advise', budgets: [0.25], benchSeq: 4096 });
    await page.locator('#advisor-bench').click();
    await page.locator('#choose-calibration').click();
    expect((await posted()).at(-1)).toEqual({ type: 'chooseCalibration' });

    // Another frontier point: its grid, and Keep as variant sends its plan as a plan step the host accepts.
    await page.locator('#advisor-point').click();
    await page.locator('#advisor-point vscode-option', { hasText: 'density ≤ 0.5' }).click();
    await expect.poll(() => page.locator('#view-advisor h3').last().innerText()).toMatch(/^The plan at density ≤ 0.5:/);
    await page.locator('#keep-plan').click();
    const keep = (await posted()).filter((m) => m.type === 'addVariant').at(-1)!;
    const half = r.frontier.find((f) => f.budget === 0.5)!;
    expect(keep).toEqual({ type: 'addVariant', ...planVariant(half) });
    expect(parseWebviewMessage(JSON.parse(JSON.stringify(keep)))).toEqual(keep);
    // The blocked form, for speed.
    await page.locator('#keep-form').click();
    await page.locator('#keep-form vscode-option', { hasText: 'blocked' }).click();
    await page.locator('#keep-plan').click();
    expect((await posted()).filter((m) => m.type === 'addVariant').at(-1)).toEqual({ type: 'addVariant', ...planVariant(half, 'blocked') });

    // A run in progress shows in the status with its Cancel.
    await send({ type: 'didChangeTasks', tasks: [{ id: 't9', title: 'Advisor: per-head plans for model.onnx', fraction: 0.3, message: 'profiling the heads 3/8', timing: false }] });
    await page.locator('vscode-button[aria-label="cancel Advisor: per-head plans for model.onnx"]').click();
    expect((await posted()).filter((m) => m.type === 'cancelTask').at(-1)).toEqual({ type: 'cancelTask', id: 't9' });
    await send({ type: 'didChangeTasks', tasks: [] });
  });

  it('a model with a KV cache: Speed benchmarks decode steps at typed past lengths, Accuracy compares a generated continuation', async () => {
    await send({ type: 'didChangeSession', session: pastSession });
    await openTab('speed');
    const d = pastSession.decode!;
    const rows = page.locator('#decode-table tbody tr');
    await expect.poll(() => rows.count()).toBe(d.points.length);
    const first = await rows.nth(0).locator('th, td').allInnerTexts();
    const p = d.points.find((x) => x.model === 'original' && x.past === 16)!;
    expect(first.slice(0, 3)).toEqual(['original', '16', latencyCell(p)]);
    await typeInto('decode-pasts', '32, 8 128');
    await page.locator('#run-decode').click();
    expect((await posted()).filter((m) => m.type === 'benchmarkDecode').at(-1)).toEqual({ type: 'benchmarkDecode', pasts: [8, 32, 128] });
    await page.locator('#decode-title').scrollIntoViewIfNeeded();
    await shot('speed-decode');

    await openTab('accuracy');
    const g = pastSession.generation!;
    const gen = page.locator('#generation-table tbody tr');
    await expect.poll(() => gen.count()).toBe(1);
    const cells = await gen.nth(0).locator('th, td').allInnerTexts();
    expect(cells[0]).toBe('window 8');
    expect(cells[2]).toBe(`${(100 * g.rows[0].top1Agreement).toFixed(1)}%`);
    expect(cells[4]).toBe('yes');
    await typeInto('generation-steps', '24');
    await page.locator('#run-generation').click();
    expect((await posted()).filter((m) => m.type === 'compareGeneration').at(-1)).toEqual({ type: 'compareGeneration', steps: 24 });
    await shot('accuracy-generation');
    await send({ type: 'didChangeSession', session });
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
