// The window rule against the fixtures' independent references: the Llama fixture's `sliding_window` oracle (logits of
// transformers' own Mistral sliding-window attention on the same weights), and the trained byte model's score with a
// 64-key window, measured with the runtime's eval exactly as the manifest defines it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RuntimeClient } from '../../src/runtime/client';
import { manifestFeeds } from '../analysis/helpers/ort';
import { analyzeModel } from '../../src/analysis/analyze';
import { fixture, fixtureNames } from '../helpers/fixtures';
import { startClient } from '../runtime/helpers';
import { floatOutputs, maxAbsDiff, rewriteTo, tempDir } from './sparse-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = tempDir('sparse-oracles'); });
afterAll(() => tmp.cleanup());

const withWindowOracle = fixtureNames().filter((n) => fixture(n).manifest.oracles?.sliding_window);

it('the Llama and torch.nn decoder fixtures have sliding_window oracles', () => {
  expect(withWindowOracle).toEqual(expect.arrayContaining(['llama-eager-ts-op17', 'nnmha-decoder-op14']));
});

describe.each(withWindowOracle)('%s sliding_window oracle', (name) => {
  const f = fixture(name);
  const oracle = f.manifest.oracles!.sliding_window as unknown as { window: number; outputs: { name: string; file: string }[] };

  it.each([['mask'], ['blocked']])('--window %s matches the oracle within 1e-4', async (impl) => {
    const sites = analyzeModel(f.model).sites;
    const { file, report } = rewriteTo(f.model, [{ rule: 'window', params: { window: oracle.window, impl } }], tmp.dir, `oracle-${name}-${impl}`);
    expect(report.applied[0].sites).toEqual(sites.map((s) => s.id));
    const got = await floatOutputs(file, manifestFeeds(f.dir, f.manifest.inputs));
    for (const o of oracle.outputs) {
      const want = new Float32Array(new Uint8Array(fs.readFileSync(path.join(f.dir, o.file))).buffer);
      expect(maxAbsDiff(got[o.name], want)).toBeLessThan(1e-4);
      // And the oracle is not the dense model: the window matters at the fixture's length.
      const dense = new Float32Array(new Uint8Array(fs.readFileSync(path.join(f.dir, f.manifest.outputs.find((x) => x.name === o.name)!.file))).buffer);
      expect(maxAbsDiff(dense, want)).toBeGreaterThan(1e-2);
    }
  });
});

describe('bytelm-llama-trained: bits per byte with a 64-key window at 512', () => {
  let client: RuntimeClient;
  let close: () => Promise<void>;
  beforeAll(async () => ({ client, close } = await startClient()));
  afterAll(() => close());

  const f = fixture('bytelm-llama-trained');
  const ev = f.manifest.eval as { file: string; bits_per_byte_window64_at_512: number; bits_per_byte: Record<string, number> };

  it.each([['mask'], ['blocked']])('--window 64 --impl %s reproduces the manifest within 0.01', async (impl) => {
    const { file } = rewriteTo(f.model, [{ rule: 'window', params: { window: 64, impl } }], tmp.dir, `bytelm-${impl}`);
    const r = await client.evaluate({ model: file, tokens: path.join(f.dir, ev.file), seq: 512, windows: 64 });
    expect(Math.abs(r.bitsPerToken - ev.bits_per_byte_window64_at_512)).toBeLessThan(0.01);
    // The window costs the model accuracy: the dense score is clearly lower.
    expect(r.bitsPerToken - ev.bits_per_byte['512']).toBeGreaterThan(0.05);
  });
});
