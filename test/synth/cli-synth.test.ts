// `attention-lens synth`: models for speed work, built to the requested shape and found by the analysis as built.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';

const CLI = path.resolve(__dirname, '..', '..', 'dist', 'cli.js');
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-synth-'));
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
    const again = run('synth', '--output', out);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/exists/);
    const bad = run('synth', '--output', path.join(dir, 'b.onnx'), '--heads', '6', '--kv-heads', '4');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/multiple of kvHeads/);
  });
});
