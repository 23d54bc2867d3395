// The `analyze` command's contract, other tools depend on it: one JSON object with --json, exit 0; bad input exits
// non-zero with one line on stderr naming the file.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixture } from '../helpers/fixtures';

const CLI = path.resolve(__dirname, '..', '..', 'dist', 'cli.js');
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

describe('attention-lens analyze', () => {
  it('prints exactly one JSON object with the contract fields', () => {
    const r = run('analyze', fixture('gpt2-past-sdpa-ts-op17').model, '--json');
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const report = JSON.parse(r.stdout);
    expect(report.schemaVersion).toBe(1);
    expect(report.model.nodeCount).toBeGreaterThan(0);
    expect(report.sites).toHaveLength(2);
    for (const s of report.sites) {
      for (const key of ['id', 'kind', 'causal', 'heads', 'kvHeads', 'headDim', 'form', 'nodes']) expect(s).toHaveProperty(key);
    }
    expect(report.unmatched).toEqual([]);
  });

  it('prints a readable table, and analyses the bundled demo model when given none', () => {
    const r = run('analyze');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('demo-llama.onnx');
    expect(r.stdout).toMatch(/2 attention site\(s\)/);
    expect(r.stdout).toMatch(/\n\s+0\s+self\s+yes\s+4\s+2\s+32/);
  });

  it('fails with one line naming the file for bad input', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-analyze-'));
    try {
      const bad = path.join(dir, 'broken.onnx');
      fs.writeFileSync(bad, 'this is not a model');
      const r = run('analyze', bad, '--json');
      expect(r.status).not.toBe(0);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('broken.onnx');
      const missing = run('analyze', path.join(dir, 'nope.onnx'));
      expect(missing.status).not.toBe(0);
      expect(missing.stderr).toMatch(/nope\.onnx: file not found/);
      const usage = run('analyze', bad, '--bogus');
      expect(usage.status).toBe(2);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
