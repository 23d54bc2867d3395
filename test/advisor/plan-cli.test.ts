// `attention-lens plan` on models without a language-model head (a ViT and a BERT encoder: objective 1 − cosine of the
// outputs against the original's on the given inputs), the files it writes, and its one-line refusals of bad input.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis';
import { parseHeadPlan } from '../../src/shared/head-plan';
import { cli } from '../runtime/cli-helpers';
import { fixture, useBuiltWorker } from '../runtime/helpers';

useBuiltWorker();
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'plan-cli-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe.each(['vit-eager-ts-op17', 'bert-eager-ts-op17'])('plan on %s (no language-model head)', (name) => {
  it('plans under the budget, measures the plan and the uniform window against the original outputs, writes plan and model', async () => {
    const f = fixture(name);
    const before = sha(f.model);
    const planFile = join(dir, `${name}.plan.json`);
    const out = join(dir, `${name}.planned.onnx`);
    const r = await cli('plan', f.model, '--inputs', f.manifest, '--budget', 'density=0.5', '--frontier', '0.3', '--json', '--plan-out', planFile, '-o', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.frontier.map((p: { budget: number }) => p.budget)).toEqual([0.5, 0.3]);
    const sites = analyzeModel(f.model).sites;
    for (const point of result.frontier) {
      expect(point.density).toBeLessThanOrEqual(point.budget + 1e-9);
      expect(point.evaluation.metric).toBe('1 − cosine');
      expect(point.evaluation.value).toBeGreaterThanOrEqual(0);
      expect(point.evaluation.value).toBeLessThan(1);
      expect(Object.keys(point.plan.sites).map(Number)).toEqual(sites.map((s) => s.id));
    }
    // Every head profiled: recall 1 for dense, 0 for pruned, in between for the rest, importance measured.
    for (const s of result.profile.sites) {
      for (const h of s.perHead) {
        expect(h.recall[0]).toBeCloseTo(1, 12);
        expect(h.recall[h.recall.length - 1]).toBe(0);
        for (const v of h.recall) expect(v).toBeGreaterThanOrEqual(-1e-9);
        expect(h.importance).toBeGreaterThan(0);
      }
    }
    const window = result.baselines.find((b: { family: string; budget: number }) => b.family === 'window' && b.budget === 0.5);
    expect(window.density).toBeLessThanOrEqual(0.5);
    expect(window.evaluation.metric).toBe('1 − cosine');
    const plan = parseHeadPlan(JSON.parse(readFileSync(planFile, 'utf8')));
    expect(plan).toEqual(expect.objectContaining({ sites: result.frontier[0].plan.sites }));
    expect(existsSync(out)).toBe(true);
    expect(analyzeModel(out).sites.length).toBeGreaterThan(0);
    expect(sha(f.model)).toBe(before);
  }, 300_000);
});

describe('plan refuses bad input in one line', () => {
  const f = fixture('vit-eager-ts-op17');
  it.each([
    [['--inputs', 'MANIFEST'], /--budget is required/],
    [['--inputs', 'MANIFEST', '--budget', 'density=1.5'], /--budget: density=1\.5: a share must be in \(0, 1\]/],
    [['--inputs', 'MANIFEST', '--budget', 'speed=0.2'], /--budget: "speed=0.2": unknown budget kind "speed"/],
    [['--inputs', 'MANIFEST', '--budget', 'latency=20'], /--budget: latency=20: a share must be in \(0, 1\] \(e\.g\. 0\.25 or 25%\); a time needs its unit/],
    [['--inputs', 'MANIFEST', '--budget', 'flops=0.3', '--frontier', '2G'], /--frontier: "2G" is attention FLOPs \(a count\); every budget of one run must be/],
    [['--inputs', 'MANIFEST', '--budget', 'density=0.5', '--latency-runs', '5'], /--latency-runs applies to a latency budget/],
    [['--tokens', 'MANIFEST', '--budget', 'latency=0.5', '--seq', '64,128'], /a latency budget plans one length; give one --seq/],
    [['--tokens', 'MANIFEST', '--budget', 'flops=2G', '--seq', '64,128'], /a FLOP count is the budget of one length; with several lengths give FLOPs as a share/],
    [['--budget', 'density=0.5'], /give exactly one of --tokens FILE/],
    [['--inputs', 'MANIFEST', '--tokens', 'x.bytes', '--budget', 'density=0.5'], /give exactly one of --tokens FILE/],
    [['--inputs', 'MANIFEST', '--budget', 'density=0.5', '--seq', '64'], /--seq applies to --tokens/],
    [['--inputs', 'MANIFEST', '--budget', 'density=0.5', '--frontier', '0,2'], /--frontier: density=0: a share must be in \(0, 1\]/],
  ])('%j', async (args, message) => {
    const r = await cli('plan', f.model, ...args.map((a) => (a === 'MANIFEST' ? f.manifest : a)));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('refuses token files it cannot read in one line (they were internal errors), and an inputs file given as --tokens', async () => {
    const t = fixture('bytelm-llama-trained');
    const write = (name: string, text: string) => {
      const file = join(dir, name);
      writeFileSync(file, text);
      return file;
    };
    for (const [file, code, message] of [
      [write('broken.json', 'not json\n'), 1, /broken\.json: not valid JSON \(/],
      [write('inputs.json', '{"input_ids": [[1, 2, 3]]}'), 2, /inputs\.json: this is an inputs file; give it as --inputs/],
      [write('wide.json', '[1, 2, 300]'), 2, /token 300 at position 2 is outside the model's vocabulary of 256/],
    ] as const) {
      const r = await cli('plan', t.model, '--tokens', file, '--budget', 'density=0.5');
      expect(r.code, file).toBe(code);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('refuses more calibration windows than fit between the evaluation windows', async () => {
    const t = fixture('bytelm-llama-trained');
    const r = await cli('plan', t.model, '--tokens', join(t.dir, 'eval.bytes'), '--budget', 'density=0.5', '--eval-windows', '64', '--calib-windows', '1000');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/room for \d+ calibration window\(s\), 1000 asked/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('plan on text', () => {
  it('tokenises a text file as eval does (bytes for a byte-level model) and names it, not the ids it wrote', async () => {
    const t = fixture('bytelm-llama-trained');
    const text = join(dir, 'sample.py');
    writeFileSync(text, readFileSync(join(t.dir, 'eval.bytes')).subarray(0, 3000));
    const r = await cli('plan', t.model, '--tokens', text, '--budget', 'density=0.25', '--seq', '64', '--eval-windows', '8', '--calib-windows', '2', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.objective).toBe(`bits per token on ${text}: 8 evaluation windows of 64 (eval's definition); candidate plans chosen on the calibration windows`);
    expect(r.stdout).not.toMatch(/tokens\.json/);
    expect(result.frontier[0].density).toBeLessThanOrEqual(0.25 + 1e-9);
    // The same ids as a .bytes file give the same plan and score.
    const bytes = join(dir, 'sample.bytes');
    writeFileSync(bytes, readFileSync(text));
    const same = JSON.parse((await cli('plan', t.model, '--tokens', bytes, '--budget', 'density=0.25', '--seq', '64', '--eval-windows', '8', '--calib-windows', '2', '--json')).stdout);
    expect(same.frontier[0].evaluation.value).toBe(result.frontier[0].evaluation.value);
  }, 120_000);
});
