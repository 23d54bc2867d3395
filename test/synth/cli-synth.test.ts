// `attention-lens synth`: models for speed work, built to the requested shape and found by the analysis as built.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';

const CLI = path.resolve(__dirname, '..', '..', 'dist', 'cli.js');
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-synth-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('attention-lens synth', () => {
  it('builds the requested shape, with sparse external weights on request, and refuses to overwrite', () => {
    const out = path.join(dir, 'm.onnx');
    const r = run('synth', '--output', out, '--layers', '3', '--hidden', '256', '--heads', '8', '--kv-heads', '2', '--external', '--json');
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ parameters: expect.any(Number), dataFile: `${out}.data` });
    const report = analyzeModel(out);
    expect(report.sites).toHaveLength(3);
    expect(report.sites[0]).toMatchObject({ heads: 8, kvHeads: 2, headDim: 32, causal: true, position: 'rope' });
    const again = run('synth', '-o', out);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/exists/);
    const bad = run('synth', '--output', path.join(dir, 'b.onnx'), '--heads', '6', '--kv-heads', '4');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/multiple of kvHeads/);
  });

  it('takes -o as well as --output for the file it writes', () => {
    const out = path.join(dir, 'short.onnx');
    const r = run('synth', '-o', out, '--layers', '1', '--hidden', '64', '--heads', '2', '--json');
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).file).toBe(out);
    expect(analyzeModel(out).sites).toHaveLength(1);
    const missing = run('synth', '-o');
    expect(missing.status).toBe(2);
    expect(missing.stderr.trim().split('\n')).toEqual(['attention-lens synth: option -o needs a value']);
  });
});
