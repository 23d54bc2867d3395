// Attention maps of real fixtures: every row is a distribution over the keys, causal sites put no mass on future
// keys (and non-causal ones do, so the check is not vacuous), and the user's model file is never touched.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis';
import type { RuntimeClient } from '../../src/runtime/client';
import { exposeAttentionMaps } from '../../src/runtime/maps-model';
import { fixture, startClient } from './helpers';

let client: RuntimeClient;
let close: () => Promise<void>;
beforeAll(async () => {
  ({ client, close } = await startClient());
});
afterAll(async () => close());

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

// Unfused eager and SDPA exports, torch.export's ONNX Attention, the two fused forms that expose probabilities,
// a KV-cache decoder fed a past, and an encoder-decoder with causal and non-causal sites side by side.
describe.each([
  'llama-eager-ts-op17',
  'gpt2-sdpa-ts-op17',
  'gpt2-sdpa-dynamo-op23',
  'bert-eager-ts-op17',
  'fused-gqa',
  'fused-onnx23',
  'llama-past-sdpa-ts-op17',
  'bart-eager-ts-op17',
])('%s', (name) => {
  it('gives maps whose rows sum to 1 and that respect causality', async () => {
    const f = fixture(name);
    const before = sha(f.model);
    const report = analyzeModel(f.model);
    expect(report.sites.length).toBeGreaterThan(0);
    const exposed = exposeAttentionMaps(f.model, report.sites);
    try {
      const past = name.includes('-past-') ? 5 : 0;
      const r = await client.maps({
        model: exposed.model,
        sites: exposed.sites,
        inputs: { infos: report.model.inputs, synthesis: { seq: 12, past } },
        pattern: 'window 4',
      });
      expect(r.sites.map((s) => s.site)).toEqual(report.sites.map((s) => s.id));
      for (const s of r.sites) {
        const site = report.sites[s.site];
        const [queries, keys] = s.dims.slice(-2);
        expect(queries).toBe(12);
        if (site.kind === 'self') expect(keys).toBe(12 + past);
        expect(s.stats.maxRowSumError, `site ${s.site} row sums`).toBeLessThan(1e-5);
        if (site.causal) expect(s.stats.maxFutureMass, `site ${s.site} future mass`).toBeLessThan(1e-6);
        else expect(s.stats.maxFutureMass, `site ${s.site} is not causal`).toBeGreaterThan(0.1);
        for (const h of s.stats.heads) {
          expect(h.entropy).toBeGreaterThan(0);
          expect(h.entropy).toBeLessThanOrEqual(Math.log(keys) + 1e-6);
          expect(h.recall).toBeGreaterThan(0);
          expect(h.recall).toBeLessThanOrEqual(1 + 1e-6);
        }
        expect(s.probabilities?.dims.slice(-2)).toEqual([queries, keys]);
      }
    } finally {
      exposed.cleanup();
    }
    expect(existsSync(dirname(exposed.model))).toBe(false);
    expect(sha(f.model)).toBe(before);
  });
});

it('refuses fused operators that cannot give probabilities, with the reason', () => {
  const f = fixture('fused-mha');
  const report = analyzeModel(f.model);
  expect(() => exposeAttentionMaps(f.model, report.sites)).toThrow(/MultiHeadAttention does not expose its attention probabilities/);
});
