// Every shared fixture runs on CPU: with its manifest inputs it reproduces the manifest outputs within 1e-4, and with
// no inputs at all it runs on synthesized ones.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gapIt } from '../known-gaps';
import type { RuntimeClient } from '../../src/runtime/client';
import { loadManifest } from '../../src/runtime/inputs/load';
import { toFloat64 } from '../../src/runtime/tensor';
import { fixture, fixtureNames, startClient } from './helpers';

let client: RuntimeClient;
let close: () => Promise<void>;
beforeAll(async () => {
  ({ client, close } = await startClient());
});
afterAll(async () => close());

const names = fixtureNames();

it('finds the shared fixtures', () => {
  expect(names.length).toBeGreaterThanOrEqual(30);
});

describe.each(names)('%s', (name) => {
  const f = fixture(name);

  it('matches the manifest outputs within 1e-4 on its manifest inputs', async () => {
    const expected = loadManifest(f.manifest).expectedOutputs ?? {};
    expect(Object.keys(expected).length).toBeGreaterThan(0);
    const r = await client.run({ model: f.model, inputs: { file: f.manifest }, settings: { ep: 'cpu' } });
    expect(r.provider.used).toBe('cpu');
    expect(r.fed.synthesized).toEqual([]);
    for (const [out, want] of Object.entries(expected)) {
      const got = r.outputs[out];
      expect(got, `output ${out}`).toBeDefined();
      expect(got.dims).toEqual(want.dims);
      const a = toFloat64(got);
      const b = toFloat64(want);
      let max = 0;
      for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
      expect(max, `max |diff| of ${out}`).toBeLessThanOrEqual(1e-4);
    }
  });

  gapIt('runs-synthesized', name)('runs on synthesized inputs alone', async () => {
    const r = await client.run({ model: f.model, settings: { ep: 'cpu' } });
    expect(r.fed.synthesized.length).toBe(Object.keys(r.fed.shapes).length);
    expect(Object.keys(r.outputs).length).toBeGreaterThan(0);
    for (const [out, t] of Object.entries(r.outputs)) {
      const v = toFloat64(t);
      expect(v.length, `output ${out} is empty`).toBeGreaterThan(0);
      expect(v.every(Number.isFinite), `output ${out} has non-finite values`).toBe(true);
    }
  });
});
