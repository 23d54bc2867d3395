// Inputs from files in every accepted form give the same outputs as the fixture's own manifest inputs.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RuntimeClient } from '../../src/runtime/client';
import { loadInputs, loadManifest } from '../../src/runtime/inputs/load';
import { writeNpy } from '../../src/runtime/inputs/npy';
import type { HostTensor } from '../../src/runtime/tensor';
import { fixture, startClient } from './helpers';

let client: RuntimeClient;
let close: () => Promise<void>;
let dir: string;
beforeAll(async () => {
  ({ client, close } = await startClient());
  dir = mkdtempSync(join(tmpdir(), 'attention-lens-inputs-'));
  reference = (await client.run({ model: f.model, inputs: { file: f.manifest } })).outputs.logits.data as Float32Array;
});
afterAll(async () => {
  await close();
  rmSync(dir, { recursive: true, force: true });
});

const f = fixture('gpt2-eager-ts-op17');
const manifest = loadManifest(f.manifest);
const asNumbers = (t: HostTensor) => Array.from(t.data as BigInt64Array, Number);
/** The logits onnxruntime gives for the manifest's own inputs: every other form of the same data must give these exactly. */
let reference: Float32Array;

async function logitsFor(inputs: string): Promise<Float32Array> {
  const r = await client.run({ model: f.model, inputs: { file: inputs } });
  expect(r.fed.synthesized).toEqual([]);
  return r.outputs.logits.data as Float32Array;
}

it('reads a folder of per-input .npy files (int32 data converted to the int64 the model takes)', async () => {
  const npyDir = join(dir, 'npy');
  rmSync(npyDir, { recursive: true, force: true });
  mkdirSync(npyDir);
  for (const [name, t] of Object.entries(manifest.tensors)) {
    const int32: HostTensor = { dtype: 'int32', dims: t.dims, data: Int32Array.from(asNumbers(t)) };
    writeFileSync(join(npyDir, `${name}.npy`), writeNpy(int32));
  }
  const r = await client.run({ model: f.model, inputs: { file: npyDir } });
  expect(r.fed.warnings).toContain('input_ids: converted int32 to int64');
  expect(r.outputs.logits.data).toEqual(reference);
});

it('reads one .json file keyed by input name, with bare nested arrays typed by the model', async () => {
  const json: Record<string, unknown> = {};
  for (const [name, t] of Object.entries(manifest.tensors)) json[name] = [asNumbers(t)];
  const file = join(dir, 'inputs.json');
  writeFileSync(file, JSON.stringify(json));
  expect(await logitsFor(file)).toEqual(reference);
});

it('reads name=path pairs and synthesizes what is not given, shaped after it', async () => {
  const ids = join(dir, 'ids.npy');
  writeFileSync(ids, writeNpy(manifest.tensors.input_ids));
  const r = await client.run({ model: f.model, inputs: { file: `input_ids=${ids}` } });
  expect(r.fed.synthesized).toEqual(['attention_mask']);
  expect(r.fed.shapes.attention_mask.dims).toEqual([1, 16]);
  // The fixture's mask is all ones, which is what synthesis gives: the outputs must match.
  expect(asNumbers(manifest.tensors.attention_mask).every((v) => v === 1)).toBe(true);
  expect(r.outputs.logits.data).toEqual(reference);
});

it('refuses inputs the model does not take, and a lone .npy for a two-input model', () => {
  expect(() => loadInputs(join(dir, 'ids.npy'), { input_ids: 'int64', attention_mask: 'int64' })).toThrow(/single .npy fits only a one-input model/);
  return expect(client.run({ model: f.model, inputs: { tensors: { pixel_values: manifest.tensors.input_ids } } })).rejects.toThrow(/not inputs of the model/);
});
