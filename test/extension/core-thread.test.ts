// The core thread as the extension uses it: analysis, rule list, rewrite preview and write off the host's thread;
// user mistakes come back as user errors; a write reports progress; cancelling a write stops it at its next safe point
// and removes what it wrote, and work without safe points is ended by stopping the thread.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import type { WorkProgress } from '../../src/analysis/onnx/progress';
import { CoreCancelled, CoreClient, CoreError } from '../../src/cli/core-client';
import { allRules } from '../../src/rewriters/registry';
import '../../src/rewriters/rules';

const ROOT = path.resolve(__dirname, '..', '..');
const MODEL = path.join(ROOT, 'examples', 'demo-llama.onnx');
const core = new CoreClient(path.join(ROOT, 'dist', 'core-thread.js'));
const out = mkdtempSync(path.join(tmpdir(), 'attention-lens-core-test-'));

afterAll(() => {
  core.dispose();
  rmSync(out, { recursive: true, force: true });
});

describe('core thread', () => {
  it('analyzes exactly as the analysis does in process', async () => {
    const report = await core.request({ type: 'analyze', file: MODEL });
    expect(report).toEqual(analyzeModel(MODEL));
  });

  it('lists the registered rules', async () => {
    const rules = await core.request({ type: 'rules' });
    expect(rules.map((r) => r.name).sort()).toEqual(allRules().map((r) => r.name).sort());
    expect(rules.find((r) => r.name === 'window')?.family).toBe('sparse');
  });

  it('previews a window rewrite before anything is written: the mask form keeps the dense cost, the blocked one cuts it', async () => {
    const mask = await core.request({ type: 'preview', file: MODEL, steps: [{ rule: 'window', params: { window: 64, impl: 'mask' } }], seqLen: 1024 });
    expect(mask.applied.map((a) => a.rule)).toEqual(['window']);
    expect(mask.applied[0].sites).toEqual([0, 1]);
    expect(mask.flopsAfter).toBe(mask.flopsBefore);
    expect(mask.nodesAfter).toBeGreaterThan(mask.nodesBefore);
    // No weight changes: only the few constants the mask is built from are added.
    expect(mask.parametersAfter - mask.parametersBefore).toBeGreaterThanOrEqual(0);
    expect(mask.parametersAfter - mask.parametersBefore).toBeLessThan(100);
    const blocked = await core.request({ type: 'preview', file: MODEL, steps: [{ rule: 'window', params: { window: 64, impl: 'blocked' } }], seqLen: 1024 });
    // 64 of 1024 keys per query, computed in blocks: far below a quarter of the dense FLOPs.
    expect(blocked.flopsAfter).toBeLessThan(blocked.flopsBefore / 4);
    expect(blocked.flopsBefore).toBe(mask.flopsBefore);
  });

  it('applies steps in order, each with its own sites', async () => {
    const p = await core.request({ type: 'preview', file: MODEL, steps: [{ rule: 'window', params: { window: 32 }, sites: [0] }, { rule: 'window', params: { window: 128 }, sites: [1] }] });
    expect(p.applied.map((a) => a.sites)).toEqual([[0], [1]]);
  });

  it('writes the rewritten model and refuses to write over the input', async () => {
    const file = path.join(out, 'w.onnx');
    const r = await core.request({ type: 'write', file: MODEL, steps: [{ rule: 'window', params: { window: 16 } }], output: file });
    expect(r.output?.file).toBe(file);
    expect(existsSync(file)).toBe(true);
    expect(analyzeModel(file).sites.length).toBe(2);
    await expect(core.request({ type: 'write', file: MODEL, steps: [{ rule: 'window', params: { window: 16 } }], output: MODEL })).rejects.toMatchObject({ userError: true });
  });

  it('refuses, as the user’s error, a step the rule declarations do not allow', async () => {
    const e = await core.request({ type: 'preview', file: MODEL, steps: [{ rule: 'window', params: { window: -3 } }] }).catch((x) => x);
    expect(e).toBeInstanceOf(CoreError);
    expect(e.userError).toBe(true);
    expect(e.message).toContain("step 1: window: 'window' is not a valid int");
  });

  it('reports a write\'s progress, site by site', async () => {
    const events: WorkProgress[] = [];
    await core.request({ type: 'write', file: MODEL, steps: [{ rule: 'gqa', params: { groups: 1 } }], output: path.join(out, 'progress.onnx') }, undefined, (p) => events.push(p));
    expect(events.map((e) => e.phase)).toContain('rewrite');
    expect(events.find((e) => e.phase === 'rewrite')?.message).toMatch(/^gqa: site 0 \(1\/2\)$/);
  });

  it('cancels a write at its next safe point: nothing is left in the output folder, and the thread goes on', async () => {
    const dir = path.join(out, 'cancelled');
    mkdirSync(dir);
    const controller = new AbortController();
    const pending = core.request({ type: 'write', file: MODEL, steps: [{ rule: 'gqa', params: { groups: 1 } }], output: path.join(dir, 'never.onnx') }, controller.signal);
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(CoreCancelled);
    await core.settled();
    expect(readdirSync(dir)).toEqual([]);
    expect((await core.request({ type: 'analyze', file: MODEL })).sites.length).toBe(2);
  });

  it('ends work that has no safe point by stopping the thread; the next request gets a fresh one', async () => {
    const impatient = new CoreClient(path.join(ROOT, 'dist', 'core-thread.js'), 0);
    try {
      const controller = new AbortController();
      const pending = impatient.request({ type: 'analyze', file: MODEL }, controller.signal);
      controller.abort();
      await expect(pending).rejects.toBeInstanceOf(CoreCancelled);
      await impatient.settled();
      expect((await impatient.request({ type: 'analyze', file: MODEL })).sites.length).toBe(2);
    } finally {
      impatient.dispose();
    }
  });

  it('says what is missing when the thread was not built', async () => {
    const missing = new CoreClient(path.join(out, 'nope.js'));
    await expect(missing.request({ type: 'rules' })).rejects.toThrow(/was not built completely/);
  });
});
