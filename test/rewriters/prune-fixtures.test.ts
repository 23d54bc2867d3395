// Every pruning rule on every shared fixture: the rewritten model loads in onnxruntime CPU (through the runtime
// worker) and runs on inputs the runtime synthesizes from the rewritten model's own declarations (so KV-cache models
// are fed the smaller caches they now declare), with finite outputs. Plus the rewrite CLI's flags for the family.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gapIt } from '../known-gaps';
import { main } from '../../src/cli';
import type { RuntimeClient } from '../../src/runtime/client';
import { toFloat64 } from '../../src/runtime/tensor';
import { startClient } from '../runtime/helpers';
import { fixture, fixtureNames, rewriteFixture, scratch, sitesOf } from './shared-prune-helpers';

let client: RuntimeClient;
let close: () => Promise<void>;
let tmp: { dir: string; cleanup: () => void };
beforeAll(async () => {
  ({ client, close } = await startClient());
  tmp = scratch('prune-fixtures');
});
afterAll(async () => {
  await close();
  tmp.cleanup();
});

async function runsOnSynthesizedInputs(file: string): Promise<void> {
  const r = await client.run({ model: file, settings: { ep: 'cpu' } });
  expect(r.provider.used).toBe('cpu');
  expect(r.fed.synthesized.length).toBe(Object.keys(r.fed.shapes).length);
  expect(Object.keys(r.outputs).length).toBeGreaterThan(0);
  for (const [name, t] of Object.entries(r.outputs)) {
    const v = toFloat64(t);
    expect(v.length, `${name} is empty`).toBeGreaterThan(0);
    expect(v.every(Number.isFinite), `${name} has non-finite values`).toBe(true);
  }
}

describe.each(fixtureNames())('%s', (name) => {
  const sites = () => sitesOf(fixture(name).model);

  gapIt('prune-runs', name)('prune-heads (one or two heads per site) runs', async () => {
    const heads = Object.fromEntries(sites().map((s) => [s.id, s.id % 2 ? [0, s.heads! - 1] : [1]]));
    const { file } = rewriteFixture(name, [{ rule: 'prune-heads', params: { heads } }], tmp.dir, 'prune');
    await runsOnSynthesizedInputs(file);
  });

  gapIt('prune-all-heads-runs', name)('prune-heads of every head of the first site runs', async () => {
    const s = sites()[0];
    const { file } = rewriteFixture(name, [{ rule: 'prune-heads', params: { heads: { [s.id]: Array.from({ length: s.heads! }, (_, h) => h) } } }], tmp.dir, 'prune-all');
    await runsOnSynthesizedInputs(file);
  });

  gapIt('drop-first-site-runs', name)('drop-attention of the first site runs', async () => {
    const { file } = rewriteFixture(name, [{ rule: 'drop-attention', params: { sites: [sites()[0].id] } }], tmp.dir, 'drop');
    await runsOnSynthesizedInputs(file);
  });
});

describe('rewrite CLI', () => {
  async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const out = process.stdout.write.bind(process.stdout);
    const err = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((c: string | Uint8Array) => ((stdout += String(c)), true)) as typeof process.stdout.write;
    process.stderr.write = ((c: string | Uint8Array) => ((stderr += String(c)), true)) as typeof process.stderr.write;
    try {
      return { code: await main(argv), stdout, stderr };
    } finally {
      process.stdout.write = out;
      process.stderr.write = err;
    }
  }

  it('--prune-heads and --drop-attention report per-site heads and FLOPs', async () => {
    const out = `${tmp.dir}/cli.onnx`;
    const r = await cli('rewrite', fixture('llama-eager-ts-op17').model, '--prune-heads', '0:1;1:0,3', '-o', out, '--seq', '64', '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.applied[0].rule).toBe('prune-heads');
    expect(report.applied[0].changes.map((c: { after: { heads: number } }) => c.after.heads)).toEqual([3, 2]);
    expect(report.flopsAfter / report.flopsBefore).toBeCloseTo(5 / 8, 10);
    const d = await cli('rewrite', fixture('llama-eager-ts-op17').model, '--drop-attention', '1', '-o', `${tmp.dir}/cli-drop.onnx`);
    expect(d.code).toBe(0);
    expect(d.stdout).toMatch(/drop-attention/);
  });

  it('a bad head is one line on stderr naming the rule', async () => {
    const r = await cli('rewrite', fixture('llama-eager-ts-op17').model, '--prune-heads', '0:9', '-o', `${tmp.dir}/bad.onnx`);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/prune-heads: site 0 has 4 heads \(0-3\); head 9 is out of range/);
  });
});
