// Comparison and task score through the worker: a model against itself is exactly equal; a different model is not;
// the trained byte-level model reproduces its manifest score.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RuntimeClient } from '../../src/runtime/client';
import { fixture, readManifest, startClient } from './helpers';

let client: RuntimeClient;
let close: () => Promise<void>;
beforeAll(async () => {
  ({ client, close } = await startClient());
});
afterAll(async () => close());

it('gives exactly zero difference for a model compared with itself, on every output', async () => {
  const f = fixture('llama-past-eager-ts-op17');
  const r = await client.compare({ a: f.model, b: f.model, inputs: { synthesis: { seq: 4, past: 6 } } });
  expect(r.outputs.map((o) => o.name).sort()).toEqual(['logits', 'present.0.key', 'present.0.value', 'present.1.key', 'present.1.value']);
  expect(r.mismatched).toEqual([]);
  for (const o of r.outputs) {
    expect(o.maxAbsDiff).toBe(0);
    expect(o.meanAbsDiff).toBe(0);
    expect(o.relativeDiff).toBe(0);
    expect(o.cosine).toBe(1);
  }
  const logits = r.outputs.find((o) => o.name === 'logits')?.logits;
  expect(logits).toEqual({ klDivergence: 0, top1Agreement: 1, top5Overlap: 1, positions: 4 });
});

it('measures the difference between two different models on the same inputs', async () => {
  const r = await client.compare({ a: fixture('gpt2-eager-ts-op17').model, b: fixture('llama-eager-ts-op17').model });
  const logits = r.outputs.find((o) => o.name === 'logits');
  expect(logits).toBeDefined();
  expect(logits?.maxAbsDiff).toBeGreaterThan(0.1);
  expect(logits?.cosine).toBeLessThan(0.5);
  expect(logits?.logits?.klDivergence).toBeGreaterThan(0);
  expect(logits?.logits?.top1Agreement).toBeLessThan(1);
});

it('reports outputs whose shapes differ instead of comparing them', async () => {
  // Same inputs and outputs by name, but 2 KV heads against 4: the caches cannot be compared element by element.
  const r = await client.compare({ a: fixture('llama-past-eager-ts-op17').model, b: fixture('gpt2-past-eager-ts-op17').model });
  expect(r.mismatched.map((m) => m.name).sort()).toEqual(['present.0.key', 'present.0.value', 'present.1.key', 'present.1.value']);
  expect(r.fed.warnings.some((w) => w.includes('synthesized separately'))).toBe(true);
});

it('reproduces the trained byte model\'s bits per byte at 512 (64 windows)', async () => {
  const f = fixture('bytelm-llama-trained');
  const manifest = readManifest('bytelm-llama-trained') as { eval: { file: string; bits_per_byte: Record<string, number> } };
  const r = await client.evaluate({ model: f.model, tokens: `${f.dir}/${manifest.eval.file}`, seq: 512, windows: 64 });
  expect(r.windows).toBe(64);
  expect(r.tokensScored).toBe(64 * 512);
  expect(Math.abs(r.bitsPerToken - manifest.eval.bits_per_byte['512'])).toBeLessThan(0.01);
  expect(r.perplexity).toBeCloseTo(2 ** r.bitsPerToken, 10);
});
